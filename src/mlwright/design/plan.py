"""Design a solution: from a ProblemDefinition and the user's constraints to a SolutionPlan.

The plan says which model families to try and why (and which not, and why), how to validate,
how the time budget is spent, which columns are dropped, what is done with dates, text and
high-cardinality categories, whether class weights are used, and how the decision threshold is
tuned. It is printed before training starts and saved with the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlwright.config import ProfileSettings, TrainOptions
from mlwright.data.profile import ProblemDefinition
from mlwright.errors import ColumnError, ConfigError, DataError, suggest
from mlwright.train.models import FAMILIES, PLANNED, Family
from mlwright.train.models.catboost import CatBoostFamily
from mlwright.train.models.forest import BYTES_PER_NODE, BaggedTrees
from mlwright.train.models.mlp import MLPFamily

SplitKind = Literal["stratified_kfold", "kfold", "group_kfold", "time_series", "holdout"]

# What the plan knows of each model family (order, latency, size, cost, the least data it
# needs) are the family's own facts, class attributes of its Family (mlwright.train.models);
# the names below are kept for code that reads them from here.
FAMILY_ORDER = tuple(f.name for f in PLANNED)
LARGE_DATA_ROWS = 100_000  # above: a holdout instead of k folds
MLP_MIN_ROWS = MLPFamily.min_rows
SMALL_DATA_ROWS = 100  # below: no test split unless --test-size asks for one
FOREST_MAX_ROWS = BaggedTrees.max_rows
# the search may use the budget up to what the test fit, the refit and packaging need (estimated
# from the trials' own times), and never leaves less than this share of the budget for them
MIN_RESERVE_SHARE = 0.1
SEARCH_SHARE = 1 - MIN_RESERVE_SHARE
DEFAULT_BUDGET = 60.0  # seconds, when neither --time-budget nor --max-trials is given
# the profile's leakage check in a training run: its share of the budget, its measured cost per
# row and column (3 folds of a shallow tree, 2 cores: 50,000 rows x 20 columns in about 4 s) and
# the fewest rows it samples whatever the budget
PROFILE_SHARE = 0.15
LEAK_SECONDS_PER_CELL = 4e-6
MIN_LEAK_ROWS = 2_000
# on large data the search scores trials on a sample: rows x columns it may use per second of
# budget (a LightGBM fold on 2 cores handles about this many cells per second), and the fewest
# rows it samples; the final model is refit on every row
SEARCH_CELLS_PER_SECOND = 100_000
MIN_SEARCH_ROWS = 50_000
HALVING_MIN_FOLD_ROWS = 12_000  # fold training rows from which the search halves (timed runs)
HALVING_SHARE = 0.25  # of a fold's training rows, the first rung's
HALVING_MIN_ROWS = 4_000
SLOW_SINGLE_ROW_MS = {f.name: f.single_row_ms for f in PLANNED if f.single_row_ms is not None}
# a family with a default_trial_seconds_per_cell (CatBoost) is left out, unless asked for, when
# its default trial would take more than this share of the search budget
DEFAULT_TRIAL_MAX_SHARE = 0.25
CATBOOST_SECONDS_PER_CELL = CatBoostFamily.default_trial_seconds_per_cell
CATBOOST_MAX_SHARE = DEFAULT_TRIAL_MAX_SHARE
BYTES_PER_FOREST_NODE = BYTES_PER_NODE


@dataclass(frozen=True)
class ValidationStrategy:
    kind: SplitKind
    n_splits: int
    reason: str
    holdout_fraction: float = 0.2
    group_column: str | None = None
    time_column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.kind == "holdout":
            return f"holdout ({self.holdout_fraction:.0%} of the training rows)"
        extra = ""
        if self.group_column:
            extra = f" by {self.group_column!r}"
        if self.time_column:
            extra = f" ordered by {self.time_column!r}"
        return f"{self.kind.replace('_', ' ')}, {self.n_splits} folds{extra}"


@dataclass(frozen=True)
class Decision:
    subject: str
    reason: str


@dataclass(frozen=True)
class SolutionPlan:
    task: str
    metric: str
    metric_reason: str
    families: tuple[Decision, ...]
    excluded_families: tuple[Decision, ...]
    validation: ValidationStrategy
    test_size: float
    dropped_columns: tuple[Decision, ...]
    feature_actions: tuple[Decision, ...]
    time_budget: float | None
    max_trials: int | None
    search_seconds: float | None
    class_weights: bool
    class_weights_reason: str
    threshold_metric: str | None
    interval: float | None
    seed: int
    constraints: dict[str, Any] = field(default_factory=dict)
    test_reason: str | None = None  # why the test split differs from --test-size
    search_rows: int | None = None  # the search's sample of the training rows (None: all)
    search_rows_reason: str | None = None
    refit_on_test: bool | None = None  # None in plans of earlier releases: the option decides
    refit_reason: str | None = None
    # successive halving: configurations are first scored training on this many rows of each
    # fold (None: every trial trains on whole folds)
    halving_rows: int | None = None
    halving_reason: str | None = None
    # a file set's training: what ran on the sample, what on every row, and where
    data_scale: str | None = None

    @property
    def family_names(self) -> list[str]:
        return [d.subject for d in self.families]

    @property
    def dropped_names(self) -> list[str]:
        return [d.subject for d in self.dropped_columns]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SolutionPlan:
        def decisions(key: str) -> tuple[Decision, ...]:
            return tuple(Decision(**x) for x in d[key])

        return cls(
            **{
                **d,
                "families": decisions("families"),
                "excluded_families": decisions("excluded_families"),
                "dropped_columns": decisions("dropped_columns"),
                "feature_actions": decisions("feature_actions"),
                "validation": ValidationStrategy(**d["validation"]),
            }
        )

    def lines(self) -> list[tuple[str, str]]:
        budget = "none (trials are never cut by the clock)"
        if self.time_budget is not None and self.data_scale:
            budget = (
                f"{self.time_budget:g} s: half for the sample's run (profile, search, evidence), "
                "the rest for the pass over every row and the data-parallel fit, which stops "
                "boosting when the budget ends"
            )
        elif self.time_budget is not None:
            budget = (
                f"{self.time_budget:g} s: up to {self.search_seconds:.0f} s for the search, less "
                "what scoring the test split, the final refit and the package are estimated to "
                "need from the trials' own times"
            )
        rows = [
            ("task", self.task),
            ("metric", f"{self.metric} — {self.metric_reason}"),
            ("validation", f"{self.validation.describe()} — {self.validation.reason}"),
            (
                "test split",
                (
                    f"{self.test_size:.0%} of the sample held out, kept out of every fit, scored "
                    "on the final model"
                    if self.data_scale
                    else f"{self.test_size:.0%} held out, scored before the final refit"
                )
                if self.test_size
                else "none" + (f" — {self.test_reason}" if self.test_reason else ""),
            ),
            ("time budget", budget),
        ]
        if self.data_scale:
            rows.insert(0, ("data", self.data_scale))
        if self.max_trials is not None:
            rows.append(("trials", f"at most {self.max_trials}, in a fixed order"))
        if self.search_rows_reason:
            rows.append(("search rows", self.search_rows_reason))
        if self.halving_reason:
            rows.append(("successive halving", self.halving_reason))
        if self.refit_reason:
            rows.append(("final refit", self.refit_reason))
        rows += [(f"family: {d.subject}", d.reason) for d in self.families]
        rows += [(f"not tried: {d.subject}", d.reason) for d in self.excluded_families]
        rows += [(f"drop {d.subject}", d.reason) for d in self.dropped_columns]
        rows += [(f"features: {d.subject}", d.reason) for d in self.feature_actions]
        rows.append(("class weights", self.class_weights_reason))
        if self.threshold_metric:
            rows.append(
                ("decision threshold", f"tuned out of fold to maximise {self.threshold_metric}")
            )
        if self.interval:
            rows.append(
                ("intervals", f"{self.interval:.0%} split-conformal, from out-of-fold residuals")
            )
        rows.append(("seed", str(self.seed)))
        return rows


def run_budget(options: TrainOptions) -> float | None:
    """Seconds for the whole run: ``--time-budget``, else 60 s unless ``--max-trials`` is given."""
    if options.time_budget is None and options.max_trials is None:
        return DEFAULT_BUDGET
    return options.time_budget


def profile_settings(
    options: TrainOptions, n_rows: int, n_columns: int
) -> tuple[ProfileSettings, str | None]:
    """The profile's settings for a training run, and why they differ from the user's: the
    leakage check (one shallow tree per column and fold) gets at most PROFILE_SHARE of the time
    budget, by sampling fewer rows. A sample size the user set is kept."""
    cfg = options.profile
    budget = run_budget(options)
    if budget is None or "leakage_sample_rows" in cfg.model_fields_set:
        return cfg, None
    affordable = int(PROFILE_SHARE * budget / (LEAK_SECONDS_PER_CELL * max(n_columns, 1)))
    rows = max(MIN_LEAK_ROWS, affordable)
    if rows >= min(n_rows, cfg.leakage_sample_rows):
        return cfg, None
    note = (
        f"the leakage check samples {rows:,} of {n_rows:,} rows so that profiling {n_columns} "
        f"columns stays within {PROFILE_SHARE:.0%} of the {budget:g} s budget"
    )
    return cfg.model_copy(update={"leakage_sample_rows": rows}), note


def make_plan(problem: ProblemDefinition, options: TrainOptions) -> SolutionPlan:
    """The plan for ``problem`` under ``options``; raises on options that contradict the data."""
    columns = problem.schema.names
    _check_columns(problem, options, columns)
    budget = run_budget(options)
    n_rows = problem.n_rows - problem.n_target_missing
    test_size, test_reason = _test_split(options, n_rows)
    options = options.model_copy(update={"test_size": test_size})
    families, excluded = _choose_families(problem, options, n_rows, budget)
    validation = _validation(problem, options, n_rows)
    dropped = _dropped(problem, options)
    search_rows, search_reason = _search_rows(n_rows, len(columns), test_size, budget)
    halving_rows, halving_reason = _halving(
        search_rows or int(n_rows * (1 - test_size)), validation, budget
    )
    refit_on_test, refit_reason = _refit_on_test(options, n_rows)
    weights, weights_reason = _class_weights(problem)
    threshold = None
    if problem.task == "binary":
        from mlwright.evaluate.metrics import THRESHOLD_METRICS

        if problem.metric in THRESHOLD_METRICS:
            threshold = problem.metric
        else:
            threshold = (
                "balanced_accuracy" if problem.warnings_with("class_imbalance") else "accuracy"
            )
    interval = options.interval if problem.task == "regression" else None
    if options.interval is not None and problem.task != "regression":
        raise ConfigError(
            "--interval applies to regression only", fix="drop --interval for classification"
        )
    return SolutionPlan(
        task=problem.task,
        metric=problem.metric,
        metric_reason=problem.metric_reason,
        families=tuple(families),
        excluded_families=tuple(excluded),
        validation=validation,
        test_size=options.test_size,
        test_reason=test_reason,
        search_rows=search_rows,
        search_rows_reason=search_reason,
        halving_rows=halving_rows,
        halving_reason=halving_reason,
        refit_on_test=refit_on_test,
        refit_reason=refit_reason,
        dropped_columns=tuple(dropped),
        feature_actions=tuple(_feature_actions(problem, dropped)),
        time_budget=budget,
        max_trials=options.max_trials,
        search_seconds=None if budget is None else round(budget * SEARCH_SHARE, 3),
        class_weights=weights,
        class_weights_reason=weights_reason,
        threshold_metric=threshold,
        interval=interval,
        seed=options.seed,
        constraints={
            "latency_budget_ms": options.latency_budget_ms,
            "max_model_mb": options.max_model_mb,
        },
    )


def _search_rows(
    n_rows: int, n_columns: int, test_size: float, budget: float | None
) -> tuple[int | None, str | None]:
    """How many training rows the search scores trials on: all of them unless the budget
    affords too few trials on every row. Without a budget (--max-trials) it never samples."""
    if budget is None:
        return None, None
    train_rows = int(n_rows * (1 - test_size))
    cap = max(MIN_SEARCH_ROWS, int(budget * SEARCH_CELLS_PER_SECOND / max(n_columns, 1)))
    if train_rows <= cap:
        return None, None
    return cap, (
        f"trials are scored on a sample of {cap:,} of the {train_rows:,} training rows, so that "
        f"the {budget:g} s budget affords several; the final model is refit on all rows"
    )


def training_rows_per_fold(rows: float, folds: int) -> float:
    """Rows each fold trains on when ``rows`` are cut into ``folds`` folds (a holdout: 80%)."""
    return max(rows * (folds - 1) / folds if folds > 1 else rows * 0.8, 1.0)


def _halving(
    search_rows: int, validation: ValidationStrategy, budget: float | None
) -> tuple[int | None, str | None]:
    """Successive halving when each fold trains on HALVING_MIN_FOLD_ROWS rows or more, with a
    time budget: configurations are first scored training on a share of each fold's rows (its
    validation rows scored in full), and only the best of them are scored again on every row.
    Without a budget (--max-trials) every trial trains on whole folds."""
    if budget is None:
        return None, None
    fold_rows = int(training_rows_per_fold(search_rows, validation.n_splits))
    if fold_rows < HALVING_MIN_FOLD_ROWS:
        return None, None
    rows = max(HALVING_MIN_ROWS, int(fold_rows * HALVING_SHARE))
    return rows, (
        f"each configuration is first scored training on {rows:,} of the ~{fold_rows:,} rows of "
        f"each fold (its validation rows scored in full); the best third of those are scored "
        f"again on every row, and only they can become the final model (unless none could be "
        f"scored again in time, which the run reports): the budget tries more configurations"
    )


def _refit_on_test(options: TrainOptions, n_rows: int) -> tuple[bool, str | None]:
    """Whether the final model is refit on the test rows too (a second fit on all rows). On
    large data the model that scored the test split is the final model: 20% more rows gain
    little there, and a second fit would double the time after the search."""
    if not options.test_size or "refit_on_test" in options.model_fields_set:
        return options.refit_on_test, None
    if n_rows < LARGE_DATA_ROWS:
        return True, None
    return False, (
        f"{n_rows:,} rows: the model fit for the test split is the final model (refitting on "
        "the test rows as well would double the time after the search; refit_on_test: true "
        "asks for it)"
    )


def _check_columns(problem: ProblemDefinition, options: TrainOptions, columns: list[str]) -> None:
    named = {
        "--keep-col": options.keep_cols,
        "--drop-col": options.drop_cols,
        "--group-col": (options.group_col,) if options.group_col else (),
        "--time-col": (options.time_col,) if options.time_col else (),
    }
    for flag, names in named.items():
        for name in names:
            if name == problem.target:
                raise ColumnError(
                    f"{flag} {name}: {name!r} is the target; the target is never a feature",
                    fix=f"remove {flag} {name}",
                )
            if name not in columns:
                raise ColumnError(
                    f"{flag} {name}: no such column; {suggest(name, columns)}",
                    fix="pass a column name exactly as it appears in the data",
                )
    both = set(options.keep_cols) & set(options.drop_cols)
    if both:
        raise ConfigError(
            f"{sorted(both)} given to both --keep-col and --drop-col", fix="pick one of the two"
        )
    if options.time_col and problem.schema[options.time_col].kind not in (
        "datetime",
        "integer",
        "numeric",
    ):
        kind = problem.schema[options.time_col].kind
        raise ColumnError(
            f"--time-col {options.time_col}: the column is {kind}, "
            "not dates or numbers, so it cannot order the rows",
            fix="pass a date or timestamp column",
        )
    if options.group_col and options.time_col:
        raise ConfigError(
            "--group-col and --time-col cannot be combined", fix="choose one validation strategy"
        )


def _choose_families(
    problem: ProblemDefinition, options: TrainOptions, n_rows: int, budget: float | None
) -> tuple[list[Decision], list[Decision]]:
    known = {f.name: f for f in PLANNED}
    reasons = {name: FAMILIES[name].about for name in FAMILIES}
    chosen: list[Decision] = []
    excluded: list[Decision] = []
    wanted = FAMILY_ORDER if options.families is None else options.families
    for name in options.families or ():
        if name not in FAMILY_ORDER:
            raise ConfigError(
                f"unknown model family {name!r}", fix=f"use {', '.join(FAMILY_ORDER)}"
            )
    for name in wanted:
        why_not = _exclusion(known[name], problem, options, n_rows, budget)
        if why_not is None and name not in FAMILIES:
            why_not = "PyTorch is not installed (pip install 'mlwright[torch]')"
        if why_not is not None:
            excluded.append(Decision(name, why_not))
        else:
            chosen.append(Decision(name, reasons[name]))
    if not chosen:
        raise ConfigError(
            "no model family fits these constraints: "
            + "; ".join(f"{d.subject}: {d.reason}" for d in excluded),
            fix="relax --latency-budget-ms / --max-model-mb, or allow more families",
        )
    return chosen, excluded


def _exclusion(
    family: type[Family],
    problem: ProblemDefinition,
    options: TrainOptions,
    n_rows: int,
    budget: float | None,
) -> str | None:
    """Why the plan leaves ``family`` out, from the family's facts, or None."""
    return (
        _too_large(family, options, n_rows)
        or _too_slow_to_predict(family, options)
        or _too_slow_to_search(family, problem, options, n_rows, budget)
        or _too_little(family, options, n_rows, budget)
    )


def _too_large(family: type[Family], options: TrainOptions, n_rows: int) -> str | None:
    if family.max_rows is not None and n_rows > family.max_rows:
        return f"{n_rows:,} rows: {family.noun} would be slow to fit and large on disk"
    if family.disk_bytes_per_row is not None and options.max_model_mb is not None:
        estimate_mb = family.disk_bytes_per_row * n_rows / 1e6
        if estimate_mb > options.max_model_mb:
            return (
                f"about {estimate_mb:.0f} MB on disk, over --max-model-mb {options.max_model_mb:g}"
            )
    return None


def _too_slow_to_predict(family: type[Family], options: TrainOptions) -> str | None:
    latency, typical = options.latency_budget_ms, family.single_row_ms
    if latency is not None and typical is not None and typical > latency:
        return (
            f"a single-row prediction takes about {typical:g} ms, over "
            f"--latency-budget-ms {latency:g}"
        )
    return None


def _too_slow_to_search(
    family: type[Family],
    problem: ProblemDefinition,
    options: TrainOptions,
    n_rows: int,
    budget: float | None,
) -> str | None:
    per_cell = family.default_trial_seconds_per_cell
    if per_cell is None or options.families is not None or budget is None:
        return None
    n_columns = len(problem.schema.features)
    train_rows = int(n_rows * (1 - options.test_size))
    sampled = _search_rows(n_rows, len(problem.schema.names), options.test_size, budget)[0]
    rows = sampled or train_rows
    seconds = per_cell * rows * max(n_columns, 1)
    if seconds > DEFAULT_TRIAL_MAX_SHARE * budget * SEARCH_SHARE:
        return (
            f"its default trial on {rows:,} rows x {n_columns} columns would take about "
            f"{seconds:,.1f} s, too much of a {budget:g} s budget; LightGBM and XGBoost fit "
            f"faster (a larger --time-budget, --max-trials or --families {family.name} tries it)"
        )
    return None


def _too_little(
    family: type[Family], options: TrainOptions, n_rows: int, budget: float | None
) -> str | None:
    """Too few rows or too short a budget for the family to be worth trying unasked."""
    if options.families is not None:
        return None
    if n_rows < family.min_rows:
        return f"{n_rows} rows: too few for {family.noun} to beat trees"
    if budget is not None and budget < family.min_budget:
        return f"a {budget:g} s budget is better spent on boosted trees"
    return None


def _test_split(options: TrainOptions, n_rows: int) -> tuple[float, str | None]:
    """The test split's share: ``--test-size``, except on tiny data when it was not given."""
    if "test_size" in options.model_fields_set or n_rows >= SMALL_DATA_ROWS:
        return options.test_size, None
    held = round(n_rows * options.test_size)
    return 0.0, (
        f"{n_rows} rows: a {held}-row test split would measure noise; the cross-validated score "
        "is the estimate and every row trains the model (--test-size overrides)"
    )


def _validation(
    problem: ProblemDefinition, options: TrainOptions, n_rows: int
) -> ValidationStrategy:
    k = options.n_folds
    train_rows = int(n_rows * (1 - options.test_size))
    if options.group_col:
        return ValidationStrategy(
            "group_kfold",
            k,
            f"--group-col {options.group_col}: no group is in both sides",
            group_column=options.group_col,
        )
    time_col = options.time_col
    reason = f"--time-col {time_col}: each fold validates on later rows than it trains on"
    if time_col is None and problem.suggested_time_column:
        sorted_rows = any(
            w.evidence.get("rows_sorted")
            for w in problem.warnings_with("time_order")
            if w.columns == (problem.suggested_time_column,)
        )
        if sorted_rows:
            time_col = problem.suggested_time_column
            reason = (
                f"the rows are in time order by {time_col!r} (found by the profile): validating "
                "on later rows than the model trains on"
            )
    if time_col:
        return ValidationStrategy("time_series", k, reason, time_column=time_col)
    if train_rows > LARGE_DATA_ROWS:
        return ValidationStrategy(
            "holdout",
            1,
            f"{train_rows:,} training rows: one holdout is reliable and k× cheaper",
            holdout_fraction=0.2,
        )
    if problem.task == "regression":
        return ValidationStrategy("kfold", k, "shuffled k-fold cross-validation")
    assert problem.class_balance is not None
    smallest = min(c.count for c in problem.class_balance)
    per_class_in_train = int(smallest * (1 - options.test_size))
    if per_class_in_train < 2:
        raise DataError(
            f"class {min(problem.class_balance, key=lambda c: c.count).label!r} has only "
            f"{smallest} row(s): too few to validate",
            fix="collect more rows of that class, merge it into another, or drop its rows",
        )
    if per_class_in_train < k:
        return ValidationStrategy(
            "stratified_kfold",
            per_class_in_train,
            f"stratified k-fold; {per_class_in_train} folds because the rarest class has only "
            f"{per_class_in_train} training rows",
        )
    return ValidationStrategy(
        "stratified_kfold", k, "stratified k-fold keeps class shares in every fold"
    )


def _dropped(problem: ProblemDefinition, options: TrainOptions) -> list[Decision]:
    reasons: dict[str, str] = {}
    for col in problem.schema.columns:
        if col.role in ("id", "constant"):
            reasons[col.name] = f"{col.role}: {col.role_reason}"
    for w in problem.warnings_with("target_leakage"):
        reasons[w.columns[0]] = f"likely target leak: {w.message}"
    for name in options.drop_cols:
        reasons[name] = "--drop-col"
    if options.group_col:
        reasons[options.group_col] = "the group column of the grouped split"
    for name in options.keep_cols:
        reasons.pop(name, None)
    return [Decision(name, why) for name, why in reasons.items()]


def _feature_actions(problem: ProblemDefinition, dropped: list[Decision]) -> list[Decision]:
    gone = {d.subject for d in dropped}
    actions = []
    for col in problem.schema.columns:
        if col.name in gone or col.role == "target":
            continue
        if col.kind == "datetime":
            actions.append(
                Decision(col.name, "calendar parts (year, month, day, weekday) and elapsed days")
            )
        elif col.kind == "text":
            actions.append(Decision(col.name, "TF-IDF of its most frequent terms"))
        elif col.kind == "categorical" and col.n_unique > problem.settings.high_cardinality:
            actions.append(
                Decision(
                    col.name,
                    f"{col.n_unique} categories: native categorical splits for trees, frequency "
                    "encoding plus the top levels one-hot for linear models, embeddings for "
                    "the MLP",
                )
            )
    return actions


def _class_weights(problem: ProblemDefinition) -> tuple[bool, str]:
    if problem.task == "regression":
        return False, "not used (regression)"
    from mlwright.evaluate.metrics import THRESHOLD_METRICS

    imbalanced = bool(problem.warnings_with("class_imbalance"))
    if problem.metric in ("balanced_accuracy", "f1", "f1_macro"):
        return True, f"balanced: {problem.metric} weighs the rare classes up"
    if imbalanced and problem.metric in THRESHOLD_METRICS:
        return True, "balanced: the classes are imbalanced and the metric counts labels"
    if imbalanced:
        return False, (
            f"not used: {problem.metric} is scored on probabilities, which class weights would "
            "distort; the threshold is tuned instead"
        )
    return False, "not needed: the classes are balanced enough"
