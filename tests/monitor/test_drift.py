"""Drift of served values against the package's training reference, with planted drift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlwright as mw
from mlwright.data.schema import infer_schema
from mlwright.monitor.drift import DriftSettings as Settings
from mlwright.monitor.drift import count_numeric, frame_drift, numeric_drift
from mlwright.package.reference import build_reference


def training(n: int, rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, n),
            "age": rng.integers(18, 80, n).astype(float),
            "city": rng.choice(["oslo", "rome", "lima", "kyiv"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "y": rng.normal(size=n),
        }
    )
    frame.loc[rng.random(n) < 0.05, "income"] = np.nan
    return frame


def train_package(frame: pd.DataFrame, out: Path) -> mw.Model:
    """A quick linear model of ``y`` written to ``out``."""
    return mw.train(
        frame, target="y", max_trials=1, families=("linear",), tracker="none", out=str(out)
    )


@pytest.fixture(scope="module")
def reference() -> dict:
    rng = np.random.default_rng(0)
    frame = training(20_000, rng)
    schema = infer_schema(frame, target="y")
    return build_reference(frame, schema, "regression", rng.normal(size=20_000), None)


def test_the_reference_is_compact_and_keeps_no_rows(reference: dict) -> None:
    income = reference["columns"]["income"]
    assert len(income["quantiles"]) == 1001 and income["missing_rate"] == pytest.approx(
        0.05, abs=0.01
    )
    assert set(reference["columns"]["city"]["frequencies"]) == {"oslo", "rome", "lima", "kyiv"}
    assert len(json.dumps(reference)) < 100_000


def test_no_drift_is_rarely_flagged(reference: dict) -> None:
    rng = np.random.default_rng(1)
    flagged = {"income": 0, "age": 0, "city": 0}
    windows = 200
    for _ in range(windows):
        result = frame_drift(reference, training(500, rng))
        for name in flagged:
            flagged[name] += result["features"][name]["drifted"]
        assert not result["dataset_drift"] or result["drift_share"] >= 0.5
    margin = 2.5 * np.sqrt(0.05 * 0.95 / windows)
    # age is integer-valued: ties make KS conservative, never liberal
    assert all(count / windows <= 0.05 + margin for count in flagged.values()), flagged


def test_a_shifted_numeric_feature_is_caught_in_small_and_large_windows(reference: dict) -> None:
    rng = np.random.default_rng(2)
    for n, method in ((500, "ks"), (20_000, "wasserstein_normed")):
        window = training(n, rng)
        window["age"] = window["age"] + 8  # about half a standard deviation
        result = frame_drift(reference, window)["features"]["age"]
        assert result["method"] == method and result["drifted"], result
        assert result["out_of_range_rate"] > 0.1
    calm = frame_drift(reference, training(20_000, rng))["features"]["age"]
    assert calm["method"] == "wasserstein_normed" and not calm["drifted"]
    assert calm["statistic"] < 0.02


def test_a_new_dominant_category_and_a_broken_column_are_caught(reference: dict) -> None:
    rng = np.random.default_rng(3)
    window = training(500, rng)
    window.loc[:300, "city"] = "paris"  # unseen in training, now most of the traffic
    window["income"] = np.nan  # the upstream column broke
    result = frame_drift(reference, window)
    city, income = result["features"]["city"], result["features"]["income"]
    assert city["drifted"] and city["method"] == "chi_square"
    assert city["unknown_rate"] == pytest.approx(301 / 500)
    assert income["drifted"] and income["missing_rate"] == 1.0
    assert result["drifted_features"] == ["income", "city"] or set(result["drifted_features"]) >= {
        "income",
        "city",
    }
    large = training(5000, rng)
    large.loc[:3000, "city"] = "paris"
    assert frame_drift(reference, large)["features"]["city"]["method"] == "jensen_shannon"
    assert frame_drift(reference, large)["features"]["city"]["drifted"]


def test_the_sketch_ks_is_within_a_thousandth_of_the_exact_one() -> None:
    rng = np.random.default_rng(4)
    train = rng.normal(size=50_000)
    frame = pd.DataFrame({"x": train, "y": 0.0})
    ref = build_reference(frame, infer_schema(frame, target="y"), "regression", train, None)
    entry = ref["columns"]["x"]
    current = rng.normal(0.1, 1.0, 800)
    ours = numeric_drift(entry, count_numeric(entry, current), Settings())
    exact = stats.ks_2samp(current, train).statistic
    assert ours["statistic"] == pytest.approx(exact, abs=0.003)


def test_every_trained_package_carries_its_reference(tmp_path: Path) -> None:
    frame = training(600, np.random.default_rng(5))
    model = train_package(frame, tmp_path / "pkg")
    loaded = mw.load(tmp_path / "pkg")
    assert loaded.reference is not None and loaded.reference == json.loads(
        (tmp_path / "pkg" / "reference.json").read_text()
    )
    assert set(loaded.reference["columns"]) == {"income", "age", "city"}
    assert loaded.reference["prediction"]["kind"] == "numeric"
    assert model.reference is not None
    assert not frame_drift(loaded.reference, frame.drop(columns="y"))["dataset_drift"]


def test_the_server_counts_served_values_and_reports_drift(tmp_path: Path) -> None:
    import time

    from fastapi.testclient import TestClient

    from mlwright.monitor.counts import window_counts
    from mlwright.serve.app import ServeSettings, create_app
    from mlwright.store import FLUSH_SECONDS
    from mlwright.store.counts import Watched

    rng = np.random.default_rng(6)
    frame = training(2000, rng)
    train_package(frame, tmp_path / "pkg")
    model = mw.load(tmp_path / "pkg")
    store = tmp_path / "serve.db"
    app = create_app(model, settings=ServeSettings(store=str(store)))

    def send(window: pd.DataFrame) -> None:
        records = json.loads(window.drop(columns="y").to_json(orient="records"))
        for start in range(0, len(records), 100):
            response = c.post("/v1/predict", json={"records": records[start : start + 100]})
            assert response.status_code == 200

    def drift_of(rows: int) -> dict:
        deadline = time.monotonic() + 20
        while True:  # the writer process counts within its flush window, after its start-up
            result = c.get("/v1/monitor/drift").json()
            if result["rows"] >= rows or time.monotonic() > deadline:
                return result
            time.sleep(FLUSH_SECONDS)

    with TestClient(app.state.asgi) as c:
        send(training(600, rng))
        calm = drift_of(600)
        shifted = training(600, rng)
        shifted["age"] += 15
        shifted["city"] = "paris"
        send(shifted)
        both = drift_of(1200)
        missing = c.get("/v1/monitor/drift", params={"variant": "other"})
    assert calm["rows"] == 600 and not calm["dataset_drift"], calm["drifted_features"]
    assert calm["prediction"]["n"] == 600
    assert both["rows"] == 1200
    assert {"age", "city"} <= set(both["drifted_features"])
    assert both["features"]["city"]["unknown_rate"] == pytest.approx(0.5)
    assert missing.status_code == 404
    digest = Watched.load(tmp_path / "pkg" / "reference.json").digest
    counts = window_counts(store, digest, "champion")
    assert sum(counts["age"]["counts"]) == 1200  # aggregated, not raw rows
