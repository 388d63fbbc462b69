"""Reliability of the server: schema-driven fuzzing of every operation, and a bounded load."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from mlwright.package.store import load_package
from mlwright.serve.app import ServeSettings, create_app
from tests.serve.support import serving
from tests.serve.test_app import package, records  # noqa: F401  (module fixture)
from tests.track.test_servers import env_with

_SENT = ("method", "url", "headers", "json", "params", "content", "data")


def test_schemathesis_finds_no_server_error(package: Path, tmp_path: Path) -> None:  # noqa: F811
    # with a store, as `mlwright serve` always has: feedback is accepted, not refused with 503
    app = create_app(load_package(package), settings=ServeSettings(store=str(tmp_path / "s.db")))
    failures: list[tuple[str, int, Any]] = []
    calls: list[str] = []
    with TestClient(app.state.asgi) as client:
        schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.label for op in operations} >= {
            "POST /v1/predict",
            "POST /invocations",
            "POST /v1/feedback",
        }
        for operation in operations:
            fuzz(client, operation, calls, failures)()
    assert failures == []
    assert calls.count("POST /v1/predict") >= 20


def fuzz(
    client: TestClient, operation: Any, calls: list[str], failures: list[tuple[str, int, Any]]
) -> Any:
    """A seeded Hypothesis test of one operation (≤ 50 examples) that records 5xx answers."""

    @settings(
        max_examples=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        sent = {k: v for k, v in kwargs.items() if k in _SENT}
        if isinstance(sent.get("data"), (bytes, str)):  # a raw body (/invocations' text/csv)
            sent["content"] = sent.pop("data")
        response = client.request(**sent)
        calls.append(operation.label)
        if response.status_code >= 500:
            failures.append((operation.label, response.status_code, kwargs.get("json")))

    return call


def test_ten_seconds_of_load_without_an_error(package: Path, tmp_path: Path) -> None:  # noqa: F811
    body = json.dumps({"records": records(package, 1)}).encode()
    results: list[int] = []
    with serving(package, tmp_path) as (base, _):
        end = time.monotonic() + 10

        def worker() -> None:
            while time.monotonic() < end:
                request = urllib.request.Request(
                    f"{base}/v1/predict", data=body, headers={"Content-Type": "application/json"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        response.read()
                        results.append(response.status)
                except OSError:
                    results.append(0)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert len(results) > 50
    assert [s for s in results if s != 200] == []


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sixty_second_soak_keeps_memory_flat(package: Path, tmp_path: Path) -> None:  # noqa: F811
    body = json.dumps({"records": records(package, 5)}).encode()
    errors: list[int] = []
    with serving(package, tmp_path) as (base, proc):
        stop = threading.Event()

        def worker() -> None:
            while not stop.is_set():
                request = urllib.request.Request(
                    f"{base}/v1/predict", data=body, headers={"Content-Type": "application/json"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        response.read()
                except OSError:
                    errors.append(1)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            time.sleep(10)  # warm-up
            warm = rss_kib(proc.pid)
            time.sleep(60)
            end = rss_kib(proc.pid)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
    assert errors == []
    assert end <= warm * 1.05, f"RSS grew from {warm} KiB to {end} KiB"


def test_metrics_add_up_across_workers(package: Path, tmp_path: Path) -> None:  # noqa: F811
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    body = json.dumps({"records": records(package, 3)}).encode()
    env = env_with(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    with serving(package, tmp_path, "--workers", "2", env=env) as (base, _):
        for _ in range(12):
            request = urllib.request.Request(
                f"{base}/v1/predict", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
        deadline = time.monotonic() + 30
        while True:  # both workers report ready once each has started
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
                text = response.read().decode()
            ready = [line for line in text.splitlines() if line.startswith("mlwright_model_ready{")]
            if len(ready) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert len(ready) == 2  # one per worker process
    predicted = [
        line
        for line in text.splitlines()
        if line.startswith("mlwright_requests_total{") and 'route="/v1/predict"' in line
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in predicted) == 12
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("mlwright_predictions_total{")
    )
    assert counted == 36
