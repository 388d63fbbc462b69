"""The serving store: every answered prediction is recorded, within the documented window."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlwright.errors import DataSourceError
from mlwright.package.store import load_package
from mlwright.serve.app import ServeSettings, create_app
from mlwright.store import FLUSH_SECONDS, PredictionBatch, PredictionWriter, read_predictions
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


def reference_file(path: Path) -> Path:
    """A monitoring reference with the one feature :func:`batch` serves, ``x``."""
    from mlwright.data.schema import infer_schema
    from mlwright.package.reference import build_reference

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    schema = infer_schema(frame, target="y")
    reference = build_reference(frame, schema, "regression", rng.normal(size=500), None)
    path.write_text(json.dumps(reference), encoding="utf-8")
    return path


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
    from mlwright.store import StoreWriter

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


def test_every_reader_refuses_a_missing_or_foreign_file_the_same_way(tmp_path: Path) -> None:
    """One read-only connection policy: a missing file, or one that is not a serving store,
    is a DataSourceError that says which file to pass, whichever reader opens it."""
    from mlwright.experiment.state import stored_experiments
    from mlwright.monitor.performance import live_performance
    from mlwright.store.counts import monitored
    from mlwright.store.predictions import request_counts

    foreign = tmp_path / "notes.db"
    foreign.write_text("not a database", encoding="utf-8")
    readers = [
        lambda p: list(read_predictions(p)),
        lambda p: request_counts(p, ["champion"]),
        monitored,
        live_performance,
        stored_experiments,
    ]
    for read in readers:
        with pytest.raises(DataSourceError, match="no serving store") as missing:
            read(tmp_path / "nothing.db")
        assert "--store" in str(missing.value.fix)
        with pytest.raises(DataSourceError, match="not a serving store"):
            read(foreign)


def test_the_writer_counts_drift_only_with_the_binning_it_is_given(tmp_path: Path) -> None:
    """The store imports no monitoring code: its writer counts served values with the binning
    function its caller passes, and without one it stores predictions and counts nothing."""
    from mlwright.monitor.counts import count_batch
    from mlwright.store import StoreWriter, Watch
    from mlwright.store.process import import_name, imported

    reference = reference_file(tmp_path / "reference.json")
    for count, counted in ((None, 0), (count_batch, 1)):
        db = tmp_path / f"{counted}.db"
        writer = StoreWriter(db, count=count)
        writer.watch(Watch("champion", "1", str(reference)))
        writer.add(batch(1))
        writer.close()
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM requests").fetchone() == (1,)
            assert conn.execute("SELECT COUNT(*) FROM drift_references").fetchone() == (counted,)
    # the writer process is told the function by name, and imports it itself
    assert import_name(count_batch) == "mlwright.monitor.counts:count_batch"
    assert imported(import_name(count_batch)) is count_batch
    with pytest.raises(ValueError, match="module-level function"):
        import_name(lambda *args: {})
