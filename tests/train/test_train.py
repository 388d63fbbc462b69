"""Training end to end through the Python API, on small generated frames."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.errors import ColumnError, TargetError
from mlwright.train.runner import TrainError
from tests.conftest import make_frame

FAST = {"max_trials": 2, "families": ("lightgbm", "linear")}


def test_binary_model_predicts_the_contract_columns(frame: pd.DataFrame) -> None:
    model = mw.train(frame, target="churned", seed=0, **FAST)
    out = model.predict(frame.drop(columns="churned"))
    assert list(out.columns) == ["prediction", "proba_no", "proba_yes"]
    assert len(out) == len(frame)
    assert set(out.prediction) <= {"no", "yes"}
    np.testing.assert_allclose(out.proba_no + out.proba_yes, 1.0)
    assert model.threshold is not None
    expected = np.where(out.proba_yes >= model.threshold, "yes", "no")
    assert (out.prediction.to_numpy() == expected).all()
    proba = model.predict_proba(frame)
    assert list(proba.columns) == ["proba_no", "proba_yes"]
    assert model.metrics["test_rows"] == 80
    assert set(model.metrics["test"]) >= {"roc_auc", "log_loss", "accuracy"}
    assert model.metrics["cv"]["folds"] == 5


def test_rows_stay_in_input_order(frame: pd.DataFrame) -> None:
    model = mw.train(frame, target="churned", seed=0, **FAST)
    shuffled = frame.sample(frac=1, random_state=3)
    a = model.predict(shuffled).proba_yes.to_numpy()
    b = model.predict(frame).proba_yes.to_numpy()
    np.testing.assert_allclose(a, b[shuffled.index.to_numpy()])


def test_integer_and_boolean_class_labels_are_kept_as_written() -> None:
    frame = make_frame(300)
    ints = frame.assign(churned=(frame.churned == "yes").astype(int))
    out = mw.train(ints, target="churned", **FAST).predict(ints)
    assert list(out.columns) == ["prediction", "proba_0", "proba_1"]
    assert out.prediction.dtype == np.int64
    bools = frame.assign(churned=frame.churned == "yes")
    out = mw.train(bools, target="churned", **FAST).predict(bools)
    assert list(out.columns) == ["prediction", "proba_False", "proba_True"]


def test_multiclass(frame: pd.DataFrame) -> None:
    model = mw.train(frame, target="colour", **FAST)
    out = model.predict(frame)
    assert list(out.columns) == ["prediction", "proba_blue", "proba_green", "proba_red"]
    assert model.threshold is None


def test_regression_intervals_cover_about_their_level() -> None:
    r = np.random.default_rng(0)
    n = 1200
    x = r.normal(size=n)
    frame = pd.DataFrame({"x": x, "z": r.normal(size=n), "y": 3 * x + r.normal(size=n)})
    model = mw.train(frame.iloc[:800], target="y", interval=0.9, **FAST)
    out = model.predict(frame.iloc[800:], interval=0.9)
    assert list(out.columns) == ["prediction", "lower", "upper"]
    y = frame.y.iloc[800:].to_numpy()
    coverage = np.mean((out.lower.to_numpy() <= y) & (y <= out.upper.to_numpy()))
    assert 0.85 <= coverage <= 0.95
    wider = model.predict(frame.iloc[800:], interval=0.99)
    assert (wider.upper - wider.lower).iloc[0] > (out.upper - out.lower).iloc[0]


def test_dates_text_and_high_cardinality_are_used() -> None:
    r = np.random.default_rng(1)
    n = 500
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "shop": [f"s{v}" for v in r.integers(0, 120, n)],
            "note": [
                f"order {i} {'urgent please' if i % 3 == 0 else 'no rush'} thanks" for i in range(n)
            ],
            "x": r.normal(size=n),
        }
    )
    frame["y"] = np.where((frame.index % 3 == 0) | (frame.x > 1), "late", "on time")
    frame = frame.sample(frac=1, random_state=0).reset_index(drop=True)  # no time order
    model = mw.train(frame, target="y", max_trials=3, families=("lightgbm", "linear", "xgboost"))
    actions = {d.subject for d in model.plan.feature_actions}
    assert {"when", "note", "shop"} <= actions
    assert model.metrics["test"]["accuracy"] > 0.9  # the text carries the signal


def test_leaks_are_dropped_unless_kept(frame: pd.DataFrame) -> None:
    leaky = frame.assign(cancel_reason=np.where(frame.churned == "yes", "moved", "none"))
    model = mw.train(leaky, target="churned", **FAST)
    assert "cancel_reason" not in [c.name for c in model.schema.features]
    assert model.schema["cancel_reason"].role == "ignored"
    kept = mw.train(leaky, target="churned", keep_cols="cancel_reason", **FAST)
    assert "cancel_reason" in [c.name for c in kept.schema.features]
    assert kept.metrics["test"]["accuracy"] == 1.0


def test_grouped_split_keeps_groups_apart(frame: pd.DataFrame) -> None:
    from mlwright.train import runner

    grouped = frame.assign(store=np.repeat(np.arange(40), 10))
    model = mw.train(grouped, target="churned", group_col="store", **FAST)
    assert model.plan.validation.kind == "group_kfold"
    prep = runner.prepare_rows(grouped, model.schema, "binary", model.classes, model.plan)
    train_pos, test_pos = runner.split_test(prep, model.plan, "binary", 0)
    stores = grouped.store.to_numpy()
    assert not set(stores[train_pos]) & set(stores[test_pos])


def test_time_split_tests_on_the_latest_rows(frame: pd.DataFrame) -> None:
    from mlwright.train import runner

    dated = frame.assign(day=pd.date_range("2020-01-01", periods=len(frame)))
    model = mw.train(dated, target="churned", time_col="day", **FAST)
    prep = runner.prepare_rows(dated, model.schema, "binary", model.classes, model.plan)
    train_pos, test_pos = runner.split_test(prep, model.plan, "binary", 0)
    assert dated.day.iloc[train_pos].max() < dated.day.iloc[test_pos].min()


def test_bad_targets() -> None:
    frame = make_frame(100)
    with pytest.raises(TargetError, match="has a single value"):
        mw.train(frame.assign(churned="yes"), target="churned", **FAST)
    with pytest.raises(TargetError, match="every value of the target 'churned' is missing"):
        mw.train(frame.assign(churned=np.nan), target="churned", **FAST)
    with pytest.raises(ColumnError, match="the target is never a feature"):
        mw.train(frame, target="churned", keep_cols="churned", **FAST)


def test_missing_and_infinite_features_are_handled_and_reported() -> None:
    frame = make_frame(300)
    frame.loc[::10, "x1"] = np.nan
    frame.loc[5, "x1"] = np.inf
    frame["empty"] = np.nan
    events: list[tuple[str, object]] = []
    from mlwright.config import TrainOptions
    from mlwright.train.runner import run_training as train

    model = train(
        frame, TrainOptions(target="churned", **FAST), on_event=lambda k, p: events.append((k, p))
    )
    decisions = [p for k, p in events if k == "decision"]
    assert decisions == ["treated 1 infinite value(s) in 'x1' as missing"]
    assert model.schema["empty"].role == "constant"
    assert "empty" in model.plan.dropped_names
    assert model.predict(frame).prediction.notna().all()


def test_tiny_data_reduces_folds() -> None:
    frame = make_frame(40)
    frame["churned"] = ["a"] * 36 + ["b"] * 4
    model = mw.train(frame, target="churned", test_size=0.25, **FAST)
    assert model.plan.validation.n_splits == 3  # the rarest class has 3 training rows
    assert "3 folds because the rarest class" in model.plan.validation.reason


def test_too_few_rows_for_the_folds_is_a_data_error_not_a_family_crash() -> None:
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "y": [1.1, 2.47, 3.84, 5.21]})
    options = {"tracker": "none", "max_trials": 1, "task": "regression", "progress": False}
    options["test_size"] = 0.2  # a table this small holds out none unless asked
    with pytest.raises(mw.MlwrightError, match=r"only 3 rows are left for the 2 validation"):
        mw.train(frame, target="y", n_folds=2, **options)
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0], "y": [1.1, 2.47, 3.84, 5.21, 6.58]})
    assert mw.train(frame, target="y", n_folds=2, **options).predict(frame).shape[0] == 5


def test_a_budget_too_small_to_fit_anything(frame: pd.DataFrame) -> None:
    with pytest.raises(TrainError, match=r"time budget \(0.001 s\) is too small"):
        mw.train(frame, target="churned", time_budget=0.001)


def test_time_budget_is_held_with_a_cpu_bound_process_beside_it() -> None:
    r = np.random.default_rng(0)
    n = 4000
    frame = pd.DataFrame(r.normal(size=(n, 10)), columns=[f"f{i}" for i in range(10)])
    frame["y"] = (frame.f0 + frame.f1 * frame.f2 + r.normal(size=n) > 0).astype(int)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        started = time.monotonic()
        model = mw.train(frame, target="y", time_budget=10, tracker="none")
        wall = time.monotonic() - started
    finally:
        busy.kill()
        busy.wait()
    assert wall <= 10 * 1.05 + 5
    assert wall >= 5  # the budget was used, not abandoned
    assert any(t.status == "ok" for t in model.trials)
    assert model.recipe["budget"]["seconds"] == 10


def test_non_utf8_csv_trains(tmp_path: Path) -> None:
    frame = make_frame(200).assign(city=lambda d: np.where(d.x1 > 0, "Zürich", "Genève"))
    path = tmp_path / "latin.csv"
    path.write_bytes(frame.to_csv(index=False).encode("cp1252"))
    model = mw.train(str(path), target="churned", **FAST)
    assert model.recipe["data"]["source"]["encoding"] != "utf-8"
    assert "Zürich" in (model.schema["city"].categories or {})


def test_a_budget_shorter_than_profiling_the_data_still_ends_on_time() -> None:
    from mlwright.config import TrainOptions
    from mlwright.train.runner import run_training as run

    r = np.random.default_rng(1)
    n = 60_000
    frame = pd.DataFrame(r.normal(size=(n, 20)), columns=[f"c{i}" for i in range(20)])
    frame["y"] = (frame.c0 + r.normal(size=n) > 0).astype(int)
    events: list[tuple[str, object]] = []
    started = time.monotonic()
    model = run(
        frame,
        TrainOptions(target="y", time_budget=3, tracker="none"),
        on_event=lambda kind, payload: events.append((kind, payload)),
    )
    assert time.monotonic() - started <= 3 * 1.1 + 10
    assert model.trials and model.predict(frame.head(5)).shape[0] == 5
    assert any(k == "decision" and "the leakage check samples" in str(p) for k, p in events)


def test_thirty_rows_and_five_hundred_columns_train() -> None:
    r = np.random.default_rng(2)
    tiny = pd.DataFrame(r.normal(size=(30, 4)), columns=list("abcd"))
    tiny["y"] = (tiny.a + r.normal(size=30) > 0).astype(int)
    model = mw.train(tiny, target="y", max_trials=3, tracker="none")
    assert model.metrics["test"] is None and model.metrics["test_rows"] == 0
    assert model.metrics["cv"]["folds"] >= 2
    assert model.predict(tiny.head(3)).shape[0] == 3

    wide = pd.DataFrame(r.normal(size=(300, 500)), columns=[f"c{i}" for i in range(500)])
    wide["y"] = (wide.c0 + r.normal(size=300) > 0).astype(int)
    model = mw.train(wide, target="y", max_trials=1, tracker="none")
    assert "wide_data" in {w.code for w in model.problem.warnings}
    assert model.predict(wide.head(3)).shape == (3, 3)


@pytest.mark.slow
def test_a_million_rows_stay_within_a_minute_budget() -> None:
    r = np.random.default_rng(0)
    n = 1_000_000
    frame = pd.DataFrame(
        r.normal(size=(n, 20)).astype("float32"), columns=[f"c{i}" for i in range(20)]
    )
    frame["k"] = r.choice(list("abcdefghij"), n)
    frame["y"] = (frame.c0 + frame.c1 * frame.c2 + r.normal(size=n) > 0).astype(int)
    started = time.monotonic()
    model = mw.train(frame, target="y", time_budget=60, tracker="none")
    assert time.monotonic() - started <= 60 * 1.1 + 10  # profile, search, test fit and refit
    assert model.metrics["test"] is not None and model.metrics["cv"]["mean"] > 0.8


@pytest.mark.slow  # large-data path: in the slow tier with the other long runs
def test_large_data_is_searched_on_a_sample_and_refit_on_every_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlwright.design import plan as plan_module

    monkeypatch.setattr(plan_module, "MIN_SEARCH_ROWS", 600)
    monkeypatch.setattr(plan_module, "SEARCH_CELLS_PER_SECOND", 10)
    frame = make_frame(3000)
    events: list[tuple[str, object]] = []
    from mlwright.config import TrainOptions
    from mlwright.train.runner import run_training as run

    options = TrainOptions(target="churned", time_budget=30, tracker="none", families=("linear",))
    model = run(frame, options, on_event=lambda kind, payload: events.append((kind, payload)))
    assert model.plan.search_rows == 600
    assert "sample of 600 of the 2,400 training rows" in str(model.plan.search_rows_reason)
    assert ("search rows", model.plan.search_rows_reason) in model.plan.lines()
    ok = [t for t in model.trials if t.oof is not None]
    assert ok and all(len(t.oof) == 600 for t in ok)
    assert model.recipe["final_rows"] == 3000  # the refit sees every row
    assert model.plan.refit_on_test is True

    unsampled = plan_module._search_rows(3000, 4, 0.2, None)
    assert unsampled == (None, None)  # --max-trials without a budget never samples


def test_on_large_data_the_test_splits_model_is_the_final_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlwright.design import plan as plan_module
    from mlwright.train import runner

    monkeypatch.setattr(plan_module, "LARGE_DATA_ROWS", 1000)
    fits: list[int] = []
    real_fit = runner.fit_model

    def counted(*args: object, **kwargs: object) -> mw.Model:
        fits.append(len(args[5]))  # type: ignore[arg-type]
        return real_fit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "fit_model", counted)
    frame = make_frame(1500)
    model = mw.train(frame, target="churned", max_trials=2, tracker="none", families=("linear",))
    assert model.plan.refit_on_test is False
    assert "1,500 rows: the model fit for the test split is the final model" in str(
        model.plan.refit_reason
    )
    assert fits == [1200]  # one fit after the search, on the training part
    assert model.recipe["final_rows"] == 1200 and model.metrics["test"]
    assert model.metrics["refit_on_test"] is False
    kept = mw.train(
        frame,
        target="churned",
        max_trials=2,
        tracker="none",
        families=("linear",),
        refit_on_test=True,
    )
    assert kept.plan.refit_on_test is True and kept.recipe["final_rows"] == 1500
