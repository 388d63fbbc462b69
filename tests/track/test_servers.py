"""Against real processes on 127.0.0.1: an `mlflow server`, `mlflow models serve`, and a
training run killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_frame
from tests.track.test_mlflow import free_port

BIN = Path(sys.executable).parent


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@contextmanager
def process(
    cmd: list[str], *, env: dict[str, str], ready_url: str, log: Path, timeout: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{cmd[:4]} exited early:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{ready_url} not ready:\n{log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.5)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def mlwright(
    *args: str, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mlwright"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_train_promote_load_and_serve_through_an_mlflow_server(tmp_path: Path) -> None:
    data = tmp_path / "churn.csv"
    make_frame(300).to_csv(data, index=False)
    port = free_port()
    server = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    uri = f"http://127.0.0.1:{port}"
    env = env_with(MLFLOW_TRACKING_URI=uri)
    with process(server, env=env, ready_url=f"{uri}/health", log=tmp_path / "server.log"):
        done = mlwright(
            "train",
            str(data),
            "-t",
            "churned",
            "--max-trials",
            "1",
            "--out",
            str(tmp_path / "pkg"),
            "--quiet",
            env=env,
        )
        assert done.returncode == 0, done.stderr
        # versions, aliases and rollback on a store: tests/track/test_mlflow.py (SQLite)
        assert f"tracking: {uri}" in mlwright("models", "list", env=env).stderr
        promoted = mlwright("models", "promote", "churn", "1", env=env)
        assert promoted.returncode == 0, promoted.stderr
        out = tmp_path / "by-alias.csv"
        done = mlwright("predict", "churn@champion", str(data), "-o", str(out), env=env)
        assert done.returncode == 0, done.stderr
        local = mlwright(
            "predict", str(tmp_path / "pkg"), str(data), "-o", str(tmp_path / "local.csv"), env=env
        )
        assert local.returncode == 0, local.stderr
        assert out.read_bytes() == (tmp_path / "local.csv").read_bytes()

        # `mlflow models serve` serves the registered model and agrees with `mlwright predict`
        serve_port = free_port()
        serve = [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/churn@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(serve_port),
        ]
        with process(
            serve,
            env=env,
            ready_url=f"http://127.0.0.1:{serve_port}/ping",
            log=tmp_path / "serve.log",
            timeout=90,
        ):
            frame = pd.read_csv(data).head(20)
            split = json.loads(frame.drop(columns="churned").to_json(orient="split", index=False))
            request = urllib.request.Request(
                f"http://127.0.0.1:{serve_port}/invocations",
                data=json.dumps({"dataframe_split": split}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                served = pd.DataFrame(json.loads(response.read())["predictions"])
            # a CSV body: MLflow reads it with pandas, so x2 arrives as int64 and must match
            # the signature (an integer column declared as long, not double)
            assert frame.x2.dtype == "int64"
            request = urllib.request.Request(
                f"http://127.0.0.1:{serve_port}/invocations",
                data=frame.drop(columns="churned").to_csv(index=False).encode(),
                headers={"Content-Type": "text/csv"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                from_csv = pd.DataFrame(json.loads(response.read())["predictions"])
        expected = pd.read_csv(tmp_path / "local.csv").head(20)
        for answer in (served, from_csv):
            assert answer.prediction.tolist() == expected.prediction.tolist()
            np.testing.assert_allclose(answer.proba_yes, expected.proba_yes, rtol=0, atol=1e-9)


@pytest.mark.slow  # fault injection against a real server (~40 s): with the other long runs
def test_a_killed_train_leaves_no_broken_version(tmp_path: Path) -> None:
    r = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame(r.normal(size=(n, 8)), columns=[f"f{i}" for i in range(8)])
    frame["y"] = (frame.f0 + frame.f1 * frame.f2 + r.normal(size=n) > 0).astype(int)
    data = tmp_path / "killed.csv"
    frame.to_csv(data, index=False)
    env = env_with(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    log = tmp_path / "train.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "mlwright"),
                "train",
                str(data),
                "-t",
                "y",
                "--time-budget",
                "60",
                "--out",
                str(tmp_path / "pkg"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while b"trial   1" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    listed = mlwright("models", "show", "killed", env=env)
    assert listed.returncode == 1  # nothing was registered
    assert "no registered model named 'killed'" in listed.stderr
    assert not (tmp_path / "pkg").exists()  # and no half-written package

    done = mlwright(
        "train",
        str(data),
        "-t",
        "y",
        "--max-trials",
        "1",
        "--out",
        str(tmp_path / "pkg"),
        "--quiet",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "registered: killed version 1" in done.stdout
    predicted = mlwright("predict", "killed/1", str(data), "-o", str(tmp_path / "p.csv"), env=env)
    assert predicted.returncode == 0, predicted.stderr


def test_ui_opens_mlflow_on_the_embedded_store(tmp_path: Path) -> None:
    env = env_with(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    port = free_port()
    with process(
        [str(BIN / "mlwright"), "ui", "--port", str(port)],
        env=env,
        ready_url=f"http://127.0.0.1:{port}/health",
        log=tmp_path / "ui.log",
    ) as proc:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=5",
            timeout=10,
        ) as response:
            experiments = json.loads(response.read())["experiments"]
        assert [e["name"] for e in experiments] == ["Default"]
        assert proc.poll() is None
        assert _processes_naming(tmp_path)  # mlflow ui and its workers
        # stopping mlwright alone (not its process group) stops the UI and every worker
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 15
        while _processes_naming(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_naming(tmp_path) == []
    assert f"tracking: sqlite:///{tmp_path / 'mlflow.db'}" in (tmp_path / "ui.log").read_text()


def _processes_naming(path: Path) -> list[int]:
    """The live processes whose command line names ``path``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if str(path).encode() in cmdline and state != "Z":
                found.append(int(entry.name))
    return found
