from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import mlwright as mw
from mlwright.config import ProfileSettings
from mlwright.data.profile import ProblemDefinition
from mlwright.errors import ConfigError, TargetError
from tests.conftest import make_frame


def codes(p: ProblemDefinition) -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for w in p.warnings:
        out.setdefault(w.code, []).append(w.columns)
    return out


# --- task and metric ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "task", "reason"),
    [
        (["yes", "no"], "binary", "categorical target with 2 distinct values → binary"),
        ([True, False], "binary", "boolean target → binary"),
        ([0, 1], "binary", "integer target with 2 distinct values → binary"),
        (["a", "b", "c"], "multiclass", "categorical target with 3 distinct values → multiclass"),
        (
            [1, 2, 3],
            "multiclass",
            "integer target with 3 distinct values → multiclass (if it is a count",
        ),
        (
            list(range(59)),
            "regression",
            "integer target with 59 distinct values (more than 10) → regression",
        ),
        ([0.5, 1.25, 3.0], "regression", "numeric target with non-integer values → regression"),
    ],
)
def test_task_is_inferred_with_its_reason(values: list[object], task: str, reason: str) -> None:
    n = 240
    r = np.random.default_rng(1)
    y = [values[i % len(values)] for i in range(n)]
    frame = pd.DataFrame({"x": r.normal(size=n), "y": y})
    p = mw.profile(frame, target="y")
    assert p.task == task
    assert p.task_reason.startswith(reason)


def test_default_metrics_and_overrides(frame: pd.DataFrame) -> None:
    p = mw.profile(frame, target="churned")
    assert (p.metric, p.greater_is_better) == ("roc_auc", True)
    assert p.classes == ("no", "yes")
    assert p.positive_class == "yes"
    assert mw.profile(frame, target="churned", metric="log_loss").metric == "log_loss"
    with pytest.raises(ConfigError, match="metric 'rmse' does not fit a binary task"):
        mw.profile(frame, target="churned", metric="rmse")
    reg = mw.profile(frame, target="x1")
    assert (reg.task, reg.metric, reg.greater_is_better) == ("regression", "rmse", False)
    assert reg.target_summary is not None and set(reg.target_summary) >= {"mean", "std", "median"}
    multi = mw.profile(frame, target="colour")
    assert (multi.task, multi.metric) == ("multiclass", "log_loss")


def test_task_override(frame: pd.DataFrame) -> None:
    frame = frame.assign(visits=np.arange(len(frame)) % 4)
    p = mw.profile(frame, target="visits", task="regression")
    assert p.task == "regression"
    assert p.task_reason.startswith("set by the user")
    with pytest.raises(TargetError, match="--task binary needs exactly 2 target values"):
        mw.profile(frame, target="visits", task="binary")
    with pytest.raises(TargetError, match="--task regression needs a numeric target"):
        mw.profile(frame, target="colour", task="regression")
    with pytest.raises(ConfigError, match="unknown task 'ranking'"):
        mw.profile(frame, target="visits", task="ranking")


def test_unusable_targets(frame: pd.DataFrame) -> None:
    with pytest.raises(TargetError, match="has a single value"):
        mw.profile(frame.assign(y=1), target="y")
    with pytest.raises(TargetError, match="every value of the target 'y' is missing"):
        mw.profile(frame.assign(y=np.nan), target="y")
    with pytest.raises(TargetError, match="holds dates"):
        mw.profile(frame.assign(y=pd.date_range("2020", periods=len(frame))), target="y")


# --- warnings -----------------------------------------------------------------------------------


def test_a_clean_frame_has_no_warnings(frame: pd.DataFrame) -> None:
    p = mw.profile(frame, target="churned")
    assert p.warnings == ()
    assert p.dropped_columns == ()


def test_planted_leakage_is_found_both_ways() -> None:
    n = 1000
    r = np.random.default_rng(3)
    x = r.normal(size=n)
    y = (x + r.normal(scale=1.0, size=n) > 0).astype(int)
    frame = pd.DataFrame(
        {
            "honest": x,
            "noise": r.normal(size=n),
            "refund_amount": np.where(y == 1, r.uniform(10, 100, n), 0.0),  # recorded after
            "status_code": np.where(y == 1, "CLOSED", "OPEN"),
            "y": y,
        }
    )
    p = mw.profile(frame, target="y")
    leaks = {w.columns[0]: w for w in p.warnings_with("target_leakage")}
    assert set(leaks) == {"refund_amount", "status_code"}
    assert leaks["refund_amount"].severity == "high"
    assert leaks["refund_amount"].evidence["score"] >= 0.98
    assert "--drop-col refund_amount" in leaks["refund_amount"].action
    assert set(p.dropped_columns) == {"refund_amount", "status_code"}
    assert p.leakage["scores"]["honest"]["forward"] < 0.9

    # regression: a bucketing of the target cannot predict it back, but the target predicts it
    target = r.normal(50, 10, n)
    reg = pd.DataFrame(
        {
            "honest": target + r.normal(scale=10, size=n),
            "band": pd.cut(target, [-np.inf, 40, 60, np.inf], labels=["low", "mid", "high"]).astype(
                str
            ),
            "price_in_cents": target * 100,
            "y": target,
        }
    )
    p = mw.profile(reg, target="y")
    leaks = {w.columns[0]: w.evidence["direction"] for w in p.warnings_with("target_leakage")}
    assert leaks == {
        "price_in_cents": "feature_predicts_target",
        "band": "target_determines_feature",
    }


def test_leakage_check_samples_large_data() -> None:
    n = 5000
    r = np.random.default_rng(4)
    y = r.integers(0, 2, n)
    frame = pd.DataFrame({"copy": y * 3 + 1, "x": r.normal(size=n), "y": y})
    p = mw.profile(frame, target="y", settings=ProfileSettings(leakage_sample_rows=500))
    assert p.leakage["rows_used"] == 500
    assert p.leaking_columns == ["copy"]
    assert any("seeded sample of 500" in note for note in p.notes)


def test_identifiers_and_groups(rng: np.random.Generator) -> None:
    n = 300
    frame = make_frame(n).assign(
        row_number=np.arange(1, n + 1),
        order_uuid=[f"{rng.integers(16**8):08x}-{i:04x}" for i in range(n)],
        household_id=np.repeat(np.arange(30), 10),
    )
    p = mw.profile(frame, target="churned")
    found = codes(p)
    assert sorted(found["id_column"]) == [("order_uuid",), ("row_number",)]
    assert found["group_column"] == [("household_id",)]
    assert p.suggested_group_column == "household_id"
    assert {"row_number", "order_uuid"} <= set(p.dropped_columns)
    (group,) = p.warnings_with("group_column")
    assert group.evidence == {"n_groups": 30, "mean_rows_per_group": 10.0}


def test_duplicates_and_conflicting_duplicates() -> None:
    base = make_frame(200)
    dupes = base.iloc[:5]
    conflict = base.iloc[10:13].assign(churned=lambda d: np.where(d.churned == "yes", "no", "yes"))
    frame = pd.concat([base, dupes, conflict], ignore_index=True)
    frame["customer_id"] = np.arange(len(frame))  # must not hide the duplicates
    p = mw.profile(frame, target="churned")
    (dup,) = p.warnings_with("duplicate_rows")
    assert dup.evidence["n_duplicate_rows"] == 5
    assert dup.evidence["ignored_columns"] == ["customer_id"]
    (conf,) = p.warnings_with("conflicting_duplicates")
    assert conf.evidence == {"n_rows": 6, "n_groups": 3, "ignored_columns": ["customer_id"]}


def test_constant_near_constant_high_cardinality_missing_and_mixed(
    rng: np.random.Generator,
) -> None:
    n = 1000
    frame = make_frame(n).assign(
        version=["v1"] * n,
        promo=["none"] * 995 + ["spring"] * 5,
        zip_code=[f"Z{v}" for v in rng.integers(0, 200, n)],
        notes_score=np.where(rng.random(n) < 0.7, np.nan, rng.normal(size=n)),
        never=np.nan,
        age=[str(v) for v in rng.integers(18, 60, n - 3)] + ["?", "unknown", "?"],
    )
    p = mw.profile(frame, target="churned")
    found = codes(p)
    assert found["constant_column"] == [("version",)]
    assert found["near_constant_column"] == [("promo",)]
    assert found["high_cardinality"] == [("zip_code",)]
    assert sorted(found["heavy_missing"]) == [("never",), ("notes_score",)]
    never = next(w for w in p.warnings_with("heavy_missing") if w.columns == ("never",))
    assert never.evidence["missing_rate"] == 1.0
    (mixed,) = p.warnings_with("mixed_types")
    assert mixed.columns == ("age",)
    assert mixed.evidence["examples"] == ["?", "unknown"]
    assert {"version", "never"} <= set(p.dropped_columns)


def test_time_order_is_suggested() -> None:
    n = 300
    frame = make_frame(n).assign(
        signup=pd.date_range("2019-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        last_seen=pd.Series(pd.date_range("2020-01-01", periods=n, freq="D"))
        .sample(frac=1, random_state=0)
        .to_numpy(),
    )
    p = mw.profile(frame, target="churned")
    timing = {w.columns[0]: w.evidence["rows_sorted"] for w in p.warnings_with("time_order")}
    assert timing == {"signup": True, "last_seen": False}
    assert p.suggested_time_column == "signup"


def test_class_problems_and_size() -> None:
    n = 60
    frame = pd.DataFrame({"x": np.arange(n) % 7, "y": ["common"] * 55 + ["rare"] * 3 + ["odd"] * 2})
    p = mw.profile(frame, target="y")
    found = codes(p)
    (tiny,) = p.warnings_with("tiny_classes")
    assert tiny.evidence["classes"] == {"rare": 3, "odd": 2}
    assert "class_imbalance" in found
    assert p.warnings_with("class_imbalance")[0].evidence["minority"] == "odd"
    assert "too_few_rows" in found
    assert p.warnings[0].severity == "high"  # most severe first


def test_wide_data_and_target_problems(rng: np.random.Generator) -> None:
    wide = pd.DataFrame(rng.normal(size=(40, 60)), columns=[f"f{i}" for i in range(60)])
    wide["y"] = rng.normal(size=40)
    wide.loc[0, "y"] = np.inf
    wide.loc[1, "y"] = np.nan
    p = mw.profile(wide, target="y")
    found = codes(p)
    assert {"wide_data", "target_invalid", "target_missing", "too_few_rows"} <= set(found)
    assert p.n_target_missing == 1


def test_many_classes_looks_like_an_identifier(rng: np.random.Generator) -> None:
    frame = pd.DataFrame({"x": rng.normal(size=100), "y": [f"name {i}" for i in range(100)]})
    assert "many_classes" in codes(mw.profile(frame, target="y"))


# --- inputs and outputs -------------------------------------------------------------------------


def test_paths_frames_and_arrow_give_the_same_answer(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / "churn.csv"
    frame.to_csv(path, index=False)
    from_path = mw.profile(str(path), target="churned")
    from_frame = mw.profile(frame, target="churned")
    from_arrow = mw.profile(pa.table(frame), target="churned")
    assert from_path.source.kind == "csv"
    for p in (from_frame, from_arrow):
        assert (p.task, p.metric, p.class_balance) == (
            from_path.task,
            from_path.metric,
            from_path.class_balance,
        )
        assert [(c.name, c.kind, c.role) for c in p.schema.columns] == [
            (c.name, c.kind, c.role) for c in from_path.schema.columns
        ]


def test_json_has_the_documented_keys(frame: pd.DataFrame) -> None:
    p = mw.profile(frame.assign(version="v1"), target="churned")
    d = json.loads(p.to_json())
    assert list(d) == [
        "profile_format",
        "mlwright_version",
        "source",
        "target",
        "task",
        "task_reason",
        "metric",
        "metric_reason",
        "greater_is_better",
        "n_rows",
        "n_columns",
        "n_features",
        "memory_bytes",
        "n_target_missing",
        "classes",
        "positive_class",
        "class_balance",
        "target_summary",
        "feature_kinds",
        "suggested_time_column",
        "suggested_group_column",
        "dropped_columns",
        "warnings",
        "leakage",
        "notes",
        "schema",
        "settings",
        "elapsed_s",
    ]
    assert d["profile_format"] == 1
    assert d["class_balance"][0] == {
        "label": "no",
        "count": int((frame.churned == "no").sum()),
        "share": pytest.approx((frame.churned == "no").mean(), abs=1e-6),
    }
    (w,) = d["warnings"]
    assert list(w) == ["code", "severity", "message", "action", "columns", "evidence"]
    assert d["schema"]["classes"] == ["no", "yes"]


def test_displays(frame: pd.DataFrame) -> None:
    frame = frame.assign(**{"note<b>": "x"})
    p = mw.profile(frame, target="churned")
    text = repr(p)
    assert "Problem definition: churned" in text
    assert "roc_auc" in text
    assert "constant_column" in text
    html = p._repr_html_()
    assert "<table>" in html
    assert "note&lt;b&gt;" in html and "note<b>" not in html


def test_a_regression_with_a_gappy_continuous_feature_profiles() -> None:
    """The reverse leakage check predicts each feature from the target: a continuous feature
    with missing values is checked on the rows that have it, not crashed on."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.lognormal(10, 0.5, 600), "y": rng.normal(size=600)})
    frame.loc[rng.random(600) < 0.1, "income"] = np.nan
    problem = mw.profile(frame, target="y")
    assert problem.task == "regression"
    assert problem.leakage  # the check ran
    assert not problem.leaking_columns
