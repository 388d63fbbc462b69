"""Tracking and the registry against a real SQLite MLflow store."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.track.base import git_commit
from mlwright.track.mlflow import MANIFEST_TAG, TrackingError
from tests.conftest import CliResult, make_frame

Cli = Callable[..., CliResult]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def client():  # type: ignore[no-untyped-def]
    import mlflow

    return mlflow.MlflowClient()


def test_a_train_is_one_run_with_a_child_per_trial(store: str, frame: pd.DataFrame) -> None:
    model = mw.train(
        frame,
        target="churned",
        name="churn",
        max_trials=3,
        seed=5,
        families=("lightgbm", "linear"),
        experiment="churn-experiments",
    )
    assert model.registry is not None
    assert (model.registry["name"], model.registry["version"], model.registry["alias"]) == (
        "churn",
        "1",
        "champion",
    )
    c = client()
    run = c.get_run(model.registry["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["options.seed"] == "5"
    assert run.data.params["plan.families"] == "lightgbm,linear"
    tags = run.data.tags
    assert tags["mlwright.seed"] == "5"
    assert tags["mlwright.data_digest"] == model.recipe["data"]["digest"]
    assert tags["mlwright.lib.lightgbm"]
    commit = git_commit()
    if commit:
        assert tags["mlwright.git_commit"] == commit
    assert "cv_roc_auc" in run.data.metrics
    assert "test_accuracy" in run.data.metrics
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["churn"]
    artifacts = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"model", "plan.json", "profile.json", "recipe.json", "schema.json"} <= artifacts
    assert c.get_experiment(run.info.experiment_id).name == "churn-experiments"
    children = c.search_runs(
        [run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"
    )
    assert len(children) == 3
    child = next(ch for ch in children if ch.data.tags["mlwright.trial"] == "0")
    assert {f"fold_{k}_roc_auc" for k in range(5)} <= set(child.data.metrics)
    assert child.data.params["family"] == "lightgbm"
    assert child.data.params["learning_rate"] == "0.05"
    version = c.get_model_version("churn", "1")
    from mlwright.package.store import manifest_digest

    assert version.tags[MANIFEST_TAG] == manifest_digest(mw.load("churn@champion").path)


def test_versions_aliases_promote_and_rollback(store: str, cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "churn.csv"
    make_frame(300).to_csv(data, index=False)
    for seed in ("1", "2"):
        result = cli(
            "train",
            str(data),
            "-t",
            "churned",
            "--max-trials",
            "1",
            "--seed",
            seed,
            "--out",
            str(tmp_path / f"pkg{seed}"),
        )
        assert result.code == 0, result.err
        assert f"tracking: {store}" in result.err
    assert "registered: churn version 2 (alias challenger)" in result.out
    listed = cli("models", "list")
    assert "champion→1" in listed.out and "challenger→2" in listed.out
    assert (
        cli("models", "promote", "churn", "2").out.strip() == "churn@champion → version 2 (was 1)"
    )
    shown = cli("models", "show", "churn")
    assert "champion history: 1 → 2" in shown.out
    a = mw.load("churn@champion").predict(str(data))
    b = mw.load("churn/2").predict(str(data))
    pd.testing.assert_frame_equal(a, b)
    assert cli("models", "rollback", "churn").out.strip() == "churn@champion → version 1 (was 2)"
    failed = cli("models", "rollback", "churn")
    assert failed.code == 1
    assert "no earlier version to roll back to" in failed.err
    missing = cli("models", "promote", "churn", "9")
    assert missing.code == 1
    assert "has no version 9" in missing.err
    predicted = cli("predict", "churn@champion", str(data), "-o", str(tmp_path / "p.csv"))
    assert predicted.code == 0, predicted.err
    expected = mw.load(tmp_path / "pkg1").predict(str(data))
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p.csv").proba_yes, expected.proba_yes)


def test_a_changed_registry_artifact_is_refused(store: str, frame: pd.DataFrame) -> None:
    mw.train(frame, target="churned", name="guarded", max_trials=1)
    client().set_model_version_tag("guarded", "1", MANIFEST_TAG, "0" * 64)
    with pytest.raises(
        mw.MlwrightError, match="does not match the checksum recorded in the registry"
    ):
        mw.load("guarded@champion")


@pytest.mark.skipif(
    "mlp" not in __import__("mlwright.train.models", fromlist=["FAMILIES"]).FAMILIES,
    reason="PyTorch is not installed",
)
def test_neural_net_epochs_are_logged(store: str) -> None:
    frame = make_frame(300)
    model = mw.train(frame, target="churned", name="net", max_trials=1, families=("mlp",))
    c = client()
    run = c.get_run(model.registry["run_id"])  # type: ignore[index]
    (child,) = c.search_runs(
        [run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"
    )
    history = c.get_metric_history(child.info.run_id, "fold_0_val_loss")
    assert len(history) >= 2
    assert [m.step for m in history] == list(range(1, len(history) + 1))


def test_embedded_default_store_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frame: pd.DataFrame
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    mw.train(frame, target="churned", name="local", max_trials=1)
    assert (tmp_path / "mlflow.db").is_file()
    assert (tmp_path / "mlruns").is_dir()


def test_tracking_can_be_turned_off(store: str, frame: pd.DataFrame, tmp_path: Path) -> None:
    model = mw.train(frame, target="churned", name="quiet", max_trials=1, tracker="none")
    assert model.registry is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_fails_fast(
    monkeypatch: pytest.MonkeyPatch, frame: pd.DataFrame
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(TrackingError, match="cannot reach the MLflow tracking server"):
        mw.train(frame, target="churned", max_trials=1)
    assert time.monotonic() - started < 15
    with pytest.raises(TrackingError, match="cannot reach"):
        mw.load("churn@champion")


def test_wandb_logs_the_same_run_offline(
    store: str, frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    model = mw.train(
        frame,
        target="churned",
        name="both",
        max_trials=2,
        tracker=("mlflow", "wandb"),
        families=("linear",),
    )
    assert model.registry is not None  # MLflow still tracks and registers
    # The W&B service writes the offline record in the background; it is complete once the
    # service has shut down (what `wandb sync` reads after the process ends).
    wandb.teardown()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    (record,) = runs[0].glob("*.wandb")
    raw = record.read_bytes()
    assert b"options.seed" in raw  # the run's config
    assert b"cv_roc_auc" in raw  # the final metrics
    (table,) = (runs[0] / "files" / "media" / "table").glob("trials_*.table.json")
    rows = json.loads(table.read_text())["data"]
    assert [r[:3] for r in rows] == [[0, "linear", "ok"], [1, "linear", "ok"]]


def test_mlflow_pyfunc_predicts_a_frame_straight_from_read_csv(store: str, tmp_path: Path) -> None:
    """The signature types each column as pandas reads it, so MLflow's own type check passes a
    frame from ``pd.read_csv``: through the package folder and through ``models:/NAME@ALIAS``.
    Integer columns were declared ``double``, which MLflow refuses to fill from int64."""
    import warnings

    with warnings.catch_warnings():  # MLflow's own modules warn about their type hints
        warnings.simplefilter("ignore")
        import mlflow.pyfunc

    r = np.random.default_rng(4)
    n = 240
    frame = make_frame(n)  # x1 float, x2 integers, colour text, churned the target
    frame["zip"] = r.integers(1000, 1040, n)  # integers the schema may read as categories
    frame["visits"] = np.where(r.random(n) < 0.1, np.nan, r.integers(0, 9, n))  # ints, gaps
    frame["member"] = r.random(n) < 0.5
    frame["joined"] = pd.date_range("2021-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
    path = tmp_path / "churn.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "pkg"
    model = mw.train(
        path, target="churned", name="csvchurn", max_trials=1, families=("linear",), out=str(out)
    )
    types = {c["name"]: c["type"] for c in _signature_inputs(model)}
    assert types == {
        "x1": "double",
        "x2": "long",
        "colour": "string",
        "zip": "long",
        "visits": "double",
        "member": "boolean",
        "joined": "string",
    }
    rows = pd.read_csv(path).drop(columns="churned")
    expected = model.predict(rows)
    for uri in (str(out), "models:/csvchurn@champion"):
        loaded = mlflow.pyfunc.load_model(uri)
        assert str(loaded.metadata.get_input_schema()).count("long") == 2
        pd.testing.assert_frame_equal(loaded.predict(rows), expected)

    # datetimes held as datetimes are `datetime`, and MLflow passes a frame of datetimes through
    parsed = frame.assign(joined=pd.to_datetime(frame.joined))
    dated = mw.train(parsed, target="churned", name="dated", max_trials=1, families=("linear",))
    assert {c["name"]: c["type"] for c in _signature_inputs(dated)}["joined"] == "datetime"
    rows = parsed.drop(columns="churned")
    served = mlflow.pyfunc.load_model("models:/dated@champion").predict(rows)
    pd.testing.assert_frame_equal(served, dated.predict(rows))


def _signature_inputs(model: mw.Model) -> list[dict[str, object]]:
    from mlwright.package.store import mlflow_inputs

    return mlflow_inputs(model.schema)
