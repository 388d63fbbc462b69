"""Stopping long commands cleanly when the process is asked to stop."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is so that it stops like Ctrl-C: staged folders are
    removed and a tracked run is closed as KILLED instead of left RUNNING."""


@contextmanager
def stops_cleanly() -> Iterator[None]:
    """While long work runs (train, train-torch, reproduce), SIGTERM stops it like Ctrl-C
    instead of killing the process where it stands."""
    import signal
    import threading

    from mlwright.stopping import clear_stop, request_stop

    received = []

    def on_sigterm(signum: int, frame: Any) -> None:
        received.append(signum)
        request_stop("SIGTERM")  # seen by the fits even where the exception is swallowed
        raise Terminated

    def on_sigint(signum: int, frame: Any) -> None:
        request_stop("SIGINT")
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    previous_int = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    except KeyboardInterrupt:
        if not received:
            raise  # Ctrl-C: the command line says "Aborted!" and exits 130
        sys.stderr.write("terminated (SIGTERM): stopped\n")
        raise SystemExit(143) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        clear_stop()


def run_group(command: list[str]) -> int:
    """Run ``command`` in a process group of its own until it ends; Ctrl-C or SIGTERM stops it
    with every process it started (a server's workers too), and returns 0."""
    import os
    import signal
    import subprocess

    process = subprocess.Popen(command, start_new_session=True)
    try:
        with stops_cleanly():
            return process.wait()
    except (KeyboardInterrupt, SystemExit):
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        return 0
