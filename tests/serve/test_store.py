"""The serving store: every answered prediction is recorded, within the documented window."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlwright.errors import DataSourceError
from mlwright.package.store import load_package
from mlwright.serve.app import ServeSettings, create_app
from mlwright.serve.store import FLUSH_SECONDS, PredictionBatch, read_predictions
from mlwright.serve.writer import PredictionWriter
from tests.serve.support import serving
from tests.serve.test_app import package, records  # noqa: F401  (module fixture)


def test_predictions_are_recorded_with_inputs_and_outputs(package: Path, tmp_path: Path) -> None:  # noqa: F811
    db = tmp_path / "serve.db"
    app = create_app(load_package(package), settings=ServeSettings(store=str(db)))
    rows = records(package, 3)
    rows[1] = {**rows[1], "not_a_feature": 1}
    with TestClient(app.state.asgi) as c:
        answer = c.post("/v1/predict", json={"records": rows, "entity_key": "user-7"}).json()
    saved = list(read_predictions(db))  # the lifespan's shutdown flushed the buffer
    assert [s["prediction_id"] for s in saved] == [
        p["prediction_id"] for p in answer["predictions"]
    ]
    assert [s["inputs"] for s in saved] == records(package, 3)  # the features, as sent
    assert [s["output"] for s in saved] == answer["predictions"]
    assert {s["entity_key"] for s in saved} == {"user-7"}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        view = list(conn.execute("SELECT prediction_id, row, output FROM predictions"))
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert [(v[0], v[1]) for v in view] == [
        (p["prediction_id"], i) for i, p in enumerate(answer["predictions"])
    ]
    assert json.loads(view[2][2]) == answer["predictions"][2]
    assert {"requests", "feedback", "experiments", "assignments", "alias_history"} <= tables


def test_reading_a_missing_store_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="no serving store"):
        list(read_predictions(tmp_path / "nothing.db"))


def batch(*ids: int) -> PredictionBatch:
    body = json.dumps({"records": [{"x": i, "extra": 1} for i in ids]}).encode()
    answer = {
        "predictions": [{"prediction_id": f"r{ids[0]}:{k}", "y": i} for k, i in enumerate(ids)]
    }
    return PredictionBatch(
        f"r{ids[0]}",
        time.time(),
        "m",
        "1",
        "champion",
        None,
        ("x",),
        len(ids),
        body,
        json.dumps(answer).encode(),
    )


def count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])


def test_writer_flushes_by_time_and_by_size(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    writer = PredictionWriter(db, flush_seconds=0.1, flush_rows=50)
    try:
        writer.add(batch(0))
        time.sleep(0.4)
        assert count(db) == 1  # flushed by time
        writer.add(batch(*range(1, 51)))
        deadline = time.monotonic() + 0.09  # before the time limit could apply
        while count(db) < 51 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert count(db) == 51  # flushed by size
        writer.add(batch(99))
    finally:
        writer.close()
    assert count(db) == 52  # close flushes the rest


@pytest.mark.timeout(120)
def test_a_killed_server_loses_at_most_the_flush_window(package: Path, tmp_path: Path) -> None:  # noqa: F811
    db = tmp_path / "serve.db"
    body = json.dumps({"records": records(package, 1)}).encode()
    answered: list[tuple[float, str]] = []
    with serving(package, tmp_path, store=db) as (base, proc):
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            request = urllib.request.Request(
                f"{base}/v1/predict",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                pid = json.loads(response.read())["predictions"][0]["prediction_id"]
            answered.append((time.monotonic(), pid))
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    saved = {s["prediction_id"] for s in read_predictions(db)}
    window = FLUSH_SECONDS + 0.2  # the documented window plus the commit in flight
    must_have = [pid for t, pid in answered if t < killed_at - window]
    assert len(must_have) > 10
    assert [pid for pid in must_have if pid not in saved] == []
    assert saved <= {pid for _, pid in answered}


def test_a_failed_write_does_not_wedge_the_writer(tmp_path: Path) -> None:
    """A write that fails is rolled back whole, so the next one can start a transaction."""
    from mlwright.serve.store import StoreWriter

    db = tmp_path / "w.db"
    writer = StoreWriter(db)
    try:
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE requests RENAME TO moved")
        with pytest.raises(sqlite3.OperationalError):
            writer._write([batch(1)])
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE moved RENAME TO requests")
        writer._write([batch(2)])
    finally:
        writer.close()
    assert count(db) == 1
