"""Monitoring from the serving store: windows by time and count, drift per served version, live
performance from feedback, the Prometheus gauges, `mlwright monitor` and its HTML report."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlwright.data.schema import infer_schema
from mlwright.monitor.counts import window_drift
from mlwright.monitor.overview import overview, parse_since
from mlwright.monitor.performance import live_performance
from mlwright.package.reference import build_reference
from mlwright.serve.feedback import FeedbackItem
from mlwright.serve.feedback import record as record_feedback
from mlwright.store import connect
from mlwright.store.counts import monitored
from tests.browser import check_page, chromium, needs_chromium
from tests.monitor.test_drift import training
from tests.monitor.traffic import Traffic

HOUR = 3600.0
START = 1_700_002_800.0  # a whole hour (2023-11-14 23:00 UTC)


def _reference(seed: int = 0, shift: float = 0.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    frame = training(20_000, rng)
    frame["age"] += shift
    schema = infer_schema(frame, target="y")
    return build_reference(frame, schema, "regression", rng.normal(size=20_000), None)


def _served(rows: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    frame = training(rows, rng).drop(columns="y")
    frame["age"] += shift
    return frame


def _predictions(n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    return [{"prediction": float(v)} for v in rng.normal(size=n)]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six hours of a regression model's traffic, 600 rows an hour in batches of 50: version 1
    for four calm hours, then version 2 (trained on older customers) for two hours in which
    `age` rose by 15 — drift against version 1's reference, none against version 2's."""
    root = tmp_path_factory.mktemp("monitor")
    store = root / "serve.db"
    rng = np.random.default_rng(11)
    traffic = Traffic(store, model="churn")
    traffic.watch("champion", "1", _reference(), root / "v1.json")
    traffic.watch("champion", "2", _reference(seed=1, shift=15.0), root / "v2.json")
    feedback: list[FeedbackItem] = []
    for hour in range(6):
        version, shift = ("1", 0.0) if hour < 4 else ("2", 15.0)
        for k in range(12):
            frame = _served(50, rng, shift)
            ids = traffic.send(
                frame,
                _predictions(50, rng),
                ts=START + hour * HOUR + k * 300,
                version=version,
            )
            if k % 3 == 0:  # feedback for a quarter of the predictions, error sd 0.5 then 2
                noise = 0.5 if hour < 4 else 2.0
                feedback += [
                    FeedbackItem(prediction_id=i, value=float(rng.normal(0, noise))) for i in ids
                ]
    traffic.close()
    record_feedback(store, feedback)
    return store


def test_each_served_version_is_counted_against_its_own_reference(history: Path) -> None:
    found = monitored(history)
    assert [(m["version"], m["rows"]) for m in found] == [("1", 2400), ("2", 1200)]
    assert found[0]["digest"] != found[1]["digest"]
    result = overview(history)
    by_version = {m.version: m for m in result.monitored}
    assert not by_version["1"].drift["dataset_drift"], by_version["1"].drift["drifted_features"]
    assert by_version["2"].drift["drifted_features"] == []  # age moved with its training data
    # the same older customers would drift against version 1's reference
    rng = np.random.default_rng(3)
    v1 = by_version["1"].reference
    from mlwright.monitor.drift import frame_drift

    assert "age" in frame_drift(v1, _served(2000, rng, 15.0))["drifted_features"]


def test_windows_by_time_and_by_count(history: Path) -> None:
    digest = monitored(history)[0]["digest"]
    reference = overview(history).monitored[0].reference
    everything = window_drift(history, reference, digest)
    assert everything["rows"] == 2400
    recent = window_drift(history, reference, digest, since=START + 3 * HOUR)
    assert recent["rows"] == 600 and recent["window"]["first"] == START + 3 * HOUR
    counted = window_drift(history, reference, digest, last=120)
    assert counted["rows"] == 150  # the latest whole minutes holding ≥ 120 rows: three batches
    assert counted["window"]["last"] == START + 3 * HOUR + 11 * 300 + 60
    assert window_drift(history, reference, digest, since=START + 10 * HOUR)["rows"] == 0
    assert everything["features"]["age"]["method"] == "wasserstein_normed"
    assert recent["features"]["age"]["method"] == "ks"  # 600 values: the statistical test


def test_live_performance_per_version_over_time(history: Path) -> None:
    found = {p["version"]: p for p in live_performance(history, step_seconds=int(HOUR))}
    assert set(found) == {"1", "2"}
    assert found["1"]["feedback"] == 4 * 4 * 50 and found["2"]["feedback"] == 2 * 4 * 50
    # feedback values are the error around a prediction of 0 ± 1: RMSE is about √(1 + sd²)
    assert found["1"]["metrics"]["rmse"] == pytest.approx(np.sqrt(1 + 0.25), rel=0.1)
    assert found["2"]["metrics"]["rmse"] == pytest.approx(np.sqrt(1 + 4.0), rel=0.1)
    assert found["2"]["metrics"]["mae"] < found["2"]["metrics"]["rmse"]
    assert [t["start"] for t in found["1"]["timeline"]] == [START + h * HOUR for h in range(4)]
    assert all(t["feedback"] == 200 for t in found["1"]["timeline"])
    late = live_performance(history, since=START + 5 * HOUR)
    assert [(p["version"], p["feedback"]) for p in late] == [("2", 200)]


def test_the_timeline_shows_when_drift_began(tmp_path: Path) -> None:
    store = tmp_path / "serve.db"
    rng = np.random.default_rng(5)
    traffic = Traffic(store)
    traffic.watch("champion", None, _reference(), tmp_path / "ref.json")
    for hour in range(6):
        for k in range(6):
            frame = _served(200, rng, shift=20.0 if hour >= 4 else 0.0)
            if hour >= 4:
                frame["city"] = None  # an upstream column broke as well
            traffic.send(frame, _predictions(200, rng), ts=START + hour * HOUR + k * 600)
    traffic.close()
    (only,) = overview(store).monitored
    assert len(only.timeline) == 24  # six hours in steps of 15 minutes
    assert sum(p["rows"] for p in only.timeline) == 7200
    drifting = [p["dataset_drift"] for p in only.timeline]
    assert drifting == [p["start"] >= START + 4 * HOUR for p in only.timeline]
    assert set(only.timeline[-1]["drifted_features"]) == {"age", "city"}
    assert only.drift["features"]["city"]["missing_rate"] == pytest.approx(1 / 3)


def test_parse_since() -> None:
    now = 1_000_000.0
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2d", now) == now - 2 * 86400
    assert parse_since("1.5h", now) == now - 5400
    assert parse_since("2026-11-01T12:00", now) == pd.Timestamp("2026-11-01T12:00Z").timestamp()
    assert parse_since(None) is None
    from mlwright.errors import ConfigError

    with pytest.raises(ConfigError, match="neither a duration nor a date"):
        parse_since("yesterday-ish", now)


def test_counts_from_an_older_store_are_reset(tmp_path: Path) -> None:
    store = tmp_path / "old.db"
    with sqlite3.connect(store) as conn:
        conn.execute(
            "CREATE TABLE drift_counts (variant TEXT, bucket INTEGER, col TEXT, counts TEXT, "
            "PRIMARY KEY (variant, bucket, col))"
        )
        conn.execute("INSERT INTO drift_counts VALUES ('champion', 0, 'a', '{}')")
    connect(store).close()
    with sqlite3.connect(store) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(drift_counts)")]
        assert "digest" in columns
        assert conn.execute("SELECT COUNT(*) FROM drift_counts").fetchone() == (0,)


# --- the CLI and its HTML report ------------------------------------------------------------------


def test_monitor_prints_writes_json_and_html(history: Path, cli: Any, tmp_path: Path) -> None:
    shown = cli("monitor", "--store", str(history))
    assert shown.code == 0, shown.out + shown.err
    assert "churn/1 (champion)" in (shown.out + shown.err) and "churn/2 (champion)" in (
        shown.out + shown.err
    )
    assert "live performance" in (shown.out + shown.err)
    as_json = cli("monitor", "--store", str(history), "--json", "--last", "100")
    assert as_json.code == 0, as_json.out + as_json.err
    body = json.loads(as_json.out)
    assert [m["rows"] for m in body["monitored"]] == [100, 100]
    page = tmp_path / "monitor.html"
    written = cli("monitor", "--store", str(history), "--model", "churn", "--html", str(page))
    assert written.code == 0, written.out + written.err
    html = page.read_text(encoding="utf-8")
    for title in ("Summary", "Drift over time", "Features", "Live performance"):
        assert f". {title}</h2>" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing external
    # per version: the timeline, the predictions and three features; the live RMSE and MAE
    assert html.count("<img ") == 2 * (1 + 1 + 3) + 2


def test_monitor_errors_name_the_problem(history: Path, cli: Any, tmp_path: Path) -> None:
    unknown = cli("monitor", "--store", str(history), "--model", "nope")
    assert unknown.code == 1 and "models it has: churn" in (unknown.out + unknown.err)
    missing = cli("monitor", "--store", str(tmp_path / "none.db"))
    assert missing.code == 1 and "no serving store" in (missing.out + missing.err)
    both = cli("monitor", "--store", str(history), "--since", "1h", "--last", "5")
    assert both.code == 2 and "not both" in (both.out + both.err)
    suffix = cli("monitor", "--store", str(history), "--html", str(tmp_path / "x.pdf"))
    assert suffix.code == 2 and ".html" in (suffix.out + suffix.err)
    junk = tmp_path / "junk.db"
    junk.write_text("not a database", encoding="utf-8")
    not_a_store = cli("monitor", "--store", str(junk))
    assert not_a_store.code == 1 and "not a serving store" in not_a_store.err
    empty = cli("monitor", "--store", str(history), "--since", "1h")
    assert empty.code == 0 and "no monitored traffic" in (empty.out + empty.err)


@needs_chromium
def test_the_monitoring_page_opens_cleanly(history: Path, cli: Any, tmp_path: Path) -> None:
    page = tmp_path / "monitor.html"
    assert cli("monitor", "--store", str(history), "--html", str(page)).code == 0
    with chromium(tmp_path / "profile") as driver:
        seen = check_page(driver, page, "monitoring.png")
    assert seen["titles"] == [
        "1. Summary",
        "2. Drift over time",
        "3. Features",
        "4. Live performance",
    ]
    assert len(seen["images"]) == 12


def test_an_empty_store_gives_an_empty_report(tmp_path: Path, cli: Any) -> None:
    store = tmp_path / "serve.db"
    connect(store).close()
    page = tmp_path / "empty.html"
    result = cli("monitor", "--store", str(store), "--html", str(page))
    assert result.code == 0 and "no monitored traffic" in (result.out + result.err)
    assert "send it requests" in page.read_text(encoding="utf-8")


# --- the server -----------------------------------------------------------------------------------


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.timeout(300)
def test_the_server_follows_a_swap_and_exposes_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    import mlwright as mw
    from mlwright.serve.app import ServeSettings, create_app
    from mlwright.serve.slot import swap
    from mlwright.store import FLUSH_SECONDS

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    rng = np.random.default_rng(21)
    older = training(3000, rng)
    older["age"] += 15
    for frame in (training(3000, rng), older):
        mw.train(frame, target="y", name="drifty", max_trials=1, families=("linear",))
    store = tmp_path / "serve.db"
    settings = ServeSettings(store=str(store), monitor_cache_seconds=0)
    app = create_app(mw.load("drifty/1"), name="drifty", version="1", settings=settings)

    def send(rows: int) -> list[str]:
        records = json.loads(_served(rows, rng, 15.0).to_json(orient="records"))
        ids = []
        for start in range(0, rows, 100):
            answer = c.post("/v1/predict", json={"records": records[start : start + 100]})
            assert answer.status_code == 200
            ids += [p["prediction_id"] for p in answer.json()["predictions"]]
        return ids

    def drift(rows: int) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while True:  # counted by the writer process within its flush window
            found: dict[str, Any] = c.get("/v1/monitor/drift").json()
            if found["rows"] >= rows or time.monotonic() > deadline:
                return found
            time.sleep(FLUSH_SECONDS)

    with TestClient(app.state.asgi) as c:
        ids = send(600)
        before = drift(600)
        feedback = [{"prediction_id": i, "value": 0.0} for i in ids[:200]]
        assert c.post("/v1/feedback", json={"items": feedback}).status_code == 200
        scraped = c.get("/metrics").text
        performance = c.get("/v1/monitor/performance").json()
        assert swap(app.state.slot, "drifty/2")["status"] == "swapped"
        send(400)
        after = drift(400)
        rescraped = c.get("/metrics").text
        bad = c.get("/v1/monitor/drift", params={"last": 0})
        strict = c.get("/v1/monitor/drift", params={"p_value": 0.5, "small_window": 10**6})
        bad_setting = c.get("/v1/monitor/drift", params={"dataset_share": 1.5})
    assert before["version"] == "1" and before["rows"] == 600
    assert "age" in before["features"] and "age" in before["drifted_features"]
    assert _metric(scraped, "mlwright_feature_drifted", feature="age", version="1") == 1.0
    assert _metric(scraped, "mlwright_monitor_window_rows", version="1") == 600
    assert _metric(scraped, "mlwright_live_feedback", version="1") == 200
    assert _metric(scraped, "mlwright_live_metric", metric="rmse", version="1") > 0
    (live,) = performance["performance"]
    assert live["version"] == "1" and live["feedback"] == 200 and "rmse" in live["metrics"]
    # after the swap: the new version's rows only, against its own (older) reference
    assert after["version"] == "2" and after["rows"] == 400
    assert "age" not in after["drifted_features"]
    assert _metric(rescraped, "mlwright_feature_drifted", feature="age", version="2") == 0.0
    assert [m["version"] for m in monitored(store)] == ["1", "2"]
    assert bad.status_code == 422 and bad_setting.status_code == 422
    assert strict.json()["settings"]["p_value"] == 0.5
    assert strict.json()["features"]["income"]["method"] == "ks"  # 400 ≤ the small window


def test_the_drift_thresholds_can_be_changed(history: Path, cli: Any) -> None:
    from mlwright.errors import ConfigError
    from mlwright.monitor.settings import DriftSettings as Settings

    strict = overview(history, settings=Settings(wasserstein=0.001, jensen_shannon=0.001))
    assert all(m.drift["dataset_drift"] for m in strict.monitored)  # any difference drifts
    assert strict.monitored[0].drift["settings"]["wasserstein"] == 0.001
    with pytest.raises(ConfigError, match="p_value"):
        Settings(p_value=0.0)
    shown = cli("monitor", "--store", str(history), "--json", "--wasserstein", "0.001")
    assert json.loads(shown.out)["monitored"][0]["settings"]["wasserstein"] == 0.001
    bad = cli("monitor", "--store", str(history), "--dataset-share", "2")
    assert bad.code == 1 and "dataset_share" in bad.err


def test_a_backlog_is_written_whole_in_bounded_transactions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlwright.store import MAX_WRITE_ROWS, StoreWriter

    written: list[int] = []
    write = StoreWriter._write

    def recorded(self: StoreWriter, batches: list[Any]) -> None:
        written.append(sum(map(len, batches)))
        write(self, batches)

    monkeypatch.setattr(StoreWriter, "_write", recorded)
    store = tmp_path / "serve.db"
    rng = np.random.default_rng(8)
    traffic = Traffic(store)
    traffic.watch("champion", None, _reference(), tmp_path / "ref.json")
    frame = _served(500, rng)
    for k in range(60):  # far faster than the writer: most of 30,000 rows wait at close
        traffic.send(frame, _predictions(500, rng), ts=START + k)
    traffic.close()
    assert sum(written) == 30_000 and max(written) <= MAX_WRITE_ROWS
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT SUM(n) FROM requests").fetchone() == (30_000,)
    assert [m["rows"] for m in monitored(store)] == [30_000]
