"""The search: trials of (family, hyperparameters) scored out of fold, within the budget.

Trials run in a fixed order: the learned portfolio first (configurations of every planned
family, ordered by expected value per second; :func:`static_plan`), then configurations
proposed by each family's seeded TPE study (:mod:`mlwright.train.tuner`), the families taking
turns; a proposed trial can be pruned after a fold when it is behind the family's earlier
trials. With ``max_trials`` and no time budget the
clock never cuts a trial, so two runs try exactly the same trials.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mlwright.data.schema import ColumnSchema
from mlwright.data.tasks import Task
from mlwright.distributed.backend import EpochHook, Executor, FoldJob, FoldResult
from mlwright.evaluate.metrics import score, signed
from mlwright.stopping import raise_if_requested
from mlwright.train.budget import Budget
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
    rows: int | None = None  # training rows per fold (successive halving's first rung; None: all)
    capped_folds: int = 0  # folds whose rounds or epochs stopped at the fold's share of the time
    last_fold_cut: bool = False  # its last fold stopped at the search's end, not at its share

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
            "rows": self.rows,
            "capped_folds": self.capped_folds,
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
    budget: Budget  # the run's time: when the search ends, which trials may still start
    halving_rows: int | None = None  # the first rung's training rows per fold (timed runs only)

    @property
    def deadline(self) -> float | None:
        return self.budget.deadline


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
    executor: Executor | None = None,
) -> list[Trial]:
    """Run the trial plan until the limits stop it; the trials, in number order.
    ``on_progress(trial, fold, epoch)`` hears when each fold starts (epoch None) and, where
    folds run in this process, each epoch of the families that have them. ``static``
    replaces the configurations tried before any proposal (and turns proposals off): how
    ``bench/portfolio.py`` scores candidate configurations. ``executor`` runs the folds
    (default: one at a time in this process; :mod:`mlwright.distributed`)."""
    from mlwright.distributed.local import LocalExecutor

    runs = executor or LocalExecutor(data, run_fold)
    try:
        return _Search(
            data,
            families,
            FitContext(task, n_classes, seed, threads, verbose=verbose),
            metric,
            limits,
            runs,
            static,
            on_trial,
            on_progress,
        ).run()
    finally:
        if executor is None:  # the caller closes an executor it made
            runs.close()


class _Proposal(NamedTuple):
    family: str
    params: dict[str, Any]
    handle: Any  # the study's trial
    stop: Callable[[int, float], bool]


@dataclass
class _Running:
    trial: Trial
    ctx: FitContext  # with the trial's deadline
    handle: Any  # the study's trial for a proposal, None for a static entry
    stop: Callable[[int, float], bool] | None
    oof: np.ndarray
    promoted: bool = False  # a first-rung configuration scored again on every row
    to_end: bool = True  # the fold running now may take the time to the search's end


class _Search:
    """The scheduler: keeps the executor's slots busy, one fold per job, in a fixed order.

    Trials start in number order. With a time budget, a finished trial is told to its study
    at once and a free slot takes the next trial. Without one (``max_trials`` alone), runs
    must be repeatable whatever the timing, so trials are told in number order, and proposal
    ``m`` is asked only once trials ``0 … m - slots`` are told (and right then): what each
    proposal and each pruning decision sees is the same in every run. With one slot both
    rules are the same: each trial starts after the previous one is told.
    """

    def __init__(
        self,
        data: SearchData,
        families: list[str],
        ctx: FitContext,
        metric: str,
        limits: SearchLimits,
        executor: Executor,
        static: StaticPlan | None,
        on_trial: Callable[[Trial], None] | None,
        on_progress: Callable[[Trial, int, int | None], None] | None,
    ) -> None:
        self.data = data
        self.families = families
        self.ctx = ctx
        self.metric = metric
        self.limits = limits
        self.executor = executor
        self.tuned = [f for f in families if get_family(f).space().params] if static is None else []
        self.static = static_plan(families) if static is None else list(static)
        self.on_trial = on_trial
        self.on_progress = on_progress
        self.ordered = limits.deadline is None
        self.tuners: dict[str, FamilyTuner] = {}
        self.running: dict[int, _Running] = {}
        self.waiting: dict[int, _Running] = {}  # finished, not yet told (ordered runs)
        self.proposals: dict[int, _Proposal] = {}  # asked, not yet started (ordered runs)
        self.finished: list[Trial] = []  # told, in the order they were told
        self.next_number = 0  # the next trial's number
        self.next_config = 0  # the next configuration: an index into static, then proposals
        self.halving = None if self.ordered else limits.halving_rows
        self.promotions: list[Trial] = []  # first-rung trials to score again on every row
        self.stopped = False  # the search's time is over: running trials stop after this fold
        self.exhausted = False  # no trial left could end in time: start nothing new
        self.search_left = limits.budget.left()  # the budget's seconds when the search began

    def run(self) -> list[Trial]:
        if self.ordered:  # proposals that need no told trial: asked up front
            for number in range(len(self.static), self.executor.slots):
                self.prepare(number)
        self.start_more()
        while self.running:
            self.apply(self.executor.next())
            self.start_more()
        return sorted(self.finished, key=lambda t: t.number)

    def may_start(self, number: int) -> bool:
        if self.stopped or self.exhausted or not self.in_plan(number):
            return False
        end = self.limits.budget.search_end(self.finished, self.search_left)
        if end is not None and self.finished and time.monotonic() >= end:
            self.stopped = True
            return False
        if self.ordered:
            return number < len(self.static) or number in self.proposals
        if end is not None and self.finished:
            cheapest = self.limits.budget.cheapest(
                self.families_left(number), self.finished, self.halving
            )
            if cheapest is not None and time.monotonic() + cheapest > end:
                self.exhausted = True  # not even the cheapest trial left would end in time
                return False
            if not self.affordable(number, end):
                return self.may_start(number)  # the next configuration in line may fit
        return True

    def families_left(self, number: int) -> list[str]:
        """The families of the configurations still to come from ``number`` on."""
        return sorted({f for f, _, _ in self.static[number:]} | set(self.tuned))

    def affordable(self, number: int, end: float) -> bool:
        """Whether configuration ``number`` can end before ``end``; when it cannot, it is
        skipped (a static entry) or its family's proposals stop (time only runs out), and the
        budget records why."""
        budget = self.limits.budget
        if number < len(self.static):
            family = self.static[number][0]
            reason = budget.refuses(family, self.finished, end, self.halving)
            if reason is not None:
                budget.skip(family, reason)
                del self.static[number]
            return reason is None
        family = self.next_tuned(number)
        reason = budget.refuses(family, self.finished, end, self.halving)
        if reason is not None:
            budget.skip(family, f"{reason}; no more {family} proposals")
            self.tuned.remove(family)
        return reason is None

    def in_plan(self, number: int) -> bool:
        # --max-trials counts trials: in a timed run promotions are trials too
        counted = number if self.ordered else self.next_number
        if self.limits.max_trials is not None and counted >= self.limits.max_trials:
            return False
        return number < len(self.static) or bool(self.tuned)

    def start_more(self) -> None:
        while len(self.running) < self.executor.slots:
            if self.promotions and self.may_promote():
                self.run_again(self.promotions.pop(0))
            elif self.may_start(self.next_config):
                self.start(self.next_config)
                self.next_config += 1
            else:
                return

    def may_promote(self) -> bool:
        """Whether the next promoted configuration may run on every row now (the budget's end
        allowing); promotions the budget cannot afford are dropped, with the reason."""
        end = self.limits.budget.search_end(self.finished, self.search_left)
        if self.stopped or (end is not None and time.monotonic() >= end):
            return False
        limit = self.limits.max_trials
        if limit is not None and self.next_number >= limit:
            return False
        while self.promotions and end is not None:
            family = self.promotions[0].family
            reason = self.limits.budget.refuses(family, self.finished, end)
            if reason is None:
                return True
            self.limits.budget.skip(
                family,
                f"{reason} on every row (trial {self.promotions.pop(0).number} not scored again)",
            )
        return bool(self.promotions)

    def run_again(self, first: Trial) -> None:
        """Successive halving: ``first``'s configuration scored again, training on every row."""
        trial = Trial(self.next_number, first.family, first.params, f"{first.source}, promoted")
        self.next_number += 1
        self.launch(trial, None, None, rows=None, promoted=True)

    def promote(self, trial: Trial) -> None:
        """Asynchronous successive halving (ASHA): when a first-rung trial is told, it is queued
        for every row if it is among the best third of the first rung's trials told so far
        (pruned ones count in the rung's size; they are behind by construction). So the first
        one always is, and a queued configuration runs before the next new one."""
        rung = [t for t in self.finished if t.rows is not None and t.status in ("ok", "pruned")]
        done = [t for t in rung if t.status == "ok" and t.mean is not None]
        done.sort(key=lambda t: -signed(self.metric, t.mean or 0.0))
        if trial.number in {t.number for t in done[: max(1, -(-len(rung) // 3))]}:
            self.promotions.append(trial)
            self.promotions.sort(key=lambda t: -signed(self.metric, t.mean or 0.0))

    def next_tuned(self, number: int) -> str:
        return self.tuned[(number - len(self.static)) % len(self.tuned)]

    def propose(self, number: int) -> _Proposal:
        """Proposal ``number``: the next family in turn asks its study for a configuration."""
        family = self.next_tuned(number)
        tuner = self.tuner(family)
        handle, params = tuner.ask()
        return _Proposal(family, params, handle, tuner.stopper(handle, self.metric, self.ordered))

    def prepare(self, number: int) -> None:
        """Ordered runs: ask for proposal ``number`` now, while the study holds exactly the
        trials told so far, even if no slot is free to start it yet."""
        if number >= len(self.static) and number not in self.proposals and self.in_plan(number):
            self.proposals[number] = self.propose(number)

    def start(self, number: int) -> None:
        """Start configuration ``number`` (on the first rung when the search halves)."""
        handle: Any = None
        stop = None
        if number < len(self.static):
            family, params, source = self.static[number]
        else:
            proposal = self.proposals.pop(number) if self.ordered else self.propose(number)
            family, params, handle, stop = proposal
            source = "tuned"
        trial = Trial(self.next_number, family, params, source)
        self.next_number += 1
        self.launch(trial, handle, stop, rows=self.halving)

    def launch(
        self,
        trial: Trial,
        handle: Any,
        stop: Callable[[int, float], bool] | None,
        *,
        rows: int | None,
        promoted: bool = False,
    ) -> None:
        deadline = self.limits.budget.search_end(self.finished, self.search_left)
        trial.rows = rows
        n = len(self.data.y)
        shape = (n, self.ctx.n_classes) if self.ctx.task != "regression" else (n,)
        run = _Running(
            trial, replace(self.ctx, deadline=deadline), handle, stop, np.full(shape, np.nan)
        )
        run.promoted = promoted
        self.running[trial.number] = run
        self.submit(run, 0)

    def submit(self, run: _Running, fold: int) -> None:
        trial = run.trial
        if self.on_progress is not None:
            self.on_progress(trial, fold, None)
        wall = None
        if run.ctx.deadline is not None:
            # the fold's share of the time to the search's end; while no trial has ended, a
            # trial runs to the search's end itself (a score on fewer folds beats a model of a
            # few rounds when nothing else may end in time)
            left = max(run.ctx.deadline - time.monotonic(), 0.0)
            run.to_end = not any(t.fold_scores for t in self.finished)
            if not run.to_end:
                left /= len(self.data.splits) - fold
            wall = time.time() + left
        job = FoldJob(
            trial.number,
            trial.family,
            trial.params,
            fold,
            replace(run.ctx, deadline=None),
            self.metric,
            wall,
            trial.rows,
        )
        progress = self.on_progress

        def on_epoch(epoch: int) -> None:
            if progress is not None:
                progress(trial, fold, epoch)

        self.executor.submit(job, on_epoch)

    def apply(self, result: FoldResult) -> None:
        run = self.running[result.number]
        trial = run.trial
        trial.seconds += result.seconds
        trial.curves.extend(result.curves)
        k = result.fold
        if result.error is not None or result.pred is None or result.score is None:
            trial.status = "failed"
            trial.error = result.error or "the fold returned no predictions"
            self.finish(run)
            return
        run.oof[self.data.splits[k][1]] = result.pred
        trial.fold_scores.append(result.score)
        trial.fitted.append(result.fitted)
        if k == 0:
            trial.predict_ms = result.predict_ms
        last = k == len(self.data.splits) - 1
        # a fold stopped at its share of the time keeps the rounds it had and the trial goes on
        # (the last share ends at the search's end); a fold before the last stopped by the
        # search's end itself, or a trial not done when the search ended earlier than foreseen
        # (slower trials told since), is cut
        cut = result.out_of_time and run.to_end and not last
        trial.last_fold_cut = cut
        trial.capped_folds += result.out_of_time and not cut
        if cut or (self.stopped and not last and self.limits.deadline):
            trial.status = "cut"
        elif last:
            trial.status = "ok"
        elif run.stop is not None and run.stop(k, float(np.mean(trial.fold_scores))):
            trial.status = "pruned"
        else:
            self.submit(run, k + 1)
            return
        self.finish(run)

    def finish(self, run: _Running) -> None:
        trial = run.trial
        del self.running[trial.number]
        if trial.fold_scores:
            trial.mean = float(np.mean(trial.fold_scores))
            # one fold has no spread to show: None, never a "± 0"
            trial.std = float(np.std(trial.fold_scores)) if len(trial.fold_scores) > 1 else None
            trial.oof = run.oof
        if not self.ordered:
            self.tell(run)
            return
        self.waiting[trial.number] = run
        while len(self.finished) in self.waiting:  # in number order
            told = self.waiting.pop(len(self.finished))
            self.tell(told)
            self.prepare(told.trial.number + self.executor.slots)
            self.start_more()

    def tell(self, run: _Running) -> None:
        trial = run.trial
        if trial.family in self.tuned and not run.promoted:  # studies learn from one rung
            tuner = self.tuner(trial.family)
            if run.handle is None:
                tuner.observe(trial, self.metric)
            else:
                tuner.tell(run.handle, trial, self.metric)
        self.finished.append(trial)
        if trial.rows is not None and trial.status == "ok":
            self.promote(trial)
        if self.on_trial is not None:
            self.on_trial(trial)

    def tuner(self, family: str) -> FamilyTuner:
        if family not in self.tuners:
            space = get_family(family).space()
            self.tuners[family] = FamilyTuner(space, self.ctx.seed, self.families.index(family))
        return self.tuners[family]


def run_fold(data: SearchData, job: FoldJob, on_epoch: EpochHook | None = None) -> FoldResult:
    """Fit and score one fold of one trial, wherever it runs; a failure is returned, with the
    exception in one line, never raised: one family failing must not end the run."""
    started = time.monotonic()
    k = job.fold
    result = FoldResult(job.number, k)
    ctx = job.ctx
    if job.deadline is not None:  # back to this machine's monotonic clock
        ctx = replace(ctx, deadline=time.monotonic() + job.deadline - time.time())

    def record(epoch: int, values: dict[str, float]) -> None:
        result.curves.extend((f"fold_{k}_{key}", v, epoch) for key, v in values.items())
        if on_epoch is not None:
            on_epoch(epoch)

    try:
        cls = get_family(job.family)
        train_idx, val_idx = data.splits[k]
        train, valid = data.fold(k, cls.view)
        if job.rows is not None and job.rows < len(train_idx):  # successive halving's first rung
            part = first_rung(len(train_idx), job.rows, ctx.seed, k)
            train, train_idx = train.rows(part), train_idx[part]
        w = None if data.weights is None else data.weights[train_idx]
        family = cls(job.params, replace(ctx, on_epoch=record)).fit(
            train, data.y[train_idx], valid=(valid, data.y[val_idx]), weights=w
        )
        raise_if_requested()  # a stop the fit's native callbacks may have swallowed
        result.out_of_time = ctx.out_of_time()  # the fit stopped at the clock (not the scoring)
        pred = family.predict_raw(valid)
        if k == 0:
            result.predict_ms = single_row_ms(family, valid)
        result.score = score(job.metric, data.y[val_idx], pred)
        result.pred = pred
        result.fitted = family.fitted_
    except Exception as exc:
        result.error = "".join(traceback.format_exception_only(exc)).strip()
    result.seconds = time.monotonic() - started
    return result


def first_rung(n: int, rows: int, seed: int, fold: int) -> np.ndarray:
    """The positions, among a fold's ``n`` training rows, that successive halving's first rung
    trains on: a seeded sample of ``rows``, the same for every configuration, in row order."""
    rng = np.random.default_rng([seed, fold, 7])
    return np.sort(rng.choice(n, rows, replace=False))


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
    """Complete trials, best first (ties: the earlier); cut ones only when nothing completed.
    Trials that trained on every row of their folds only, unless there is none (successive
    halving's first rung is there to choose what to score again, not to be the final model)."""
    full = [t for t in trials if t.rows is None and t.mean is not None]
    trials = full if any(t.status in ("ok", "cut") for t in full) else trials
    for status in ("ok", "cut"):
        done = [t for t in trials if t.status == status and t.mean is not None]
        if done:
            return sorted(done, key=lambda t: (-signed(metric, t.mean or 0.0), t.number))
    return []
