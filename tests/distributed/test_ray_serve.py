"""``mlwright serve --backend ray-serve``: one smoke test, in the slow tier, with a hard timeout."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import mlwright as mw
from tests.conftest import make_frame

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def http(url: str, body: dict[str, object] | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def test_two_replicas_on_ray_serve_answer_validate_record_and_stop(
    ray_home: Path, tmp_path: Path
) -> None:
    frame = make_frame(400)
    mw.train(frame, target="churned", max_trials=2, tracker="none", out=str(tmp_path / "pkg"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = tmp_path / "store.db"
    command = [
        sys.executable, "-m", "mlwright", "serve", str(tmp_path / "pkg"),
        "--backend", "ray-serve", "--replicas", "2", "--replica-cpus", "0.5",
        "--port", str(port), "--store", str(store),
    ]  # fmt: skip
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        up = "ray serve: 2 replica(s) of 0.5 CPU each are up"  # every replica deployed
        while up not in log.read_text() or http(f"{base}/ready")[0] != 200:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"not ready in 180 s: {log.read_text()}"
            time.sleep(1)
        row = {k: v.item() if hasattr(v, "item") else v for k, v in frame.iloc[0].items()}
        del row["churned"]
        expected = mw.load(tmp_path / "pkg").predict(frame.iloc[[0]])
        for _ in range(10):  # spread over both replicas
            status, body = http(f"{base}/v1/predict", {"records": [row]})
            assert status == 200, body
            answer = json.loads(body)["predictions"][0]
            assert answer["prediction"] == expected["prediction"].iloc[0]
            assert abs(answer["proba_yes"] - expected["proba_yes"].iloc[0]) < 1e-9
        status, body = http(f"{base}/v1/predict", {"records": [{**row, "x1": "abc"}]})
        assert status == 422
        assert json.loads(body)["errors"][0]["field"] == "x1"
        status, body = http(f"{base}/metrics")
        assert status == 200
        assert 'route="/v1/predict",status="200",version=""} 10.0' in body  # both replicas
    finally:
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert code == 0, log.read_text()
    with sqlite3.connect(store) as db:  # every replica's writer committed before it stopped
        assert db.execute("select count(*) from predictions").fetchone()[0] == 10
