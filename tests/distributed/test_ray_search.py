"""``--backend ray``: trials as Ray tasks on a local cluster, the same search as the local one."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlwright as mw
from mlwright.errors import ConfigError
from mlwright.train.search import static_plan
from tests.conftest import CliResult, make_frame

FAMILIES = ("lightgbm", "linear")


def trials_of(model: mw.Model) -> list[tuple[int, str, str, str, list[float]]]:
    return [
        (t.number, t.family, str(t.params), t.status, [round(s, 12) for s in t.fold_scores])
        for t in model.trials
    ]


def test_ray_runs_the_same_trials_as_the_local_backend(ray_cluster: str) -> None:
    frame = make_frame(400)
    options = {"families": FAMILIES, "max_trials": 6, "seed": 1, "threads": 1, "tracker": "none"}
    local = mw.train(frame, target="churned", **options)
    remote = mw.train(frame, target="churned", backend="ray", ray_address=ray_cluster, **options)
    assert trials_of(remote) == trials_of(local)
    assert remote.recipe["search"]["backend"] == "ray"
    assert remote.recipe["search"]["workers"] == 2  # the cluster's 2 CPUs, 1 thread a trial
    assert local.recipe["search"] == {"backend": "local", "workers": 1, "threads": 1}
    np.testing.assert_array_equal(remote.predict(frame), local.predict(frame))


def test_proposals_and_pruning_repeat_on_ray_whatever_the_timing(ray_cluster: str) -> None:
    frame = make_frame(300, seed=4)
    n_static = len(static_plan(["linear"]))
    runs = [
        mw.train(
            frame,
            target="churned",
            families=("linear",),
            max_trials=n_static + 6,
            seed=2,
            tracker="none",
            backend="ray",
            ray_address=ray_cluster,
        )
        for _ in range(2)
    ]
    assert [t.source for t in runs[0].trials][n_static:] == ["tuned"] * 6
    assert trials_of(runs[0]) == trials_of(runs[1])


def test_cli_trains_tracks_and_packages_on_ray(
    ray_cluster: str, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    data = tmp_path / "churn.csv"
    make_frame(400, seed=5).to_csv(data, index=False)
    result = cli(
        "train", str(data), "--target", "churned", "--max-trials", "5", "--family", "lightgbm",
        "--backend", "ray", "--ray-address", ray_cluster, "--name", "ray-churn",
        "--out", str(tmp_path / "pkg"),
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "the search runs on Ray (127.0.0.1:" in result.err
    assert "2 trial(s) at a time" in result.err
    report = (tmp_path / "pkg" / "report" / "report.md").read_text()
    assert "trials ran as Ray tasks (127.0.0.1:" in report
    assert "2 at a time, 1 thread(s) each" in report
    rebuilt = cli("reproduce", str(tmp_path / "pkg"))  # here, without a Ray runtime
    assert rebuilt.code == 0, rebuilt.err
    client = MlflowClient()
    experiment = client.get_experiment_by_name("ray-churn")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 5  # one run per trial, as on the local backend
    assert all("fold_0_roc_auc" in r.data.metrics for r in children)
    assert client.search_model_versions("name = 'ray-churn'")  # registered


def test_a_time_budget_holds_on_ray(ray_cluster: str) -> None:
    started = time.monotonic()
    model = mw.train(
        make_frame(2000, seed=6),
        target="churned",
        time_budget=12,
        tracker="none",
        backend="ray",
        ray_address=ray_cluster,
    )
    assert time.monotonic() - started <= 1.1 * 12 + 10
    assert len(model.trials) >= 2


def test_a_node_with_other_versions_is_refused(
    ray_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlwright.train import runner

    real, driver = runner.library_versions, os.getpid()

    def versions() -> dict[str, str]:  # sent to the nodes too: only this process differs
        return {**real(), "lightgbm": "0.0.1"} if os.getpid() == driver else real()

    monkeypatch.setattr(runner, "library_versions", versions)
    with pytest.raises(ConfigError, match=r"other versions than this machine: lightgbm"):
        mw.train(
            make_frame(200),
            target="churned",
            max_trials=1,
            tracker="none",
            backend="ray",
            ray_address=ray_cluster,
        )


def test_an_address_where_nothing_answers_fails_fast(ray_home: Path) -> None:
    with socket_closed_port() as port:
        started = time.monotonic()
        with pytest.raises(
            ConfigError, match=rf"nothing answers at the Ray address 127.0.0.1:{port}"
        ):
            mw.train(
                make_frame(200), target="churned", max_trials=1, tracker="none",
                backend="ray", ray_address=f"127.0.0.1:{port}",
            )  # fmt: skip
        assert time.monotonic() - started < 15


def socket_closed_port() -> Any:
    import contextlib
    import socket

    @contextlib.contextmanager
    def closed() -> Iterator[int]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield port  # bound once, now closed: nothing listens

    return closed()


def test_ray_options_without_the_ray_backend_are_refused(cli: Callable[..., CliResult]) -> None:
    result = cli("train", "x.csv", "--target", "y", "--concurrent-trials", "2")
    assert result.code == 2  # a usage error
    assert "--concurrent-trials applies to the Ray backend only" in result.err


def test_without_ray_installed_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'mlwright\[ray\]'"):
        mw.train(make_frame(200), target="churned", max_trials=1, tracker="none", backend="ray")


def test_the_local_backend_never_imports_ray(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys, mlwright as mw\n"
        "from tests.conftest import make_frame\n"
        "mw.train(make_frame(200), target='churned', max_trials=1, tracker='none')\n"
        "print('ray' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False"


def test_serve_options_of_the_other_backend_are_refused(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    mw.train(make_frame(200), target="churned", max_trials=1, tracker="none", out=str(tmp_path))
    result = cli("serve", str(tmp_path), "--replicas", "2")
    assert result.code == 2  # a usage error
    assert "--replicas does not apply to --backend uvicorn" in result.err
    result = cli("serve", str(tmp_path), "--backend", "ray-serve", "--workers", "2")
    assert result.code == 2
    assert "--workers does not apply to --backend ray-serve" in result.err
    result = cli("serve", str(tmp_path), "--backend", "kubernetes")
    assert result.code == 2
    assert "'kubernetes' is not one of 'uvicorn', 'ray-serve'" in result.err


def test_a_replica_without_the_package_folder_serves_a_shipped_copy(tmp_path: Path) -> None:
    import json

    from fastapi.testclient import TestClient

    from mlwright.distributed.serve import pack, package_paths, relocate, unpack
    from mlwright.serve.app import app_from_spec

    frame = make_frame(300)
    mw.train(frame, target="churned", max_trials=1, tracker="none", out=str(tmp_path / "pkg"))
    spec = {
        "MLWRIGHT_SERVE_PACKAGE": str(tmp_path / "pkg"),
        "MLWRIGHT_SERVE_SETTINGS": json.dumps({"store": None}),
        "MLWRIGHT_SERVE_EXPERIMENT": json.dumps(
            {"config": {}, "challengers": {"b": {"path": str(tmp_path / "pkg"), "version": None}}}
        ),
    }
    assert package_paths(spec) == [str(tmp_path / "pkg")] * 2
    packed = pack(str(tmp_path / "pkg"))
    copy = unpack(packed, "pkg")  # what a replica on another node does
    moved = relocate(spec, str(tmp_path / "pkg"), copy)
    assert moved["MLWRIGHT_SERVE_PACKAGE"] == copy
    assert json.loads(moved["MLWRIGHT_SERVE_EXPERIMENT"])["challengers"]["b"]["path"] == copy
    del moved["MLWRIGHT_SERVE_EXPERIMENT"]
    row = frame.drop(columns="churned").iloc[[0]].to_dict("records")
    with TestClient(app_from_spec(moved)) as client:
        assert client.get("/ready").status_code == 200  # checksums verified, gate passed
        answer = client.post("/v1/predict", json={"records": row}).json()["predictions"][0]
    assert (
        answer["prediction"] == mw.load(tmp_path / "pkg").predict(frame.iloc[[0]])["prediction"][0]
    )
