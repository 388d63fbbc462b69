"""A stop asked for by a signal, kept where long work can see it.

A signal handler raises its exception wherever the interpreter happens to be. Inside a callback
that native code calls (CatBoost's after each boosting round, for one), that exception is printed
as "ignored" and dropped, and the training goes on as if nothing was asked. So the command line's
handlers also record the stop here: every fit's clock reads it (boosting and epochs end at their
next round, as at the deadline), and each fold and refit raises it again once its fit returns.
"""

from __future__ import annotations

_requested: list[str] = []


def request_stop(reason: str) -> None:
    """Record that the process was asked to stop (``reason``: the signal's name)."""
    _requested.append(reason)


def stop_requested() -> bool:
    return bool(_requested)


def clear_stop() -> None:
    _requested.clear()


def raise_if_requested() -> None:
    """Raise the recorded stop (as Ctrl-C does) where an exception is sure to propagate."""
    if _requested:
        raise KeyboardInterrupt(_requested[-1])
