"""Permutation importance and TreeSHAP, in the data's own columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.evaluate.importance import permutation_importance, source_columns, tree_shap


@pytest.fixture(scope="module")
def signal_model() -> tuple[mw.Model, pd.DataFrame]:
    r = np.random.default_rng(0)
    n = 800
    frame = pd.DataFrame(
        {
            "signal": r.normal(size=n),
            "noise": r.normal(size=n),
            "city": r.choice(["oslo", "rome", "lima"], size=n),
        }
    )
    frame["y"] = 3 * frame.signal + (frame.city == "rome") * 1.5 + r.normal(scale=0.3, size=n)
    model = mw.train(frame, target="y", max_trials=1, families=("lightgbm",), tracker="none")
    return model, frame


def test_the_column_the_target_depends_on_matters_most(
    signal_model: tuple[mw.Model, pd.DataFrame],
) -> None:
    model, frame = signal_model
    features = model.prepare(frame)[0]
    out = permutation_importance(model, features, frame.y.to_numpy(), "rmse", seconds=10)
    ranked = [c["column"] for c in out["columns"]]
    assert ranked == ["signal", "city", "noise"]
    by_name = {c["column"]: c for c in out["columns"]}
    assert by_name["signal"]["mean"] > 1.0  # rmse rises by more than 1 without it
    assert abs(by_name["noise"]["mean"]) < 0.1
    assert out["repeats"] == 5 and not out["not_computed"]


def test_a_tiny_allowance_still_answers_within_it(
    signal_model: tuple[mw.Model, pd.DataFrame],
) -> None:
    model, frame = signal_model
    features = model.prepare(frame)[0]
    out = permutation_importance(model, features, frame.y.to_numpy(), "rmse", seconds=0.001)
    assert out["repeats"] == 1 and out["rows"] == 200
    assert len(out["columns"]) + len(out["not_computed"]) == 3


def test_tree_shap_sums_back_to_the_data_columns(
    signal_model: tuple[mw.Model, pd.DataFrame],
) -> None:
    model, frame = signal_model
    out = tree_shap(model, model.prepare(frame)[0])
    assert out is not None
    assert out["columns"][0]["column"] == "signal"
    assert {c["column"] for c in out["columns"]} == {"signal", "noise", "city"}
    assert out["rows"] == 800  # every row: fewer than the sample's 2,000


def test_tree_shap_shrinks_to_its_allowance_after_a_timed_pilot(
    signal_model: tuple[mw.Model, pd.DataFrame],
) -> None:
    model, frame = signal_model
    features = model.prepare(frame)[0]
    everything = tree_shap(model, features)
    pilot = tree_shap(model, features, seconds=0.0)
    assert everything is not None and pilot is not None
    assert pilot["rows"] == 100  # the pilot alone: no time was left for more
    assert pilot["columns"][0]["column"] == "signal"
    roomy = tree_shap(model, features, seconds=60.0)
    assert roomy == everything  # with time to spare, the same rows and values as unbounded


def test_encoded_features_map_to_their_columns() -> None:
    columns = ["age", "age_group", "city", "note"]
    encoded = ["age", "age__missing", "age_group=young", "city=(other)", "city__freq", "note~rain"]
    assert source_columns(encoded, columns) == ["age", "age", "age_group", "city", "city", "note"]
