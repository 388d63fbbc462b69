"""Training progress for :func:`mlwright.train`: a live display in Jupyter, one line in a terminal.

In a notebook (an IPython kernel) the run shows as one output that updates in place: the step,
a bar of the time budget (or of the trial count), trials done, the best score so far and the
trial running now. In a terminal the same facts are redrawn on one line of stderr. Anywhere else
(a log file, CI, a test) nothing is shown. The facts come from the runner's events
(:data:`mlwright.api.Event`): ``step``, ``search``, ``running``, ``trial`` and ``best``.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from mlwright.evaluate.metrics import signed

if TYPE_CHECKING:
    from mlwright.package.model import Model
    from mlwright.train.search import SearchStarted, Trial

REFRESH_S = 0.25  # the display is redrawn at most this often, but for the run's last state


@dataclass
class Status:
    """Where a training run stands: what the display shows."""

    target: str
    step: str = "starting"
    search: SearchStarted | None = None
    done: int = 0
    best: Trial | None = None
    running: dict[int, str] = field(default_factory=dict)  # trial number → "trial 3 linear (...)"
    outcome: str | None = None  # set when the run ended: the result, or why it stopped
    failed: bool = False

    def add(self, trial: Trial) -> None:
        self.done += 1
        self.running.pop(trial.number, None)
        if self.search is None or trial.status == "failed" or trial.mean is None:
            return
        metric = self.search.metric
        if self.best is None or signed(metric, trial.mean) > signed(metric, self.best.mean or 0.0):
            self.best = trial

    def seconds_left(self, now: float) -> float | None:
        if self.search is None or self.search.deadline is None:
            return None
        return max(0.0, self.search.deadline - now)

    def share_done(self, now: float) -> float | None:
        """The budget used (0..1): its time, else its trials; None before the search."""
        start = self.search
        if start is None:
            return None
        left = self.seconds_left(now)
        if left is not None and start.budget:
            return min(1.0, max(0.0, 1.0 - left / start.budget))
        if start.max_trials:
            return min(1.0, self.done / start.max_trials)
        return None

    def facts(self, now: float) -> str:
        """The search in one line: trials done, the best so far, what is left."""
        if self.search is None:
            return ""
        parts = [f"{self.done} trial{'' if self.done == 1 else 's'}"]
        if self.best is not None and self.best.mean is not None:
            parts.append(
                f"best {self.search.metric} {self.best.mean:.4f} "
                f"({self.best.family}, trial {self.best.number})"
            )
        left = self.seconds_left(now)
        if left is not None:
            parts.append(f"{left:.0f} s of {self.search.budget:g} s left")
        elif self.search.max_trials is not None:
            parts.append(f"{max(0, self.search.max_trials - self.done)} to go")
        return " · ".join(parts)

    def now(self) -> str:
        return "; ".join(self.running[n] for n in sorted(self.running))


class View(Protocol):
    """Where a :class:`TrainingProgress` shows its :class:`Status`."""

    def show(self, status: Status, now: float) -> None: ...


class TrainingProgress:
    """Receives a training run's events (``on_event``) and keeps a view of them up to date."""

    def __init__(self, view: View, target: str, *, clock: Callable[[], float] = time.monotonic):
        self.view = view
        self.status = Status(target)
        self.clock = clock
        self._shown_at: float | None = None

    def __call__(self, kind: str, payload: Any) -> None:
        status = self.status
        if kind == "step":
            status.step = str(payload)
        elif kind == "search":
            status.search = payload
        elif kind == "running":
            trial, fold, epoch = payload
            status.running[trial.number] = _where(trial, fold, epoch, status.search)
        elif kind == "trial":
            status.add(payload)
        elif kind == "best":
            status.running.clear()
        else:  # plan, decision, tracking, registered: the model's report holds them
            return
        self._show(force=kind in ("search", "best"))

    def finished(self, model: Model) -> None:
        """The run returned ``model``: show the result in place of the progress."""
        cv = model.recipe.cv
        score = f"cv {cv.metric} {cv.mean:.4f}" if cv.mean is not None else "no cv score"
        chosen = model.recipe.chosen
        what = chosen.family or model.family.name
        if chosen.kind != "single" and chosen.members:
            what = f"{chosen.kind} ensemble of {len(chosen.members)} trials"
        self.status.outcome = (
            f"trained {model.name!r} in {model.recipe.elapsed_s or 0:.1f} s: {what}, {score}"
        )
        self.status.running.clear()
        self._show(force=True)

    def failed(self, error: BaseException) -> None:
        """The run stopped with ``error`` (raised to the caller after this)."""
        stopped = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        self.status.outcome = f"training {stopped}" + (f": {error}" if str(error) else "")
        self.status.failed = True
        self.status.running.clear()
        self._show(force=True)

    def _show(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and self._shown_at is not None and now - self._shown_at < REFRESH_S:
            return
        self._shown_at = now
        self.view.show(self.status, now)


def _where(trial: Trial, fold: int, epoch: int | None, search: SearchStarted | None) -> str:
    folds = search.folds if search is not None else 1
    where = f"fold {fold + 1}/{folds}" if folds > 1 else ""
    if epoch is not None:
        where = f"{where}, epoch {epoch}" if where else f"epoch {epoch}"
    return f"trial {trial.number} {trial.family}" + (f" ({where})" if where else "")


# --- the views ------------------------------------------------------------------------------------


class NotebookView:
    """One output cell that updates in place (``IPython.display`` with a display id)."""

    def __init__(self) -> None:
        self._handle: Any = None

    def show(self, status: Status, now: float) -> None:
        bundle = {"text/plain": plain_text(status, now), "text/html": html_text(status, now)}
        if self._handle is None:
            display = importlib.import_module("IPython.display").display  # there in a kernel
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)


class TerminalView:
    """One line of ``stream`` (stderr), redrawn; it ends with a line break when the run ends."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def show(self, status: Status, now: float) -> None:
        width = shutil.get_terminal_size().columns - 1
        line = plain_text(status, now)[:width]
        self.stream.write("\r" + line.ljust(width) + ("\n" if status.outcome else ""))
        self.stream.flush()


def plain_text(status: Status, now: float) -> str:
    if status.outcome is not None:
        return f"mlwright: {status.outcome}"
    facts = status.facts(now)
    running = status.now()
    return " · ".join(
        part for part in (f"mlwright: {status.step}", facts, running and f"now {running}") if part
    )


def html_text(status: Status, now: float) -> str:
    """The display's HTML: inline styles only (no ``<style>``, which would reach the whole
    notebook) and every value escaped."""
    e = html.escape
    head = f"<b>mlwright</b> · training a model of <code>{e(status.target)}</code>"
    if status.outcome is not None:
        colour = "#b00020" if status.failed else "inherit"
        body = f'<span style="color: {colour}">{e(status.outcome)}</span>'
    else:
        share = status.share_done(now)
        bar = (
            f'<progress value="{share:.3f}" max="1" style="width: 16em; '
            f'vertical-align: middle"></progress> '
            if share is not None
            else ""
        )
        lines = [f"{bar}{e(status.facts(now)) or e(status.step)}"]
        if status.search is not None:
            lines.append(f'<span style="opacity: 0.7">{e(status.step)}</span>')
        if status.running:
            lines.append(f'<span style="opacity: 0.7">now {e(status.now())}</span>')
        body = "<br>".join(lines)
    return f'<div class="mlwright-progress" style="line-height: 1.6">{head}<br>{body}</div>'


def in_kernel() -> bool:
    """Whether this process is an IPython kernel (Jupyter, VS Code, Colab), where rich output
    shows; IPython in a terminal is not one."""
    ipython = sys.modules.get("IPython")  # never imported here: a plain script has not
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _import_tqdm_quietly() -> None:
    """Import ``tqdm.auto`` with its warning off. Optuna imports it during training, and in a
    kernel without ipywidgets it warns, in the cell's output, that its notebook bars cannot
    show ("IProgress not found"); mlwright shows no tqdm bar there, so the warning is noise."""
    import warnings

    if "tqdm.auto" in sys.modules or importlib.util.find_spec("tqdm") is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importlib.import_module("tqdm.auto")


def training_progress(target: str, enabled: bool) -> TrainingProgress | None:
    """What shows a run's progress here: a live display in a notebook, a redrawn line on a
    terminal's stderr; None when ``enabled`` is false or nothing would see it."""
    kernel = in_kernel()
    if kernel:
        _import_tqdm_quietly()
    if not enabled:
        return None
    if kernel:
        return TrainingProgress(NotebookView(), target)
    if sys.stderr is not None and sys.stderr.isatty():
        return TrainingProgress(TerminalView(sys.stderr), target)
    return None


__all__ = [
    "NotebookView",
    "Status",
    "TerminalView",
    "TrainingProgress",
    "html_text",
    "in_kernel",
    "plain_text",
    "training_progress",
]
