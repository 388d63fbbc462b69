from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.config import TrainOptions
from mlwright.design import plan as plan_module
from mlwright.design.plan import SolutionPlan, make_plan
from mlwright.errors import ColumnError, ConfigError, DataError
from mlwright.train.models.catboost import CatBoostFamily
from mlwright.train.models.linear import LinearFamily
from tests.conftest import make_frame


def plan_for(frame: pd.DataFrame, target: str = "churned", **options: object):  # type: ignore[no-untyped-def]
    problem = mw.profile(frame, target=target, metric=options.pop("metric", None))  # type: ignore[arg-type]
    return make_plan(problem, TrainOptions(target=target, **options))  # type: ignore[arg-type]


def test_default_plan(frame: pd.DataFrame) -> None:
    plan = plan_for(frame)
    assert plan.validation.kind == "stratified_kfold"
    assert plan.validation.n_splits == 5
    assert plan.time_budget == 60.0  # neither budget nor trials given
    assert plan.search_seconds == pytest.approx(54.0)
    assert plan.family_names[:3] == ["lightgbm", "xgboost", "linear"]
    assert "mlp" in [d.subject for d in plan.excluded_families]  # 400 rows
    assert plan.threshold_metric == "accuracy"
    assert not plan.class_weights
    lines = dict(plan.lines())
    assert lines["validation"].startswith("stratified kfold, 5 folds")
    assert SolutionPlan.from_dict(plan.to_dict()) == plan


def test_regression_uses_kfold_and_interval(frame: pd.DataFrame) -> None:
    plan = plan_for(frame, target="x1", interval=0.9, max_trials=3)
    assert plan.validation.kind == "kfold"
    assert plan.interval == 0.9
    assert plan.time_budget is None  # --max-trials alone: the clock never cuts a trial
    assert plan.threshold_metric is None


def test_group_and_time_validation(frame: pd.DataFrame) -> None:
    grouped = frame.assign(store=np.repeat(np.arange(40), 10))
    plan = plan_for(grouped, group_col="store")
    assert plan.validation.kind == "group_kfold"
    assert "store" in plan.dropped_names
    dated = frame.assign(day=pd.date_range("2020-01-01", periods=len(frame)).strftime("%Y-%m-%d"))
    assert plan_for(dated).validation.kind == "time_series"  # rows sorted by 'day'
    shuffled = dated.sample(frac=1, random_state=0).reset_index(drop=True)
    assert plan_for(shuffled).validation.kind == "stratified_kfold"  # dates, but not in order
    explicit = plan_for(shuffled, time_col="day")
    assert (explicit.validation.kind, explicit.validation.time_column) == ("time_series", "day")
    with pytest.raises(ConfigError, match="cannot be combined"):
        plan_for(grouped.assign(day=dated.day), group_col="store", time_col="day")


def test_large_data_uses_a_holdout(frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_module, "LARGE_DATA_ROWS", 100)
    plan = plan_for(frame)
    assert plan.validation.kind == "holdout"
    assert "one holdout" in plan.validation.reason


def test_constraints_exclude_families(frame: pd.DataFrame) -> None:
    plan = plan_for(frame, latency_budget_ms=5.0, max_model_mb=1.0)
    excluded = {d.subject: d.reason for d in plan.excluded_families}
    assert "random_forest" in excluded
    assert "extra_trees" in excluded
    assert "lightgbm" in plan.family_names
    only = plan_for(frame, families=("linear",))
    assert only.family_names == ["linear"]
    with pytest.raises(ConfigError, match="unknown model family 'tabpfn'"):
        plan_for(frame, families=("tabpfn",))


def test_the_plan_reads_each_familys_facts_from_its_class(
    frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert plan_module.FAMILY_ORDER == (
        "lightgbm", "xgboost", "linear", "catboost", "hist_gb", "extra_trees", "random_forest",
        "mlp",
    )  # fmt: skip
    assert plan_for(frame, latency_budget_ms=5.0).family_names[:3] == [
        "lightgbm", "xgboost", "linear",
    ]  # fmt: skip
    monkeypatch.setattr(LinearFamily, "single_row_ms", 8.0)  # as if slow to predict
    plan = plan_for(frame, latency_budget_ms=5.0)
    excluded = {d.subject: d.reason for d in plan.excluded_families}
    assert excluded["linear"] == (
        "a single-row prediction takes about 8 ms, over --latency-budget-ms 5"
    )


def test_catboost_is_left_out_when_its_default_trial_would_eat_a_short_budget(
    frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "catboost" in plan_for(frame).family_names  # 400 rows, 60 s
    # as if slow: 9.6 s (a family fact, read from the class)
    monkeypatch.setattr(CatBoostFamily, "default_trial_seconds_per_cell", 1e-2)
    short = plan_for(frame, time_budget=20)
    excluded = {d.subject: d.reason for d in short.excluded_families}
    assert "would take about 9.6 s, too much of a 20 s budget" in excluded["catboost"]
    assert "catboost" in plan_for(frame, max_trials=3).family_names  # the clock cuts nothing
    asked = plan_for(frame, time_budget=20, families=("lightgbm", "catboost"))
    assert asked.family_names == ["lightgbm", "catboost"]


def test_dropped_and_kept_columns(frame: pd.DataFrame) -> None:
    leaky = frame.assign(
        outcome_code=np.where(frame.churned == "yes", 7, 3), row=np.arange(len(frame))
    )
    plan = plan_for(leaky)
    assert set(plan.dropped_names) == {"outcome_code", "row"}
    kept = plan_for(leaky, keep_cols=("outcome_code",), drop_cols=("x2",))
    assert set(kept.dropped_names) == {"row", "x2"}


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        ({"keep_cols": ("churned",)}, ColumnError, "the target is never a feature"),
        (
            {"drop_cols": ("churnd",)},
            ColumnError,
            "--drop-col churnd: no such column; did you mean 'churned'",
        ),
        (
            {"keep_cols": ("x1",), "drop_cols": ("x1",)},
            ConfigError,
            "both --keep-col and --drop-col",
        ),
        ({"interval": 0.9}, ConfigError, "--interval applies to regression only"),
        ({"time_col": "colour"}, ColumnError, "cannot order the rows"),
    ],
)
def test_contradictory_options(
    frame: pd.DataFrame, options: dict[str, object], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        plan_for(frame, **options)


def test_class_weights_follow_the_metric() -> None:
    frame = make_frame(600)
    frame.loc[frame.index[:560], "churned"] = "no"
    plan = plan_for(frame, metric="balanced_accuracy")
    assert plan.class_weights
    assert plan.threshold_metric == "balanced_accuracy"
    default = plan_for(frame)
    assert not default.class_weights
    assert "threshold is tuned instead" in default.class_weights_reason


def test_a_class_too_small_to_validate() -> None:
    frame = make_frame(100)
    frame["churned"] = ["a"] * 99 + ["b"]
    with pytest.raises(DataError, match="class 'b' has only 1 row"):
        plan_for(frame)


def test_a_small_budget_samples_the_leakage_check_and_says_so() -> None:
    from mlwright.design.plan import profile_settings

    options = TrainOptions(target="y", time_budget=3)
    settings, note = profile_settings(options, n_rows=60_000, n_columns=21)
    assert settings.leakage_sample_rows == 5_357  # 0.15 * 3 s / (4e-6 s * 21 columns)
    assert note == (
        "the leakage check samples 5,357 of 60,000 rows so that profiling 21 columns stays "
        "within 15% of the 3 s budget"
    )
    wide, _ = profile_settings(TrainOptions(target="y"), n_rows=60_000, n_columns=5_000)
    assert wide.leakage_sample_rows == 2_000  # never fewer rows than that, whatever the budget


@pytest.mark.parametrize(
    "options",
    [
        {"time_budget": 60},  # the default sample already fits the budget
        {"max_trials": 3},  # no budget: nothing to keep within
        {"time_budget": 3, "profile": {"leakage_sample_rows": 40_000}},  # the user's choice
    ],
)
def test_the_leakage_sample_is_left_alone(options: dict[str, object]) -> None:
    from mlwright.design.plan import profile_settings

    opts = TrainOptions.from_mapping({"target": "y", **options})
    settings, note = profile_settings(opts, n_rows=60_000, n_columns=21)
    assert note is None and settings == opts.profile


def tiny_frame(n: int = 30) -> pd.DataFrame:
    r = np.random.default_rng(0)
    frame = pd.DataFrame(r.normal(size=(n, 4)), columns=list("abcd"))
    frame["y"] = (frame.a + r.normal(size=n) > 0).astype(int)
    return frame


def test_tiny_data_keeps_every_row_for_cross_validation() -> None:
    plan = plan_for(tiny_frame(), target="y")
    assert plan.test_size == 0.0
    assert plan.test_reason is not None and plan.test_reason.startswith("30 rows: a 6-row test")
    assert ("test split", f"none — {plan.test_reason}") in plan.lines()
    assert "mlp" not in plan.family_names
    asked = plan_for(tiny_frame(), target="y", test_size=0.2)  # the user's choice stands
    assert asked.test_size == 0.2 and asked.test_reason is None
    assert SolutionPlan.from_dict(plan.to_dict()) == plan
