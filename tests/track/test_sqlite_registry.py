"""The registry read straight from a local SQLite store gives MLflow's own answers, without
importing MLflow."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import mlwright as mw
from mlwright.track import mlflow as tracking
from mlwright.track import sqlite_registry
from mlwright.track.mlflow import HISTORY_TAG, MANIFEST_TAG
from tests.conftest import CliResult

Cli = Callable[..., CliResult]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return uri


def _registry(uri: str) -> None:
    """Two models made with MLflow's client: versions with runs, metrics and tags, aliases, an
    alias history, and a deleted version."""
    with warnings.catch_warnings():  # MLflow's own deprecation warnings are not under test
        warnings.simplefilter("ignore")
        _fill(uri)


def _fill(uri: str) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("registry")
    runs = []
    for k in range(3):
        run = client.create_run(experiment).info.run_id
        client.log_metric(run, "cv_roc_auc", 0.8 + k / 100)
        client.log_metric(run, "test_rmse", float("nan"))
        client.set_terminated(run)
        runs.append(run)
    for name in ("churn", "a-model.v2"):
        client.create_registered_model(name)
    for k, run in enumerate(runs):
        client.create_model_version(
            "churn", f"runs:/{run}/model", run_id=run, tags={MANIFEST_TAG: f"{k:064x}"}
        )
    client.create_model_version("a-model.v2", "file:///nowhere", tags={"other": "x"})
    client.set_registered_model_alias("churn", "champion", "3")
    client.set_registered_model_alias("churn", "challenger", "1")
    client.set_registered_model_tag("churn", HISTORY_TAG + "champion", json.dumps(["1", "3"]))
    client.delete_model_version("churn", "2")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_registry_read_from_sqlite_is_mlflows_answer(store: str) -> None:
    _registry(store)
    fast = sqlite_registry.list_models(store)
    assert fast == tracking._list_models()
    assert fast[0]["name"] == "a-model.v2"
    assert fast[1] == {
        "name": "churn",
        "versions": 2,
        "latest": 3,
        "aliases": {"challenger": 1, "champion": 3},
    }

    shown = sqlite_registry.show_model(store, "churn", MANIFEST_TAG, HISTORY_TAG)
    assert shown is not None
    slow = tracking._show_model("churn")
    assert [v["version"] for v in shown["versions"]] == ["1", "3"]  # 2 was deleted
    assert shown["alias_history"] == {"champion": ["1", "3"], "challenger": []}
    assert json.dumps(shown, sort_keys=True) == json.dumps(slow, sort_keys=True)  # NaN too

    for query in ({"alias": "champion"}, {"alias": "challenger"}, {"version": "3"}):
        assert sqlite_registry.find_version(store, "churn", **query) == tracking._find_version(
            "churn", **query
        )
    assert sqlite_registry.find_version(store, "churn", alias="champion") == (
        "3",
        {MANIFEST_TAG: f"{2:064x}"},
    )
    # a miss is MLflow's to word: the deleted version, an unknown alias, an unknown model
    for name, query in (
        ("churn", {"version": "2"}),
        ("churn", {"alias": "staging"}),
        ("nope", {"alias": "champion"}),
    ):
        assert sqlite_registry.find_version(store, name, **query) is None
        with pytest.raises(mw.MlwrightError, match=r"no registered model|has no"):
            tracking.find_version(name, **query)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_reading_the_registry_changes_nothing_in_the_store(store: str, tmp_path: Path) -> None:
    _registry(store)
    db = tmp_path / "mlflow.db"
    before = (db.read_bytes(), db.stat().st_mtime_ns, sorted(p.name for p in tmp_path.iterdir()))
    assert sqlite_registry.list_models(store)
    assert sqlite_registry.show_model(store, "churn", MANIFEST_TAG, HISTORY_TAG)
    assert sqlite_registry.find_version(store, "churn", alias="champion")
    after = (db.read_bytes(), db.stat().st_mtime_ns, sorted(p.name for p in tmp_path.iterdir()))
    assert after == before  # not a byte, not a journal file


def test_only_a_local_sqlite_store_it_knows_is_read_directly(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sqlite_registry.list_models(store) == []  # no file yet: an empty registry, not created
    assert not (tmp_path / "mlflow.db").exists()
    assert sqlite_registry.list_models("http://127.0.0.1:5000") is None
    assert sqlite_registry.list_models("postgresql://db/mlflow") is None
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE registered_models (title TEXT)")
    assert sqlite_registry.list_models(f"sqlite:///{other}") is None  # not MLflow's schema
    # a registry kept apart from the tracking store is the one read
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{other}")
    assert sqlite_registry.list_models(store) is None


def test_a_cached_registered_version_loads_without_importing_mlflow(
    store: str, frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLWRIGHT_CACHE_DIR", str(tmp_path / "cache"))
    mw.train(frame, target="churned", name="quick", max_trials=1, families=("linear",))
    data = tmp_path / "rows.csv"
    frame.head(20).drop(columns="churned").to_csv(data, index=False)
    expected = mw.load("quick/1").predict(str(data))
    shutil.rmtree(tmp_path / "cache")
    script = textwrap.dedent(
        f"""
        import sys
        from mlwright import api
        assert [m["name"] for m in api.list_models()] == ["quick"]
        assert api.show_model("quick")["aliases"] == {{"champion": 1}}
        model = api.load("quick@champion")
        model.predict({str(data)!r}).to_csv(sys.stdout, index=False)
        print("mlflow" in sys.modules, "torch" in sys.modules, file=sys.stderr)
        """
    )
    temp = tmp_path / "temp"
    temp.mkdir()
    for first in (True, False):  # downloaded into the cache, then loaded from it
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            env={**os.environ, "TMPDIR": str(temp)},
        )
        assert done.returncode == 0, done.stderr
        got = pd.read_csv(io.StringIO(done.stdout))
        pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_dtype=False)
        # MLflow downloads the first time only; nothing is left in the temporary folder
        assert done.stderr.split()[-2:] == [str(first), "False"], done.stderr
        assert list(temp.iterdir()) == []


def test_an_empty_registry_says_how_to_fill_it(store: str, cli: Cli, tmp_path: Path) -> None:
    listed = cli("models", "list")
    assert listed.code == 0, listed.err
    assert f"tracking: {store}" in listed.err
    assert "no registered models in this tracking store" in listed.err
    assert "mlwright train" in listed.err
    assert listed.out == ""
    assert not (tmp_path / "mlflow.db").exists()  # listing creates no store
