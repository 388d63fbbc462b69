"""The search: trials of (family, hyperparameters) scored out of fold, within the budget.

Trials run in a fixed order: the learned portfolio first (configurations of every planned
family, ordered by expected value per second; :func:`static_plan`), then configurations
proposed by each family's seeded TPE study (:mod:`mlwright.train.tuner`), the families taking
turns; a proposed trial can be pruned after a fold when it is behind the family's earlier
trials. With ``max_trials`` and no time budget the
clock never cuts a trial, so two runs try exactly the same trials.
"""

from __future__ import annotations

import itertools
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.schema import ColumnSchema
from mlwright.data.tasks import Task
from mlwright.evaluate.metrics import score, signed
from mlwright.train.models import Family, FitContext, get_family
from mlwright.train.models.features import Design, FeatureEncoder, View
from mlwright.train.tuner import FamilyTuner
from mlwright.train.validation import Split


@dataclass
class Trial:
    number: int
    family: str
    params: dict[str, Any]
    source: str  # default | portfolio | tuned
    status: str = "pending"  # ok | cut | pruned | failed
    fold_scores: list[float] = field(default_factory=list)
    mean: float | None = None
    std: float | None = None
    seconds: float = 0.0
    error: str | None = None
    fitted: list[dict[str, Any]] = field(default_factory=list)
    curves: list[tuple[str, float, int]] = field(default_factory=list)  # (key, value, epoch)
    oof: np.ndarray | None = None
    predict_ms: float | None = None  # the family's predict on one row (median), first fold

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "family": self.family,
            "source": self.source,
            "status": self.status,
            "params": self.params,
            "fold_scores": [round(s, 10) for s in self.fold_scores],
            "mean": None if self.mean is None else round(self.mean, 10),
            "std": None if self.std is None else round(self.std, 10),
            "seconds": round(self.seconds, 3),
            "predict_ms": None if self.predict_ms is None else round(self.predict_ms, 4),
            "error": self.error,
            "fitted": self.fitted,
        }


StaticPlan = list[tuple[str, dict[str, Any], str]]  # (family, params, source)


def static_plan(families: list[str]) -> StaticPlan:
    """The configurations tried before any proposal: the learned portfolio's entries for these
    families, in its order (expected value per second, :func:`learned_order`); a family the
    portfolio does not cover gets its defaults and its own portfolio after them."""
    plan: StaticPlan = []
    for family, params in learned_order():
        if family in families:
            defaults = get_family(family).space().defaults
            source = "default" if params == defaults else "portfolio"
            plan.append((family, {**defaults, **params}, source))
    covered = {family for family, _, _ in plan}
    spaces = [get_family(f).space() for f in families if f not in covered]
    plan += [(space.family, dict(space.defaults), "default") for space in spaces]
    depth = max((len(s.portfolio) for s in spaces), default=0)
    for i in range(depth):  # then their own portfolios, taking turns
        plan += [
            (space.family, dict(space.portfolio[i]), "portfolio")
            for space in spaces
            if i < len(space.portfolio)
        ]
    return plan


@cache
def learned_order() -> tuple[tuple[str, dict[str, Any]], ...]:
    """The zero-shot portfolio (package data ``spaces/portfolio.yaml``, written by
    ``bench/portfolio.py``): configurations of every family, ordered by expected gain in
    normalized score per second on datasets disjoint from those the benchmarks judge on."""
    import yaml

    path = resources.files("mlwright.train.models").joinpath("spaces/portfolio.yaml")
    if not path.is_file():
        return ()
    raw = yaml.safe_load(path.read_text()) or {}
    return tuple((entry["family"], dict(entry["params"])) for entry in raw.get("order") or ())


@dataclass
class SearchData:
    """The rows being searched over and their folds; fold designs are built once per view."""

    features: pd.DataFrame
    columns: list[ColumnSchema]
    y: np.ndarray
    weights: np.ndarray | None
    splits: list[Split]
    encoder_factory: Callable[[], FeatureEncoder]
    _cache: dict[tuple[int, View], tuple[Design, Design]] = field(default_factory=dict)

    def fold(self, k: int, view: View) -> tuple[Design, Design]:
        key = (k, view)
        if key not in self._cache:
            train_idx, val_idx = self.splits[k]
            enc = self.encoder_factory().fit(self.features.iloc[train_idx], self.columns)
            self._cache[key] = (
                enc.transform(self.features.iloc[train_idx], view),
                enc.transform(self.features.iloc[val_idx], view),
            )
        return self._cache[key]


@dataclass(frozen=True)
class SearchStarted:
    """The runner's ``search`` event: what a progress display needs to know up front."""

    metric: str
    families: list[str]
    folds: int
    max_trials: int | None
    budget: float | None  # seconds for the whole run
    deadline: float | None  # time.monotonic() at which the whole budget is spent


@dataclass(frozen=True)
class SearchLimits:
    max_trials: int | None
    deadline: float | None  # monotonic time after which no trial starts and running ones stop
    reserve: Callable[[list[Trial]], float]  # seconds the rest of the run needs after the search


def run_search(
    data: SearchData,
    families: list[str],
    *,
    task: Task,
    n_classes: int,
    metric: str,
    seed: int,
    threads: int,
    limits: SearchLimits,
    on_trial: Callable[[Trial], None] | None = None,
    on_progress: Callable[[Trial, int, int | None], None] | None = None,
    verbose: bool = False,
    static: StaticPlan | None = None,
) -> list[Trial]:
    """Run the trial plan until the limits stop it. ``on_progress(trial, fold, epoch)`` hears
    when a trial starts (fold 0, epoch None) and each epoch of the families that have them.
    ``static`` replaces the configurations tried before any proposal (and turns proposals
    off): how ``bench/portfolio.py`` scores candidate configurations."""
    trials: list[Trial] = []
    tuned = [f for f in families if get_family(f).space().params] if static is None else []
    static = static_plan(families) if static is None else static
    tuners: dict[str, FamilyTuner] = {}
    for number in itertools.count():
        if limits.max_trials is not None and number >= limits.max_trials:
            break
        if number >= len(static) and not tuned:
            break  # nothing left to try
        deadline = None
        if limits.deadline is not None:
            deadline = limits.deadline - limits.reserve(trials)
            if trials and time.monotonic() >= deadline:
                break
        handle: Any = None
        if number < len(static):
            family, params, source = static[number]
        else:  # the families take turns; each one's study proposes its next configuration
            family = tuned[(number - len(static)) % len(tuned)]
            handle, params = _tuner(tuners, family, families, seed).ask()
            source = "tuned"
        ctx = FitContext(task, n_classes, seed, threads, deadline=deadline, verbose=verbose)
        trial = Trial(number, family, params, source)
        if on_progress is not None:
            on_progress(trial, 0, None)
        stop = None if handle is None else tuners[family].stopper(handle, metric)
        _run_trial(trial, data, ctx, metric, on_progress, stop)
        if family in tuned:
            tuner = _tuner(tuners, family, families, seed)
            if handle is None:
                tuner.observe(trial, metric)
            else:
                tuner.tell(handle, trial, metric)
        trials.append(trial)
        if on_trial is not None:
            on_trial(trial)
        if trial.status == "cut":
            break
    return trials


def _tuner(
    tuners: dict[str, FamilyTuner], family: str, families: list[str], seed: int
) -> FamilyTuner:
    if family not in tuners:
        tuners[family] = FamilyTuner(get_family(family).space(), seed, families.index(family))
    return tuners[family]


def _run_trial(
    trial: Trial,
    data: SearchData,
    ctx: FitContext,
    metric: str,
    on_progress: Callable[[Trial, int, int | None], None] | None = None,
    stop: Callable[[int, float], bool] | None = None,
) -> None:
    """Fit and score ``trial`` on every fold; ``stop(fold, running mean)`` may prune it."""
    started = time.monotonic()
    cls = get_family(trial.family)
    n = len(data.y)
    oof = np.full((n, ctx.n_classes) if ctx.task != "regression" else n, np.nan)
    try:
        for k, (train_idx, val_idx) in enumerate(data.splits):
            train, valid = data.fold(k, cls.view)
            w = None if data.weights is None else data.weights[train_idx]

            def record(epoch: int, values: dict[str, float], k: int = k) -> None:
                trial.curves.extend((f"fold_{k}_{key}", v, epoch) for key, v in values.items())
                if on_progress is not None:
                    on_progress(trial, k, epoch)

            family = cls(trial.params, replace(ctx, on_epoch=record)).fit(
                train, data.y[train_idx], valid=(valid, data.y[val_idx]), weights=w
            )
            pred = family.predict_raw(valid)
            oof[val_idx] = pred
            if k == 0:
                trial.predict_ms = single_row_ms(family, valid)
            trial.fold_scores.append(score(metric, data.y[val_idx], pred))
            trial.fitted.append(family.fitted_)
            if ctx.out_of_time():
                trial.status = "cut"
                break
            last = k == len(data.splits) - 1
            if stop is not None and not last and stop(k, float(np.mean(trial.fold_scores))):
                trial.status = "pruned"
                break
        else:
            trial.status = "ok"
    except Exception as exc:  # one family failing must not end the run; it is recorded
        trial.status = "failed"
        trial.error = "".join(traceback.format_exception_only(exc)).strip()
    trial.seconds = time.monotonic() - started
    if trial.fold_scores:
        trial.mean = float(np.mean(trial.fold_scores))
        trial.std = float(np.std(trial.fold_scores))
        trial.oof = oof


def single_row_ms(family: Family, design: Design, calls: int = 7) -> float:
    """Median milliseconds of the family's predict on one row: the model's share of serving
    latency, recorded per trial for the accuracy/latency trade-off."""
    one = design.rows(np.arange(1))
    family.predict_raw(one)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        family.predict_raw(one)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def ranked_trials(trials: list[Trial], metric: str) -> list[Trial]:
    """Complete trials, best first (ties: the earlier); cut ones only when nothing completed."""
    for status in ("ok", "cut"):
        done = [t for t in trials if t.status == status and t.mean is not None]
        if done:
            return sorted(done, key=lambda t: (-signed(metric, t.mean or 0.0), t.number))
    return []
