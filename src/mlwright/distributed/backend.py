"""The protocol every backend keeps, and the unit of work it runs: one fold of one trial.

A fold is the unit because the search decides between folds: it reports each fold's running
score to the family's pruner and stops a trial that falls behind, so a remote worker never
needs to reach the study. Jobs and results are plain data, cheap to send to another process.

A backend knows nothing of training: whoever makes one hands it the rows (opaque to it), the
function that runs one fold on them (:class:`RunFold`) and, where workers run elsewhere, the
function that lists the library versions a worker must share with this process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mlwright.train.models.base import FitContext


@dataclass(frozen=True)
class FoldJob:
    """Fit ``family`` with ``params`` on fold ``fold``'s training rows; score its validation
    rows with ``metric``. ``deadline`` is wall-clock time (``time.time()``) so that it means
    the same on every machine of a cluster; ``ctx`` carries no deadline or callback."""

    number: int
    family: str
    params: dict[str, Any]
    fold: int
    ctx: FitContext
    metric: str
    deadline: float | None = None
    rows: int | None = None  # train on this many of the fold's training rows (None: all)


@dataclass
class FoldResult:
    number: int
    fold: int
    pred: np.ndarray | None = None  # raw predictions on the fold's validation rows
    score: float | None = None
    fitted: dict[str, Any] = field(default_factory=dict)  # what the fit learned (refit needs it)
    curves: list[tuple[str, float, int]] = field(default_factory=list)  # (key, value, epoch)
    predict_ms: float | None = None  # single-row predict, measured on the first fold
    seconds: float = 0.0  # the fold's own time where it ran
    out_of_time: bool = False  # the deadline passed while it ran
    error: str | None = None  # the fold failed: the exception, one line


EpochHook = Callable[[int], None]
LibraryVersions = Callable[[], dict[str, str]]  # library name -> version, where it is called


class RunFold(Protocol):
    """Fits and scores one fold: ``run(data, job, on_epoch)``, ``data`` being the rows the
    backend was given. Never raises for a failed fold (the result says why)."""

    def __call__(
        self, data: Any, job: FoldJob, on_epoch: EpochHook | None = None, /
    ) -> FoldResult: ...


class Executor(Protocol):
    """Runs fold jobs, ``slots`` at a time; ``next`` blocks until one of them finishes."""

    slots: int

    def submit(self, job: FoldJob, on_epoch: EpochHook | None = None) -> None:
        """Queue ``job``; ``on_epoch(epoch)`` is called where the backend can report epochs
        as they happen (this process only)."""

    def next(self) -> FoldResult:
        """The result of a finished job (any order); never raises for a failed fold."""

    def describe(self) -> dict[str, Any]:
        """What the recipe records about where the search ran."""

    def close(self) -> None:
        """Drop unfinished jobs and release what the backend started."""


__all__ = ["EpochHook", "Executor", "FoldJob", "FoldResult", "LibraryVersions", "RunFold"]
