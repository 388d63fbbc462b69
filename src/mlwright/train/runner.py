"""One training run, start to finish (:func:`run_training`).

read → profile → plan → (test split) → search over folds → threshold / conformal residuals out of
fold → score the test split → refit on all rows → golden examples → package. Everything needed to
reproduce the model is written to the recipe; :func:`mlwright.train.reproduce.reproduce` rebuilds
the final model from it, without search.
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright import __version__
from mlwright.config import TrainOptions
from mlwright.data.io import SourceInfo, check_flat, read_table
from mlwright.data.profile import ProblemDefinition, profile_frame
from mlwright.data.rows import infinite_as_missing, usable_target
from mlwright.data.schema import TableSchema
from mlwright.data.tasks import Task
from mlwright.design.plan import (
    SEARCH_SHARE,
    SolutionPlan,
    make_plan,
    profile_settings,
)
from mlwright.distributed import make_executor
from mlwright.errors import ConfigError, DataError, MlwrightError
from mlwright.evaluate.metrics import all_scores
from mlwright.package.golden import make_golden
from mlwright.package.model import Model, encode_target
from mlwright.package.reference import build_reference
from mlwright.report import TabularReporter
from mlwright.stopping import raise_if_requested
from mlwright.track.base import Tracker, git_commit, make_tracker
from mlwright.train.budget import Budget
from mlwright.train.choice import (
    Candidate,
    build_candidates,
    choose_final,
    explain_choice,
    tradeoff,
)
from mlwright.train.ensemble import calibrate
from mlwright.train.evidence import Held, gather
from mlwright.train.fulldata import FileTraining
from mlwright.train.models import Family, FitContext, get_family
from mlwright.train.models.ensemble import EnsembleFamily
from mlwright.train.models.features import FeatureEncoder
from mlwright.train.postprocess import Postprocess, postprocess
from mlwright.train.recipe import (
    RECIPE_FORMAT,
    BudgetRecord,
    ChosenRecord,
    CvRecord,
    DataRecord,
    Recipe,
    TrialRecord,
)
from mlwright.train.refit import (
    Refit,
    align_problem,
    check_features,
    select_columns,
)
from mlwright.train.search import (
    SearchData,
    SearchLimits,
    SearchStarted,
    Trial,
    ranked_trials,
    run_fold,
    run_search,
)
from mlwright.train.threads import fit_threads, search_threads
from mlwright.train.validation import Split, SplitInputs, holdout_split, make_splits

DIGEST_VERSION = 2  # how data_digest hashes the training rows (see there)
GOLDEN_ROWS = 50
Event = Callable[[str, Any], None]


class TrainError(MlwrightError):
    """Training could not produce a model."""


@dataclass
class Prepared:
    """The labelled rows in the model's dtypes, with what the splitters need."""

    features: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray | None
    order: np.ndarray | None
    decisions: list[str]
    digest: str
    kept: np.ndarray | None = None  # the input rows these are (the rest had no usable target)


def run_training(
    data: Any,
    options: TrainOptions,
    *,
    sql: str | None = None,
    on_event: Event | None = None,
    verbose: bool = False,
    default_out: Path | None = None,
    refit: Refit | None = None,
    scale: FileTraining | None = None,
) -> Model:
    """Run training; the package is written to ``options.out``, else to ``default_out/NAME``
    when that is given, else not at all (call ``model.save``). With ``refit``, a retraining of
    a registered version (:mod:`mlwright.train.refit`): its columns, kinds and classes are kept,
    its configurations refit (or searched again), and its lineage recorded. With ``scale``,
    ``data`` is a file set's sample and the final model learns from every row of the files
    (:mod:`mlwright.train.fulldata`)."""
    from mlwright.package.store import check_destination

    started = time.monotonic() if scale is None else scale.started
    emit = on_event or (lambda kind, payload: None)
    if options.out is not None:  # refused now, not after the training it would throw away
        check_destination(Path(options.out))
    emit("step", "reading and profiling the data")
    frame, source = read_table(data, sql=sql)
    if scale is not None:
        source = scale.source
    if refit is not None:
        frame = select_columns(frame, refit, options)
    settings, sampled = profile_settings(options, len(frame), frame.shape[1])
    problem = profile_frame(
        frame,
        source,
        options.target,
        metric=options.metric,
        task=options.task,
        settings=settings,
    )
    if refit is not None:
        problem = align_problem(problem, refit)
    plan = make_plan(problem, options)
    if scale is not None:
        plan = replace(plan, data_scale=scale.plan_text())
    emit("plan", plan)
    if scale is not None and plan.validation.time_column:
        emit(
            "decision",
            f"the rows are in time order by {plan.validation.time_column!r}: the search's folds "
            "validate on later rows of the sample, but the final model learns from rows of "
            "every time but the test split's, so its test score is not a forecast of later "
            "data; hold out a later file and evaluate on it (`mlwright evaluate`)",
        )
    if sampled:
        emit("decision", sampled)
    name = model_name(options, source)
    if options.out is None and default_out is not None:
        check_destination(default_out / name)
    schema = final_schema(problem.schema, plan)
    if refit is not None:
        check_features(schema, refit)
    check_flat(frame, [c.name for c in schema.columns if c.role in ("feature", "target")])
    prep = prepare_rows(frame, schema, problem.task, problem.classes, plan)
    for note in prep.decisions:
        emit("decision", note)
    tracker = make_tracker(options.tracker)
    if tracker.uri:
        emit("tracking", tracker.uri)
    tracker.start(
        experiment=options.experiment or name,
        run_name=f"train {name}",
        params={
            "options": options.model_dump(mode="json"),
            "plan": {
                "task": plan.task,
                "metric": plan.metric,
                "validation": plan.validation.describe(),
                "families": ",".join(plan.family_names),
            },
        },
        tags=_run_tags(options, plan, prep, refit),
    )
    try:
        tracker.log_dataset(
            frame, source=source.location, name=name, target=options.target, digest=prep.digest
        )
        tracker.log_dict(plan.to_dict(), "plan.json")
        tracker.log_dict(problem.to_dict(), "profile.json")
        model = _train_tracked(
            frame,
            source,
            problem,
            plan,
            schema,
            prep,
            options,
            name,
            tracker,
            emit,
            started=started,
            verbose=verbose,
            default_out=default_out,
            refit=refit,
            scale=scale,
        )
    except BaseException as exc:
        _finish_quietly(tracker, killed=isinstance(exc, KeyboardInterrupt))
        raise
    tracker.finish(True)
    return model


train = run_training  # the earlier name, kept for code that imports it


def _finish_quietly(tracker: Tracker, *, killed: bool = False) -> None:
    # the original error matters more than a failed status update
    with contextlib.suppress(Exception):
        tracker.finish(False, killed=killed)


def _run_tags(
    options: TrainOptions, plan: SolutionPlan, prep: Prepared, refit: Refit | None = None
) -> dict[str, str]:
    tags = {
        "mlwright.seed": str(options.seed),
        "mlwright.data_digest": prep.digest,
        "mlwright.task": plan.task,
        "mlwright.metric": plan.metric,
    }
    if refit is not None:
        tags.update(refit.lineage.tags())
    tags.update({f"mlwright.lib.{k}": v for k, v in library_versions().items()})
    commit = git_commit()
    if commit:
        tags["mlwright.git_commit"] = commit
    return tags


@dataclass
class _Run:
    """One training run's inputs and the facts every stage shares."""

    source: SourceInfo
    problem: ProblemDefinition
    plan: SolutionPlan
    schema: TableSchema
    prep: Prepared
    options: TrainOptions
    name: str
    tracker: Tracker
    emit: Event
    started: float
    verbose: bool
    threads: int = 1
    refit: Refit | None = None
    scale: FileTraining | None = None

    @property
    def seed(self) -> int:
        return self.options.seed

    @property
    def task(self) -> Task:
        return self.problem.task

    @property
    def n_classes(self) -> int:
        return len(self.problem.classes) if self.problem.classes else 0


@dataclass
class _Layout:
    """Which rows do what: the test split, the search's rows and folds, the final model's."""

    train_pos: np.ndarray
    test_pos: np.ndarray
    search_pos: np.ndarray
    final_pos: np.ndarray
    splits: list[Split]
    weights: np.ndarray | None
    search_data: SearchData
    early_pos: np.ndarray | None = None  # a file set's: kept out of the data-parallel fit

    @property
    def fits(self) -> int:
        """Fits after the search: the test split's model, then (when it differs) the refit."""
        return 2 if len(self.test_pos) and len(self.final_pos) > len(self.train_pos) else 1

    @property
    def fit_rows(self) -> int:
        """Rows fitted after the search, all fits together."""
        return len(self.final_pos) + (len(self.train_pos) if self.fits == 2 else 0)


def _train_tracked(
    frame: pd.DataFrame,
    source: SourceInfo,
    problem: ProblemDefinition,
    plan: SolutionPlan,
    schema: TableSchema,
    prep: Prepared,
    options: TrainOptions,
    name: str,
    tracker: Tracker,
    emit: Event,
    *,
    started: float,
    verbose: bool,
    default_out: Path | None,
    refit: Refit | None = None,
    scale: FileTraining | None = None,
) -> Model:
    """The run's stages after the plan: lay out the rows, search, choose and refit, gather the
    evidence, record the recipe, then write, log and register the package."""
    run = _Run(source, problem, plan, schema, prep, options, name, tracker, emit, started, verbose)
    run.refit, run.scale = refit, scale
    run.threads, shared = fit_threads(options, timed=plan.time_budget is not None)
    if shared:
        emit("decision", shared)
    layout = _lay_out(run)
    clock = Budget(
        plan.time_budget if scale is None else scale.sample_budget(plan.time_budget),
        started,
        folds=len(layout.splits),
        search_rows=len(layout.search_pos),
        after_rows=layout.fit_rows,
        metric=plan.metric,
        tracked=tracker.active,
    )
    trials, where = _search(run, layout, clock)
    finals = _Finals(run, layout, clock)
    chosen = finals.choose(trials)
    _gather_evidence(run, layout, finals, chosen, clock)
    model = chosen.model
    model.metrics, model.recipe = _record(run, layout, finals, chosen, clock, where)
    model.reporter = TabularReporter()  # the package's report/, and model.report()
    _publish(run, model, chosen, default_out)
    model.recipe.elapsed_s = round(time.monotonic() - started, 3)
    return model


# the fewest rows one validation fold may fit on
_MIN_FIT_ROWS = 2


def _lay_out(run: _Run) -> _Layout:
    """The test split, the search's sample and folds, class weights and the final rows."""
    prep, plan, options = run.prep, run.plan, run.options
    train_pos, test_pos = split_test(prep, plan, run.task, run.seed)
    search_pos = search_sample(prep, plan, train_pos, run.task, run.seed)
    try:
        splits = make_splits(plan.validation, split_inputs(prep, search_pos, run.task), run.seed)
    except ValueError as exc:
        raise DataError(f"cannot build validation folds: {exc}", fix="use fewer folds") from None
    fitted = min((len(fit) for fit, _ in splits), default=0)
    if fitted < _MIN_FIT_ROWS:  # a model cannot learn from fewer: the families would fail
        raise DataError(
            f"only {len(search_pos)} rows are left for the {len(splits)} validation folds after "
            f"the held-out test split, so a fold fits on {fitted} row(s); at least "
            f"{_MIN_FIT_ROWS} are needed",
            fix="collect more rows (a few dozen at the least), or lower --test-size",
        )
    weights = class_weights(prep.y, run.n_classes) if plan.class_weights else None
    final_pos = (
        np.arange(len(prep.y))
        if (refits_on_test(plan, options) or not len(test_pos))
        else train_pos
    )
    early_pos = None
    if run.scale is not None:  # the final model is fitted once, on every row but these
        final_pos, early_pos = train_pos, run.scale.early_rows(train_pos, run.seed)
    return _Layout(
        train_pos,
        test_pos,
        search_pos,
        final_pos,
        splits,
        weights,
        search_rows_data(prep, run.schema, search_pos, splits, weights, options),
        early_pos,
    )


def _search(run: _Run, layout: _Layout, clock: Budget) -> tuple[list[Trial], dict[str, Any]]:
    """Every trial, and where the search ran (the executor's description and threads)."""
    plan, options, emit, budget = run.plan, run.options, run.emit, run.plan.time_budget
    # on Ray, a trial runs on a worker with its own threads (one by default: more trials at once)
    trial_threads = search_threads(options, run.threads)
    if options.backend == "ray":
        emit("step", "connecting to Ray")
    executor = make_executor(
        options, layout.search_data, trial_threads, run=run_fold, versions=library_versions
    )
    with contextlib.closing(executor):  # a Ray runtime this run started ends here
        where = executor.describe()
        if where["backend"] == "ray":
            emit(
                "decision",
                f"the search runs on Ray ({where['address']}, {where['nodes']} node(s), "
                f"{where['cluster_cpus']:g} CPUs): {where['workers']} trial(s) at a time, "
                f"{trial_threads} thread(s) each; the final refit runs here",
            )
        if budget is not None and time.monotonic() - run.started >= budget * SEARCH_SHARE:
            raise TrainError(
                f"the time budget ({budget:g} s) is too small: reading and profiling the data"
                f"{' and connecting to Ray' if where['backend'] == 'ray' else ''} alone took "
                f"{time.monotonic() - run.started:.1f} s, leaving no time to fit a model",
                fix="pass a larger --time-budget, or --max-trials N without a budget",
            )

        def on_trial(trial: Trial) -> None:
            emit("trial", trial)
            run.tracker.log_trial(trial.to_dict(), plan.metric, trial.curves)

        emit("step", f"searching {', '.join(plan.family_names)}")
        emit(
            "search",
            SearchStarted(
                metric=plan.metric,
                families=list(plan.family_names),
                folds=len(layout.splits),
                max_trials=plan.max_trials,
                budget=budget,
                deadline=clock.deadline,
            ),
        )
        trials = run_search(
            layout.search_data,
            plan.family_names,
            task=run.task,
            n_classes=run.n_classes,
            metric=plan.metric,
            seed=run.seed,
            threads=trial_threads,
            limits=SearchLimits(
                max_trials=plan.max_trials, budget=clock, halving_rows=plan.halving_rows
            ),
            on_trial=on_trial,
            on_progress=lambda trial, fold, epoch: emit("running", (trial, fold, epoch)),
            verbose=run.verbose,
            static=None if run.refit is None else run.refit.static,
            executor=executor,
        )
    return trials, {**where, "threads": trial_threads}


@dataclass
class _Chosen:
    """The choice's outcome: the final model and what was measured on the way."""

    best: Candidate
    model: Model
    candidates: list[Candidate]
    combinations: list[dict[str, Any]]
    test_metrics: dict[str, float] | None
    held: Held | None
    checks: list[dict[str, Any]]
    trials: list[Trial]


class _Finals:
    """Turns candidates into fitted models: refit parameters, post-processing (learned once per
    candidate), the test split's score, the final refit with golden rows."""

    def __init__(self, run: _Run, layout: _Layout, clock: Budget) -> None:
        self.run, self.layout, self.clock = run, layout, clock
        self.ctx = FitContext(run.task, run.n_classes, run.seed, run.threads, verbose=run.verbose)
        self.posts: dict[int, Postprocess] = {}

    def refit(self, trial: Trial) -> dict[str, Any]:
        run = self.run
        return _refit_params(trial, run.task, run.n_classes, run.seed, run.threads)

    def post_of(self, candidate: Candidate) -> Postprocess:
        if id(candidate) not in self.posts:
            run, layout = self.run, self.layout
            self.posts[id(candidate)] = postprocess(
                candidate.oof,
                layout.search_data.y,
                layout.splits,
                run.task,
                run.plan.threshold_metric,
                run.seed,
            )
        return self.posts[id(candidate)]

    def fit(self, candidate: Candidate, rows: np.ndarray) -> Model:
        run = self.run
        if run.scale is not None:
            return self.fit_every_row(candidate, run.scale)
        family, params = candidate.spec(self.refit)
        fitted = fit_model(
            run.prep, run.schema, family, params, self.ctx, rows, self.layout.weights, run.options
        )
        raise_if_requested()  # a stop the fit's native callbacks may have swallowed
        fitted.classes = run.problem.classes
        post = self.post_of(candidate)
        fitted.threshold, fitted.temperature = post.threshold, post.temperature
        fitted.residual_quantiles, fitted.n_residuals = post.residual_quantiles, post.n_residuals
        return fitted

    def fit_every_row(self, candidate: Candidate, scale: FileTraining) -> Model:
        """A file set's final model: the candidate's configuration boosted data-parallel over
        every row but the test and early-stopping rows; its post-processing learned again from
        its predictions on the early-stopping rows."""
        run, layout = self.run, self.layout
        assert layout.early_pos is not None and run.prep.kept is not None
        early = layout.early_pos
        fitted = scale.fit(
            schema=run.schema,
            task=run.task,
            classes=run.problem.classes,
            params=candidate.members[0].params,
            ctx=self.ctx,
            features=run.prep.features,
            y=run.prep.y,
            kept=run.prep.kept,
            train_pos=layout.train_pos,
            held_pos=np.union1d(layout.test_pos, early),
            early_pos=early,
            balanced=run.plan.class_weights,
        )
        raise_if_requested()
        fitted.classes = run.problem.classes
        post = postprocess(
            fitted.raw(run.prep.features.iloc[early]),
            run.prep.y[early],
            [(np.arange(0), np.arange(len(early)))],
            run.task,
            run.plan.threshold_metric,
            run.seed,
        )
        self.posts[id(candidate)] = post
        fitted.threshold, fitted.temperature = post.threshold, post.temperature
        fitted.residual_quantiles, fitted.n_residuals = post.residual_quantiles, post.n_residuals
        return fitted

    def finish(self, candidate: Candidate, fitted: Model | None = None) -> Model:
        """The candidate refit on the final rows (unless ``fitted`` is that already),
        post-processed, with golden rows."""
        run, rows = self.run, self.layout.final_pos
        fitted = fitted or self.fit(candidate, rows)
        fitted.name = run.name
        fitted.golden = make_golden(fitted, run.prep.features.iloc[rows], GOLDEN_ROWS, run.seed)
        return fitted

    def score_test(
        self, candidate: Candidate, fitted: Model | None = None
    ) -> tuple[dict[str, float] | None, Held | None]:
        """Every metric on the test split, of the candidate fit on the training part alone
        (``fitted`` when that is it already), and the held-out rows with its predictions."""
        run, test_pos = self.run, self.layout.test_pos
        if not len(test_pos):
            return None, None
        run.emit("step", "scoring the test split")
        fitted = fitted or self.fit(candidate, self.layout.train_pos)
        features, y = run.prep.features.iloc[test_pos], run.prep.y[test_pos]
        raw = fitted.raw(features)
        threshold = 0.5 if fitted.threshold is None else fitted.threshold
        held = Held(features, y, raw, fitted, f"the test split ({len(test_pos)} rows)")
        return all_scores(run.task, y, raw, threshold), held

    def choose(self, trials: list[Trial]) -> _Chosen:
        """Combine the trials out of fold, choose, score the test split and refit."""
        run, layout, emit, metric = self.run, self.layout, self.run.emit, self.run.plan.metric
        ranked = ranked_trials(trials, metric)
        if not ranked:
            raise _no_model_error(trials, run.plan.time_budget)
        emit("best", ranked[0])
        emit("step", "combining the best trials out of fold")
        if run.scale is not None:  # one configuration trains data-parallel
            ranked = ranked[:1]
        candidates, combinations = build_candidates(
            ranked,
            layout.search_data.y,
            [val for _, val in layout.splits],
            metric=metric,
            task=run.task,
            seed=run.seed,
            fit_seconds=lambda ms: self.clock.refit_seconds(ms, len(layout.final_pos), layout.fits),
            time_left=self.clock.for_refits(),
            combine_until=self.clock.combine_until(),
        )
        checks: list[dict[str, Any]] = []
        one_fit = layout.fits == 1 and len(layout.test_pos) > 0  # the test model is the final
        if run.options.latency_budget_ms is None and run.options.max_model_mb is None:
            best = candidates[0]
            test_metrics, held = self.score_test(best)  # before the final refit
            emit("step", "packaging the final model" if one_fit else "refitting the final model")
            model = self.finish(best, held.model if one_fit and held else None)
        else:  # the final models are measured to choose; the test split is scored after
            emit("step", "refitting and measuring the final model")
            best, model, checks = choose_final(candidates, self.finish, run.options, emit)
            test_metrics, held = self.score_test(best, model if one_fit else None)
        reason = explain_choice(best, combinations, metric) if best is candidates[0] else None
        if reason:  # (a candidate passed over for latency or size says so itself)
            emit("decision", reason)
        for line in self.post_of(best).decisions():
            emit("decision", line)
        model.problem, model.plan, model.trials = run.problem, run.plan, trials
        return _Chosen(best, model, candidates, combinations, test_metrics, held, checks, trials)


def _gather_evidence(
    run: _Run, layout: _Layout, finals: _Finals, chosen: _Chosen, clock: Budget
) -> None:
    """The monitoring reference and the report's evidence, on the model."""
    run.emit("step", "gathering the evaluation for the report")
    model, best, final_rows = chosen.model, chosen.best, layout.final_pos
    temperature = finals.post_of(best).temperature
    oof = best.oof if temperature is None else calibrate(best.oof, temperature)
    scored = ~np.isnan(oof if oof.ndim == 1 else oof[:, 0])
    model.reference = build_reference(
        run.prep.features.iloc[final_rows], run.schema, run.task, oof[scored], run.problem.classes
    )
    checks = chosen.checks
    model.evidence = gather(
        model,
        task=run.task,
        metric=run.plan.metric,
        validation=(layout.search_data.y, oof),
        test=chosen.held,
        fallback=(run.prep.features.iloc[final_rows], run.prep.y[final_rows]),
        members=best.members,
        seed=run.seed,
        budget=clock,
        latency_ms=checks[-1]["p99_ms"] if checks and checks[-1]["ok"] else None,
    )


def _record(
    run: _Run,
    layout: _Layout,
    finals: _Finals,
    chosen: _Chosen,
    clock: Budget,
    where: dict[str, Any],
) -> tuple[dict[str, Any], Recipe]:
    """The model's metrics and its recipe: everything reproducing it and the report need."""
    plan, options, best, test_pos = run.plan, run.options, chosen.best, layout.test_pos
    family_name, refit_params = best.spec(finals.refit)
    post = finals.post_of(best)
    cv = cv_summary(best, chosen.trials, plan.metric, len(layout.splits), refit_params)
    metrics = {
        "cv": cv,
        "test": chosen.test_metrics,
        "test_rows": len(test_pos),
        "refit_on_test": bool(
            len(test_pos) and refits_on_test(plan, options) and run.scale is None
        ),
    }
    recipe = Recipe(
        recipe_format=RECIPE_FORMAT,
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        name=run.name,
        seed=run.seed,
        threads=run.threads,
        options=options.model_dump(mode="json"),
        plan=plan.to_dict(),
        data=DataRecord(
            source=run.source.to_dict(),
            digest=run.prep.digest,
            rows=len(run.prep.y),
            columns=run.schema.names,
            decisions=run.prep.decisions,
        ),
        search=where,
        budget=BudgetRecord(**clock.to_dict()),
        trials=[TrialRecord(**t.to_dict()) for t in chosen.trials],
        chosen=ChosenRecord(
            trial=best.number,
            family=family_name,
            kind=best.kind,
            members=[t.number for t in best.members],
            params=best.members[0].params if best.kind == "single" else None,
            refit_params=refit_params,
            calibration=post.calibration,
            threshold=post.threshold_choice or None,
            combinations=chosen.combinations,
            tradeoff=tradeoff(chosen.candidates),
            constraints_checked=chosen.checks,
        ),
        problem={k: v for k, v in run.problem.to_dict().items() if k != "schema"},
        cv=CvRecord(**cv),
        test_rows=len(test_pos),
        final_rows=len(layout.final_pos),
        library_versions=library_versions(),
        elapsed_s=round(time.monotonic() - run.started, 3),
    )
    if run.refit is not None:
        recipe.lineage = run.refit.lineage
    if run.scale is not None:
        recipe.scale = run.scale.record
        recipe.final_rows = run.scale.record["fit"]["rows"]
        recipe.chosen.refit_params = {**refit_params, "rounds": run.scale.record["fit"]["rounds"]}
    return metrics, recipe


def _publish(run: _Run, model: Model, chosen: _Chosen, default_out: Path | None) -> None:
    """The final metrics to the tracker; the package written (``--out``, or under
    ``default_out``), logged and registered."""
    tracker, metric, cv = run.tracker, run.plan.metric, model.metrics["cv"]
    final = {f"cv_{metric}": chosen.best.mean or 0.0}
    if cv["std"] is not None:
        final[f"cv_std_{metric}"] = cv["std"]
    final.update({f"test_{k}": v for k, v in (chosen.test_metrics or {}).items()})
    tracker.log_metrics(final)
    out = run.options.out or (None if default_out is None else str(default_out / run.name))
    if out is not None:
        run.emit("step", "writing the model package")
        model.save(out)
    if not tracker.active:
        return
    run.emit("step", "logging and registering the model")
    tracker.log_dict(model.recipe.to_dict(), "recipe.json")
    tracker.log_dict(run.schema.to_dict(), "schema.json")
    if model.path is None:
        with tempfile.TemporaryDirectory(prefix="mlwright-package-") as tmp:
            registry = tracker.log_model(model, model.save(Path(tmp) / run.name))
            tracker.log_folder(Path(tmp) / run.name / "report", "report")
        model.path = None
    else:
        registry = tracker.log_model(model, model.path)
        tracker.log_folder(model.path / "report", "report")
    model.registry = registry
    if registry:
        run.emit("registered", registry)


def model_name(options: TrainOptions, source: SourceInfo) -> str:
    if options.name:
        return _slug(options.name)
    if source.kind == "sql":
        raise ConfigError("a model trained from SQL needs a name", fix="pass --name NAME")
    if source.kind == "frame":
        return _slug(options.target)
    if source.kind == "files":
        from mlwright.data.files import is_file_set

        root = Path(source.location)
        while is_file_set(str(root)) and not root.is_dir():
            root = root.parent
        return _slug(root.resolve().name)
    stem = Path(source.location).name.split(".")[0]
    return _slug(stem)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "model"


def final_schema(schema: TableSchema, plan: SolutionPlan) -> TableSchema:
    for decision in plan.dropped_columns:
        if schema[decision.subject].role == "feature":
            schema = schema.with_roles({decision.subject: "ignored"}, decision.reason)
    if not schema.features:
        raise DataError(
            "no feature columns are left after dropping identifiers, constants and leaks: "
            + ", ".join(plan.dropped_names),
            fix="keep a column with --keep-col, or add informative columns",
        )
    return schema


def prepare_rows(
    frame: pd.DataFrame,
    schema: TableSchema,
    task: Task,
    classes: tuple[Any, ...] | None,
    plan: SolutionPlan,
    digest: int = DIGEST_VERSION,
) -> Prepared:
    target = schema.target
    assert target is not None
    keep = usable_target(frame[target], task)
    rows = frame.loc[keep].reset_index(drop=True)
    decisions = []
    if (~keep).any():
        decisions.append(f"left out {int((~keep).sum())} row(s) without a usable target value")
    cleaned = rows.copy()
    for name, count in infinite_as_missing(cleaned, schema).items():
        decisions.append(f"treated {count} infinite value(s) in {name!r} as missing")
    features = schema.enforce(cleaned)
    y = encode_target(rows[target], task, classes)
    v = plan.validation
    groups = None
    if v.group_column:
        groups = pd.factorize(rows[v.group_column].astype(str))[0]
    order = None
    if v.time_column:
        col = schema[v.time_column]
        values = rows[v.time_column]
        if col.kind == "datetime":
            from mlwright.data.schema import parse_datetime

            dt = (
                values
                if pd.api.types.is_datetime64_any_dtype(values.dtype)
                else parse_datetime(values.astype(str), col.datetime_format)
            )
            order = np.array(dt.astype("int64"), dtype="float64")
            order[dt.isna().to_numpy()] = -np.inf
        else:
            order = pd.to_numeric(values, errors="coerce").fillna(-np.inf).to_numpy(dtype="float64")
    digest_ = data_digest(rows, schema, digest)
    return Prepared(features, y, groups, order, decisions, digest_, np.flatnonzero(keep))


def data_digest(rows: pd.DataFrame, schema: TableSchema, version: int = DIGEST_VERSION) -> str:
    """sha256 over the columns the run used: their names, dtypes and every value, hashed in
    their own types (``v2:`` digests). Version 1, recorded by earlier releases, hashed every
    value's text, which took 20 s on a million rows; `reproduce` recomputes the recipe's version."""
    used = [c.name for c in schema.columns if c.role in ("feature", "target")]
    h = hashlib.sha256()
    h.update("\x1f".join(used).encode())
    if version == 1:
        hashed = pd.util.hash_pandas_object(rows[used].astype(str), index=False)
        h.update(hashed.to_numpy().tobytes())
        return h.hexdigest()
    h.update("\x1f".join(str(rows[c].dtype) for c in used).encode())
    h.update(pd.util.hash_pandas_object(rows[used], index=False).to_numpy().tobytes())
    return f"v2:{h.hexdigest()}"


def digest_version(digest: str) -> int:
    return 2 if digest.startswith("v2:") else 1


def split_test(
    prep: Prepared, plan: SolutionPlan, task: Task, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    n = len(prep.y)
    if not plan.test_size:
        return np.arange(n), np.arange(0)
    inputs = SplitInputs(n, prep.y if task != "regression" else None, prep.groups, prep.order)
    train_pos, test_pos = holdout_split(
        inputs,
        plan.test_size,
        seed,
        by_time=prep.order is not None,
        by_group=prep.groups is not None,
    )
    return np.sort(train_pos), np.sort(test_pos)


def search_rows_data(
    prep: Prepared,
    schema: TableSchema,
    rows: np.ndarray,
    splits: list[Split],
    weights: np.ndarray | None,
    options: TrainOptions,
) -> SearchData:
    """The search's view of ``rows``: features, target, weights and folds over them."""
    return SearchData(
        features=prep.features.iloc[rows].reset_index(drop=True),
        columns=schema.features,
        y=prep.y[rows],
        weights=None if weights is None else weights[rows],
        splits=splits,
        encoder_factory=lambda: FeatureEncoder(options.features),
    )


def refits_on_test(plan: SolutionPlan, options: TrainOptions) -> bool:
    return options.refit_on_test if plan.refit_on_test is None else plan.refit_on_test


def split_inputs(prep: Prepared, rows: np.ndarray, task: Task) -> SplitInputs:
    """What the splitters need about ``rows``: class codes, groups and time order."""
    return SplitInputs(
        len(rows),
        prep.y[rows] if task != "regression" else None,
        None if prep.groups is None else prep.groups[rows],
        None if prep.order is None else prep.order[rows],
    )


def search_sample(
    prep: Prepared, plan: SolutionPlan, train_pos: np.ndarray, task: Task, seed: int
) -> np.ndarray:
    """The training rows the search scores trials on: all, or the plan's sample (stratified,
    whole groups, or the latest rows for a time order)."""
    n = len(train_pos)
    if plan.search_rows is None or plan.search_rows >= n:
        return train_pos
    _, sample = holdout_split(
        split_inputs(prep, train_pos, task),
        plan.search_rows / n,
        seed + 1,
        by_time=prep.order is not None,
        by_group=prep.groups is not None,
    )
    return np.asarray(train_pos[np.sort(sample)])


def cv_summary(
    best: Candidate, trials: list[Trial], metric: str, planned: int, refit: dict[str, Any]
) -> dict[str, Any]:
    """The chosen model's cross-validated score, with what it rests on: folds completed of
    those planned, trials the clock cut, trials whose rounds it capped, and a note when the
    budget bit (None when it did not)."""
    cut = [t for t in trials if t.status == "cut"]
    folds = best.folds
    problems = []
    if folds < planned:
        problems.append(
            f"the score rests on {folds} of {planned} planned validation fold(s)"
            + (": no spread across folds to show" if folds < 2 else "")
        )
    rung = [t.rows for t in best.members if t.rows is not None]
    if rung:
        problems.append(
            f"no configuration was scored again on every row in time: the chosen trial trained on "
            f"{min(rung):,} rows of each fold (successive halving's first rung)"
        )
    clock = []
    if any(t.status == "cut" for t in best.members):
        clock.append("the chosen trial was cut by the clock")
    capped = sum(t.capped_folds for t in best.members)
    if capped:
        clock.append(f"its rounds or epochs were capped by time in {capped} fold(s)")
    if clock and best.kind == "single" and refit.get("rounds") is not None:
        clock.append(f"the final model has {refit['rounds']} boosting round(s)")
    if clock:
        problems.append("; ".join(clock))
    note = None
    if problems:
        note = (
            f"the time budget bit: {'; '.join(problems)} ({len(cut)} trial(s) cut in all); "
            f"a larger --time-budget gives a sounder model"
        )
    return {
        "metric": metric,
        "mean": best.mean,
        "std": best.std if folds > 1 else None,
        "folds": folds,
        "folds_planned": planned,
        "trials_cut": len(cut),
        "trials_capped": sum(1 for t in trials if t.capped_folds),
        "note": note,
    }


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype("float64")
    per_class = len(y) / (n_classes * np.clip(counts, 1, None))
    return np.asarray(per_class[y], dtype="float64")


def _no_model_error(trials: list[Trial], budget: float | None) -> TrainError:
    failed = [t for t in trials if t.status == "failed"]
    if trials and len(failed) == len(trials):
        listed = "; ".join(f"{t.family}: {t.error}" for t in failed[:5])
        return TrainError(
            f"every trial failed: {listed}", fix="check the data; report a bug if it looks fine"
        )
    return TrainError(
        f"the time budget ({budget:g} s) is too small: no model finished one validation fold",
        fix="pass a larger --time-budget (a few seconds per 10,000 rows), or --max-trials 1",
    )


def _refit_params(
    best: Trial, task: Task, n_classes: int, seed: int, threads: int
) -> dict[str, Any]:
    """Refit hyperparameters from the folds: the mean of what each fold learned."""
    cls = get_family(best.family)
    family = cls(best.params, FitContext(task, n_classes, seed, threads))
    merged: dict[str, Any] = {}
    # a fold capped at its share of the time is in; the fold of a trial cut by the search's end
    # stopped after a few rounds and is left out (unless it is the only one)
    fitted = best.fitted[:-1] if best.last_fold_cut and len(best.fitted) > 1 else best.fitted
    for key in fitted[0] if fitted else ():
        values = [f[key] for f in fitted]
        if all(isinstance(v, bool) for v in values):
            merged[key] = all(values)
        elif all(isinstance(v, int) for v in values):
            merged[key] = round(float(np.mean(values)))
        elif all(isinstance(v, (int, float)) for v in values):
            merged[key] = float(np.mean(values))
        else:
            merged[key] = values[0]
    family.fitted_ = merged
    return family.refit_params()


def fit_model(
    prep: Prepared,
    schema: TableSchema,
    family_name: str,
    params: dict[str, Any],
    ctx: FitContext,
    rows: np.ndarray,
    weights: np.ndarray | None,
    options: TrainOptions,
) -> Model:
    encoder = FeatureEncoder(options.features).fit(prep.features.iloc[rows], schema.features)
    features = prep.features.iloc[rows]
    w = None if weights is None else weights[rows]
    family: Family
    if family_name == EnsembleFamily.name:
        family = EnsembleFamily(params, ctx).fit_members(
            lambda view: encoder.transform(features, view), prep.y[rows], w
        )
    else:
        cls = get_family(family_name)
        family = cls(params, ctx).fit(
            encoder.transform(features, cls.view), prep.y[rows], weights=w
        )
    return Model(name="", task=ctx.task, schema=schema, encoder=encoder, family=family)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "mlwright": __version__}
    for key, dist in (
        ("numpy", "numpy"),
        ("pandas", "pandas"),
        ("scikit-learn", "scikit-learn"),
        ("lightgbm", "lightgbm"),
        ("xgboost", "xgboost-cpu"),
        ("catboost", "catboost"),
        ("torch", "torch"),
        ("pyarrow", "pyarrow"),
    ):
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            if dist == "xgboost-cpu":
                with contextlib.suppress(PackageNotFoundError):
                    out[key] = version("xgboost")
    return out
