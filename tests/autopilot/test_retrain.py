"""`mlwright retrain` / `mw.retrain`: the parent's configurations refit on new rows (files or the
serving store's labelled predictions), registered as a challenger with its lineage."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.errors import ConfigError, DataError, MlwrightError
from mlwright.store.schema import connect
from tests.conftest import make_blend_frame, make_frame


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLWRIGHT_CACHE_DIR", str(tmp_path / "cache"))
    mw.train(make_frame(300), target="churned", name="churn", max_trials=2, progress=False, seed=3)
    return tmp_path


def version_tags(name: str, version: str) -> dict[str, str]:
    import mlflow

    found = mlflow.MlflowClient().get_model_version(name, version)
    return dict(found.tags)


def test_refit_registers_a_challenger_with_its_lineage(registry: Path) -> None:
    new = make_frame(250, seed=7)
    new.to_csv(registry / "new.csv", index=False)
    parent = mw.load("churn@champion")
    model = mw.retrain("churn@champion", data=registry / "new.csv", reason="a new quarter")
    assert model.registry is not None
    assert (model.registry["version"], model.registry["alias"]) == ("2", "challenger")
    recipe = model.recipe
    # the parent's configuration, cross-validated again on the new rows; no search
    assert [(t.family, t.params, t.source) for t in recipe.trials] == [
        (parent.recipe.chosen.family, parent.recipe.chosen.params, "parent")
    ]
    assert recipe.data.rows == 250 and recipe.cv.mean is not None
    lineage = recipe.lineage
    assert lineage is not None
    assert lineage.parent["name"] == "churn" and lineage.parent["version"] == "1"
    assert lineage.mode == "refit" and lineage.reason == "a new quarter"
    (source,) = lineage.sources
    assert source["kind"] == "csv" and source["rows"] == 250 and len(source["digest"]) == 64
    aged = lineage.parent_on_new_data
    assert aged is not None and aged["metric"] == recipe.cv.metric and 0 <= aged["value"] <= 1
    tags = version_tags("churn", "2")
    assert tags["mlwright.parent"] == "churn/1"
    assert tags["mlwright.retrain.reason"] == "a new quarter"
    assert "new.csv (250 rows)" in tags["mlwright.retrain.sources"]
    # it takes exactly the requests its parent takes
    assert [(c.name, c.kind) for c in model.schema.features] == [
        (c.name, c.kind) for c in parent.schema.features
    ]
    # and a second refit of the same rows is the same model
    again = mw.retrain("churn/1", data=registry / "new.csv", tracker="none")
    rows = new.drop(columns="churned").head(50)
    np.testing.assert_array_equal(model.raw(rows), again.raw(rows))


def test_an_ensemble_is_refit_member_by_member(registry: Path) -> None:
    # a linear part and an interaction: the two best trials combine (tests/conftest.py)
    mw.train(make_blend_frame(), target="y", name="mix", max_trials=4, progress=False)
    parent = mw.load("mix@champion")
    chosen = parent.recipe.chosen
    assert chosen.kind != "single" and len(chosen.members) == 2
    model = mw.retrain("mix@champion", data=make_blend_frame(seed=8), tracker="none")
    members = {t.number: t for t in parent.recipe.trials}
    assert [(t.family, t.params) for t in model.recipe.trials] == [
        (members[n].family, members[n].params) for n in chosen.members
    ]
    assert model.recipe.chosen.kind == chosen.kind  # combined again out of fold


def test_new_rows_must_fit_the_served_model(registry: Path) -> None:
    with pytest.raises(DataError, match=r"no column\(s\) \['x2'\]"):
        mw.retrain("churn@champion", data=make_frame(200).drop(columns="x2"), tracker="none")
    changed = make_frame(200)
    changed["colour"] = np.arange(200) * 1.5  # a categorical column that became numbers
    with pytest.raises(DataError, match="column 'colour' is numeric in the new data"):
        mw.retrain("churn@champion", data=changed, tracker="none")
    three = make_frame(200)
    three.loc[::3, "churned"] = "maybe"
    with pytest.raises(DataError, match=r"differ from the parent's.*new: \['maybe'\]"):
        mw.retrain("churn@champion", data=three, tracker="none")
    with pytest.raises(ConfigError, match="no new data"):
        mw.retrain("churn@champion")
    with pytest.raises(ConfigError, match="time budget"):
        mw.retrain("churn@champion", data=make_frame(200), search=True)


def test_a_grouped_model_is_retrained_with_its_group_column(registry: Path) -> None:
    frame = make_frame(300)
    frame["household"] = np.arange(300) // 3
    mw.train(frame, target="churned", name="grouped", max_trials=1, group_col="household",
             families="linear", progress=False)  # fmt: skip
    new = make_frame(240, seed=6)
    new["household"] = np.arange(240) // 4
    model = mw.retrain("grouped@champion", data=new, tracker="none")
    assert model.recipe.options["group_col"] == "household"
    assert "household" not in [c.name for c in model.schema.features]
    with pytest.raises(DataError, match=r"split by \['household'\]"):
        mw.retrain("grouped@champion", from_store=registry / "serve.db", tracker="none")


def write_store(path: Path, frame: pd.DataFrame, labels: dict[int, Any], ts: float) -> None:
    """Predictions of ``frame``'s rows (one request of them all) and feedback for ``labels``
    (row → label), as the server writes them."""
    features = [c for c in frame.columns if c != "churned"]
    inputs = frame[features].to_numpy(dtype=object).tolist()
    inputs[0][0] = str(inputs[0][0])  # a number sent as text, which the server accepts
    outputs = [{"prediction_id": f"r1:{i}", "prediction": 0} for i in range(len(frame))]
    conn = connect(path)
    conn.execute(
        "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            "r1",
            ts,
            "churn",
            "1",
            "champion",
            None,
            len(frame),
            json.dumps(features),
            json.dumps(inputs, default=str),
            json.dumps(outputs),
        ),
    )
    conn.executemany(
        "INSERT INTO feedback (prediction_id, ts, kind, value) VALUES (?, ?, 'label', ?)",
        [(f"r1:{i}", ts + 1, json.dumps(label)) for i, label in labels.items()],
    )
    conn.close()


def test_from_the_store_reads_labelled_predictions(registry: Path) -> None:
    frame = make_frame(300, seed=4)
    store = registry / "serve.db"
    labelled = {i: str(frame["churned"].iloc[i]) for i in range(0, 300, 2)}  # labels as text
    write_store(store, frame, labelled, time.time() - 3600)
    with pytest.raises(DataError, match="150 labelled prediction") as refused:
        mw.retrain("churn@champion", from_store=store, min_labels=151, tracker="none")
    assert "of 300 served" in str(refused.value)
    model = mw.retrain("churn@champion", from_store=store, min_labels=150, since="2h")
    lineage = model.recipe.lineage
    assert lineage is not None
    (source,) = lineage.sources
    assert (source["kind"], source["rows"], source["predictions"]) == ("store", 150, 300)
    assert model.recipe.data.rows == 150
    # the features as they were sent; the labels as the model's classes
    assert set(model.classes or ()) == set(frame["churned"])
    # a window that holds none of them
    with pytest.raises(DataError, match="0 labelled"):
        mw.retrain("churn@champion", from_store=store, since="10m", tracker="none")


def test_the_command(registry: Path, cli: Any) -> None:
    make_frame(200, seed=5).to_csv(registry / "new.csv", index=False)
    result = cli(
        "retrain", "churn@champion", "--data", str(registry / "new.csv"), "-q",
        "-o", str(registry / "out"),
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "retrained churn/1 (refit)" in result.out
    assert (registry / "out" / "mlwright.json").is_file()
    refused = cli("retrain", "churn@champion", "--time-budget", "5", "--data", "x.csv")
    assert refused.code == 1 and "applies to a search" in refused.err
    with pytest.raises(MlwrightError):
        mw.retrain(str(registry / "nothing-here"), data=make_frame(50))


def test_a_store_holding_what_no_server_accepts_is_named(registry: Path) -> None:
    frame = make_frame(200, seed=4).astype({"x2": object})
    frame.loc[0, "x2"] = "abc"
    store = registry / "odd.db"
    write_store(store, frame, {i: str(frame["churned"].iloc[i]) for i in range(200)}, time.time())
    with pytest.raises(DataError, match=r"feature 'x2' holds 1 value\(s\) that are not numbers"):
        mw.retrain("churn@champion", from_store=store, min_labels=10, tracker="none")
