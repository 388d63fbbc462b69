"""The run's time budget, with one owner: the search, the choice, the refit and the evidence all
ask the :class:`Budget` how much time is theirs.

The run is planned as: reading and profiling → the search → combining → the fits after the
search (the test split's model and the final refit: ``after_rows`` rows in all) → evidence,
report, package and tracking (PACKAGE_SECONDS). The search ends early enough to leave the
reserve those later stages need, and no trial starts that the cost model says cannot end before
the search must: a trial cut by the clock is time spent on a score resting on fewer folds.

The cost model learns from the trials so far: per family, the seconds one fold takes on the
search's rows; a family not yet seen is estimated from the others through its relative cost
(a family fact, :attr:`~mlwright.train.models.base.Family.relative_cost`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright.design.plan import MIN_RESERVE_SHARE, training_rows_per_fold
from mlwright.train.models import get_family

if TYPE_CHECKING:
    from mlwright.train.search import Trial

PACKAGE_SECONDS = 2.0  # golden rows, evidence, report and package after the refit
COMBINE_SHARE = 0.25  # of the time left after the search, what combining the trials may take
TRACKING_SECONDS = 3.0  # logging the model, its files and its registry version, when tracked
REFIT_MARGIN = 1.2  # a refit's time over its folds' time per row (more rows, no early stop)


@dataclass
class Budget:
    """Seconds for the whole run (None: no budget; nothing is ever cut), from ``started``."""

    seconds: float | None
    started: float  # time.monotonic() when the run began
    folds: int = 1
    search_rows: int = 0  # rows the search's folds are cut from
    after_rows: int = 0  # rows fitted after the search (the test split's fit and the refit)
    metric: str = ""
    tracked: bool = False  # the run logs to a tracker at the end (TRACKING_SECONDS more)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # trials not started, and why

    @property
    def deadline(self) -> float | None:
        return None if self.seconds is None else self.started + self.seconds

    def left(self) -> float | None:
        """Seconds until the deadline (None without a budget; negative when past it)."""
        deadline = self.deadline
        return None if deadline is None else deadline - time.monotonic()

    @property
    def package_seconds(self) -> float:
        """Seconds kept for what follows the final refit."""
        return PACKAGE_SECONDS + (TRACKING_SECONDS if self.tracked else 0.0)

    @property
    def fold_rows(self) -> float:
        return training_rows_per_fold(self.search_rows, self.folds)

    # --- the search -------------------------------------------------------------------------

    def reserve(self, trials: list[Trial], left: float | None = None) -> float:
        """Seconds to keep for the stages after the search. Before any trial ends, a first
        trial as long as the search allows must still leave time for the fits after it, which
        take after_rows / fold_rows times its length: of the ``left`` seconds the budget had
        when the search started, less what follows the refits, the first trial may take
        1 / (1 + that ratio). After, the
        fits of an ensemble of the three best trials so far, or of the slowest trial alone,
        whichever is longer."""
        if self.seconds is None:
            return 0.0
        floor = self.seconds * MIN_RESERVE_SHARE
        from mlwright.train.search import ranked_trials

        done = [t for t in trials if t.status in ("ok", "cut") and t.fold_scores]
        if not done:
            post = self.after_rows / self.fold_rows
            fits = max((self.seconds if left is None else left) - self.package_seconds, 0.0)
            return max(floor, fits * post / (1 + post) + self.package_seconds)
        slowest = max(self.per_fold(t) for t in done)
        best = sum(self.per_fold(t) for t in ranked_trials(done, self.metric)[:3])
        return max(
            floor,
            1.25 * max(slowest, best) * self.after_rows / self.fold_rows + self.package_seconds,
        )

    def search_end(self, trials: list[Trial], left: float | None = None) -> float | None:
        """When the search must end (monotonic), given the trials so far."""
        deadline = self.deadline
        return None if deadline is None else deadline - self.reserve(trials, left)

    def per_fold(self, trial: Trial) -> float:
        """Seconds one fold of ``trial`` takes on a fold's every training row."""
        return _per_fold(trial, self.fold_rows)

    def trial_seconds(
        self, family: str, trials: list[Trial], rows: int | None = None
    ) -> float | None:
        """Predicted seconds of all folds of a trial of ``family`` training on ``rows`` rows of
        each fold (None: all); None before any estimate."""
        per_fold = fold_seconds(family, trials, self.fold_rows)
        if per_fold is None:
            return None
        share = 1.0 if rows is None else min(1.0, rows / self.fold_rows)
        return float(per_fold * share ** get_family(family).rows_exponent * self.folds)

    def refuses(
        self, family: str, trials: list[Trial], end: float, rows: int | None = None
    ) -> str | None:
        """Why a trial of ``family`` (on ``rows`` rows of each fold; None: all) must not start
        now (it cannot end before ``end``, when the search must end), or None when it may."""
        predicted = self.trial_seconds(family, trials, rows)
        if predicted is None:
            return None
        room = end - time.monotonic()
        if predicted <= room:
            return None
        return f"a {family} trial takes about {predicted:.1f} s; the search has {room:.1f} s left"

    def cheapest(
        self, families: list[str], trials: list[Trial], rows: int | None = None
    ) -> float | None:
        """The predicted seconds of the cheapest trial among ``families`` (None: no estimate)."""
        times = [self.trial_seconds(f, trials, rows) for f in families]
        known = [t for t in times if t is not None]
        return min(known) if len(known) == len(times) and known else None

    def skip(self, family: str, reason: str) -> None:
        self.skipped.append({"family": family, "reason": reason})

    # --- after the search -------------------------------------------------------------------

    def refit_seconds(self, trials: list[Trial], final_rows: int, fits: int) -> float:
        """Seconds to fit ``trials`` (an ensemble's members) ``fits`` times on ``final_rows``
        rows, from their folds' time."""
        return fits * sum(
            REFIT_MARGIN * self.per_fold(t) * final_rows / self.fold_rows for t in trials
        )

    def for_refits(self) -> float | None:
        """Seconds the fits after the search may take: what is left less what follows them."""
        left = self.left()
        return None if left is None else left - self.package_seconds

    def combine_until(self) -> float | None:
        """When combining the trials must end (monotonic): COMBINE_SHARE of what is left for
        the fits after the search, so that a slow stacking layer cannot eat the refits' time."""
        left = self.for_refits()
        return None if left is None else time.monotonic() + COMBINE_SHARE * max(left, 0.0)

    def allowance(self, most: float) -> float:
        """Seconds a bounded piece of evidence may take: ``most``, less when the deadline is
        near (and half a second when it has passed)."""
        left = self.left()
        if left is None:
            return most
        return float(np.clip(left - self.package_seconds, 0.5, most))

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "folds": self.folds,
            "search_rows": self.search_rows,
            "after_rows": self.after_rows,
            "skipped": self.skipped,
        }


def _per_fold(trial: Trial, fold_rows: float) -> float:
    """Seconds one fold of ``trial`` took, scaled to a fold's every training row (a first-rung
    trial of successive halving trains on fewer)."""
    seconds = trial.seconds / max(len(trial.fold_scores), 1)
    if trial.rows is None or trial.rows >= fold_rows:
        return seconds
    return float(seconds * (fold_rows / trial.rows) ** get_family(trial.family).rows_exponent)


def fold_seconds(family: str, trials: list[Trial], fold_rows: float) -> float | None:
    """Seconds one fold of a ``family`` trial takes on ``fold_rows`` rows: the median of its
    trials so far; for a family not seen yet, the others' scaled by the relative costs of the
    families (the largest such estimate); None before any trial has ended."""
    done = [t for t in trials if t.fold_scores and t.status in ("ok", "cut", "pruned")]
    own = [_per_fold(t, fold_rows) for t in done if t.family == family]
    if own:
        return float(np.median(own))
    if not done:
        return None
    # the most any timed family implies: refusing a trial that would have fit costs less than
    # starting one that the clock cuts
    per_cost = [_per_fold(t, fold_rows) / get_family(t.family).relative_cost for t in done]
    return max(per_cost) * get_family(family).relative_cost


__all__ = [
    "PACKAGE_SECONDS",
    "Budget",
    "fold_seconds",
]
