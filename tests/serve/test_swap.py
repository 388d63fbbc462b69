"""Hot swap: a new registry version takes over under load with zero failed requests; a version
that cannot take over leaves the previous one serving and says why on /ready."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import mlwright as mw
from mlwright.track.mlflow import promote
from tests.conftest import make_frame
from tests.serve.support import serving
from tests.track.test_servers import env_with


def post(url: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.timeout(240)
def test_hot_swap_under_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    frame = make_frame(300)
    for seed in (1, 2):
        mw.train(
            frame,
            target="churned",
            name="churn",
            max_trials=1,
            seed=seed,
            families=("lightgbm",),
            test_size=0.2 + 0.05 * seed,
        )
    # a third version that cannot take the same requests (one feature fewer)
    mw.train(
        frame.drop(columns="x2"),
        target="churned",
        name="churn",
        max_trials=1,
        families=("lightgbm",),
    )
    rows = list(mw.load("churn/1").golden["inputs"][:2])  # type: ignore[index]
    env = env_with(MLFLOW_TRACKING_URI=uri, MLWRIGHT_ADMIN_TOKEN="s3cret")
    with serving("churn@champion", tmp_path, env=env) as (base, _):
        seen: list[tuple[int, str | None]] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    status, body = post(f"{base}/v1/predict", {"records": rows})
                except OSError:  # the server went away: count it as a failure
                    status, body = 0, {}
                seen.append((status, body.get("model", {}).get("version")))

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        try:
            swap_under_load(base)
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=30)
        assert [s for s, _ in seen if s != 200] == []  # zero failed requests
        versions = [v for _, v in seen]
        assert "1" in versions and "2" in versions
        assert versions.index("2") > versions.index("1")

        # version 3 changes the features: refused, version 2 keeps serving, /ready says why
        status, result = post(f"{base}/v1/admin/reload", {"model": "churn/3"}, token="s3cret")
        assert (status, result["status"]) == (409, "refused")
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"{base}/ready", timeout=10)
        assert not_ready.value.code == 503
        assert "version 3 was not swapped in" in json.loads(not_ready.value.read())["reason"]
        status, body = post(f"{base}/v1/predict", {"records": rows})
        assert (status, body["model"]["version"]) == (200, "2")


def swap_under_load(base: str) -> None:
    """Promote version 2 and reload while the load threads run."""
    time.sleep(1.0)
    assert post(f"{base}/v1/admin/reload", {}, token="wrong")[0] == 401
    assert post(f"{base}/v1/admin/reload", {"model": "/etc/passwd"}, token="s3cret")[0] == 422
    promote("churn", "2")
    status, result = post(f"{base}/v1/admin/reload", {}, token="s3cret")
    assert status == 200, result
    assert (result["status"], result["version"]) == ("swapped", "2")
    time.sleep(1.0)
