"""Experiments started while the server runs: the admin routes start and stop them, every worker
of the serving store adopts them, and a challenger that cannot serve is refused and kept
stopped."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import mlwright as mw
from mlwright.experiment.config import ExperimentConfig
from mlwright.package.model import Model
from mlwright.serve.app import ServeSettings, create_app
from mlwright.serve.served import ServerState
from mlwright.store import FLUSH_SECONDS
from mlwright.store.experiments import experiment_record
from tests.conftest import make_frame

NAME = "churn-live"
TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def registered() -> dict[str, Model]:
    """Three registered versions: 1 (champion), 2 (same columns), 3 (one column fewer)."""
    frame = make_frame(200)
    for family, data in (
        ("linear", frame),
        ("linear", frame),
        ("linear", frame.drop(columns="x2")),
    ):
        mw.train(data, target="churned", name=NAME, max_trials=1, families=(family,))
    loaded = {v: mw.load(f"{NAME}/{v}") for v in ("1", "2", "3")}
    assert all(isinstance(m, Model) for m in loaded.values())
    return loaded  # type: ignore[return-value]


@contextmanager
def serving(
    models: dict[str, Model], store: Path, *, own: ExperimentConfig | None = None
) -> Iterator[tuple[TestClient, ServerState]]:
    """A worker serving version 1 with the admin token, on the serving store ``store``: its
    client, and its state (what it serves)."""
    app = create_app(
        models["1"],
        name=NAME,
        version="1",
        ref=f"{NAME}@champion",
        settings=ServeSettings(store=str(store), admin_token=TOKEN),
        experiment=own,
        challengers=None if own is None else {"challenger": (models["2"], "2")},
    )
    with TestClient(app.state.asgi) as client:
        yield client, app.state.server


def start(client: TestClient, body: dict[str, Any], headers: Any = None) -> tuple[int, Any]:
    answer = client.post(
        "/v1/admin/experiments", json=body, headers=AUTH if headers is None else headers
    )
    return answer.status_code, answer.json()


def stop(client: TestClient, exp_id: str, reason: str = "enough") -> tuple[int, Any]:
    answer = client.post(
        f"/v1/admin/experiments/{exp_id}/stop", json={"reason": reason}, headers=AUTH
    )
    return answer.status_code, answer.json()


def variants_served(client: TestClient, models: dict[str, Model], n: int) -> list[str]:
    record = list(models["1"].golden["inputs"][:1])  # type: ignore[index]
    out = []
    for i in range(n):
        body = client.post("/v1/predict", json={"records": record, "entity_key": f"u{i}"}).json()
        out.append(body["model"]["variant"])
    return out


def until(check: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``check()`` held; fails after ``seconds``."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < seconds, "timed out"
        time.sleep(0.1)
    return time.monotonic() - began


def test_shadow_then_split_on_a_live_server(registered: dict[str, Model], tmp_path: Path) -> None:
    store = tmp_path / "serve.db"
    shadow = {"id": "live-shadow", "challenger": f"{NAME}/2", "mode": "shadow"}
    with serving(registered, store) as (c, state):
        status, body = start(c, shadow)
        assert status == 200, body
        assert (body["id"], body["mode"], body["status"], body["server"]) == (
            "live-shadow",
            "shadow",
            "running",
            NAME,
        )
        assert [(v["name"], v["version"], v["ready"]) for v in body["variants"]] == [
            ("champion", "1", True),
            ("challenger", "2", True),
        ]
        again = start(c, shadow)  # the same again: its state
        assert (again[0], again[1]["id"], again[1]["status"]) == (200, "live-shadow", "running")
        assert set(variants_served(c, registered, 20)) == {"champion"}  # shadow: champion answers
        assert set(state.variants) == {"champion", "challenger"}

        # another experiment while one runs, or the same id with another config: 409
        split = {"id": "live-split", "challenger": f"{NAME}/2", "mode": "split", "weight": 0.5}
        status, body = start(c, split)
        assert status == 409 and "'live-shadow' is running" in body["errors"][0]["reason"]
        status, body = start(c, {**shadow, "mode": "split", "weight": 0.3})
        assert (status, body["errors"][0]["field"]) == (409, "id")

        status, body = stop(c, "live-shadow", "shadow looked fine")
        assert (status, body["status"], body["reason"]) == (200, "stopped", "shadow looked fine")
        assert set(state.variants) == {"champion"}
        assert experiment_record(store, "live-shadow")[1] == "stopped: shadow looked fine"  # type: ignore[index]

        status, body = start(c, split)  # a new experiment replaces the stopped one
        assert (status, body["id"], body["weights"]) == (
            200,
            "live-split",
            {"champion": 0.5, "challenger": 0.5},
        )
        served = variants_served(c, registered, 200)
        assert 60 < served.count("challenger") < 140
        listed = c.get("/v1/experiments").json()["experiments"]
        assert listed == [{"id": "live-split", "status": "running"}]

        def recorded() -> bool:
            analysis = c.get("/v1/experiments/live-split").json()["analysis"]
            return bool(sum(analysis["requests"].values()) == 200)

        until(recorded, 20 + FLUSH_SECONDS)
        analysis = c.get("/v1/experiments/live-split").json()["analysis"]
        assert analysis["requests"] == {
            "champion": served.count("champion"),
            "challenger": served.count("challenger"),
        }
    with closing(sqlite3.connect(store)) as conn:  # the challenger's drift is counted
        counted = {row[0] for row in conn.execute("SELECT DISTINCT variant FROM drift_counts")}
    assert counted == {"champion", "challenger"}
    record, status_text = experiment_record(store, "live-split")  # type: ignore[misc]
    assert (status_text, record["server"]) == ("running", NAME)
    assert record["config"]["variants"][1] == {
        "name": "challenger",
        "model": f"{NAME}/2",
        "weight": 0.5,
    }


def test_bad_requests_are_named_and_refused(registered: dict[str, Model], tmp_path: Path) -> None:
    store = tmp_path / "serve.db"
    good = {"id": "bad-cases", "challenger": f"{NAME}/2", "mode": "split", "weight": 0.2}
    with serving(registered, store) as (c, state):
        assert start(c, good, headers={})[0] == 401
        assert start(c, good, headers={"Authorization": "Bearer wrong"})[0] == 401
        for change, field in (
            ({"colour": "red"}, "colour"),
            ({"challenger": "/etc/passwd"}, "challenger"),
            ({"weight": 1.5}, "weight"),
            ({"weight": None}, "weight"),  # split needs a share
            ({"weight": 0}, "weight"),  # of more than nothing
            ({"mode": "canary"}, "mode"),
            ({"id": "no spaces"}, "id"),
            ({"guardrails": {"max_error_rate": 0.1, "typo": 1}}, "guardrails.typo"),
        ):
            status, body = start(c, {**good, **change})
            assert (status, body["errors"][0]["field"]) == (422, field), (change, body)
        assert experiment_record(store, "bad-cases") is None  # nothing stored
        # a number JSON parses as infinity (the store's JSON could not hold it)
        raw = (
            b'{"id": "inf-case", "challenger": "%s/2", "mode": "split", "weight": 0.2, '
            % (NAME.encode())
            + b'"guardrails": {"max_p99_ms": 1e400}}'
        )
        answered = c.post("/v1/admin/experiments", content=raw, headers={**AUTH,
                          "Content-Type": "application/json"})  # fmt: skip
        assert answered.status_code == 422, answered.text
        assert answered.json()["errors"][0]["field"] == "guardrails.max_p99_ms"
        assert experiment_record(store, "inf-case") is None

        # a challenger that takes other columns: refused, kept stopped, champion serves all
        other = {**good, "id": "other-columns", "challenger": f"{NAME}/3"}
        status, body = start(c, other)
        assert status == 409, body
        assert "takes other input than the champion" in body["errors"][0]["reason"]
        assert body["experiment"]["status"] == "stopped"
        stored = experiment_record(store, "other-columns")
        assert stored is not None and stored[1].startswith("stopped: churn-live/3 takes other")
        assert set(variants_served(c, registered, 20)) == {"champion"}
        assert set(state.variants) == {"champion"}
        assert start(c, other)[1]["status"] == "stopped"  # the same again: its state
        missing = c.post("/v1/admin/experiments/nope/stop", json={}, headers=AUTH)
        assert missing.status_code == 404
        bad_stop = c.post("/v1/admin/experiments/other-columns/stop", json={"why": 1}, headers=AUTH)
        assert (bad_stop.status_code, bad_stop.json()["errors"][0]["field"]) == (422, "why")
        assert start(c, good)[0] == 200  # the stopped one does not block a new one

    # a server started with its own experiment (--challenger) takes no other while it runs
    own = ExperimentConfig.for_challenger(f"{NAME}@champion", f"{NAME}/2", split=0.1, shadow=False)
    with serving(registered, tmp_path / "own.db", own=own) as (c, _):
        status, body = start(c, {**good, "id": "while-own"})
        assert status == 409 and own.id in body["errors"][0]["reason"]


def test_another_worker_adopts_and_follows_a_stop(
    registered: dict[str, Model], tmp_path: Path
) -> None:
    store = tmp_path / "serve.db"
    split = {"id": "two-workers", "challenger": f"{NAME}/2", "mode": "split", "weight": 0.5}
    with serving(registered, store) as (first, _), serving(registered, store) as (second, state):
        assert start(first, split)[0] == 200

        def adopted() -> bool:
            listed = second.get("/v1/experiments").json()["experiments"]
            return bool(listed == [{"id": "two-workers", "status": "running"}])

        assert until(adopted, 10) < 5
        assert set(state.variants) == {"champion", "challenger"}
        assert set(variants_served(second, registered, 40)) == {"champion", "challenger"}
        # the same start sent to the other worker: the same experiment
        status, body = start(second, split)
        assert (status, body["id"], body["status"]) == (200, "two-workers", "running")

        assert stop(first, "two-workers")[0] == 200

        def stopped() -> bool:
            return set(state.variants) == {"champion"}

        until(stopped, 5)
        assert set(variants_served(second, registered, 40)) == {"champion"}
        status = second.get("/v1/experiments/two-workers").json()
        assert (status["status"], status["reason"]) == ("stopped", "enough")
