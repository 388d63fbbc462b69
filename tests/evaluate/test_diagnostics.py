"""Diagnostics behind the report's Evaluation section."""

from __future__ import annotations

import numpy as np
import pytest

from mlwright.evaluate.diagnostics import (
    FAST_SCORERS,
    bootstrap_metrics,
    calibration_curve,
    confusion,
    diagnose,
    per_class,
)
from mlwright.evaluate.metrics import score


@pytest.mark.parametrize("k", [2, 3, 5])
def test_the_bootstraps_scorers_give_scikit_learns_values(k: int) -> None:
    r = np.random.default_rng(k)
    for n in (30, 400):
        y = r.integers(0, k, n)
        p = np.round(r.dirichlet(np.ones(k), n), 2)  # rounding makes ties
        p /= p.sum(axis=1, keepdims=True)
        for name, fast in FAST_SCORERS.items():
            if (name in ("f1", "average_precision")) != (k == 2) and name != "roc_auc":
                continue
            assert fast(y, p, 0.4) == pytest.approx(score(name, y, p, 0.4), abs=1e-12), name


def test_confusion_and_per_class_count_what_happened() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    labels = np.array([0, 1, 0, 1, 1, 1])
    assert confusion(y, labels, 3).tolist() == [[2, 1, 0], [0, 2, 0], [0, 1, 0]]
    rows = {r["class"]: r for r in per_class(y, labels, ["a", "b", "c"])}
    assert rows["a"]["precision"] == 1.0 and rows["a"]["recall"] == pytest.approx(2 / 3)
    assert rows["b"]["precision"] == pytest.approx(2 / 4) and rows["b"]["recall"] == 1.0
    assert rows["c"]["precision"] is None  # never predicted
    assert rows["c"]["recall"] == 0.0 and rows["c"]["support"] == 1


def test_intervals_hold_the_value_and_shrink_with_more_rows() -> None:
    r = np.random.default_rng(0)

    def width(n: int) -> float:
        y = r.normal(size=n)
        pred = y + r.normal(scale=0.5, size=n)
        m = bootstrap_metrics("regression", y, pred, 0.5, seed=0)["rmse"]
        assert m["low"] <= m["value"] <= m["high"]
        return m["high"] - m["low"]

    assert width(4000) < width(100) / 3


def test_a_calibrated_model_lies_on_the_diagonal() -> None:
    r = np.random.default_rng(1)
    p = r.uniform(size=20_000)
    y = (r.uniform(size=p.size) < p).astype(int)
    cal = calibration_curve(y, np.column_stack([1 - p, p]))
    assert len(cal["predicted"]) == 10 and sum(cal["count"]) == p.size
    assert np.allclose(cal["predicted"], cal["observed"], atol=0.03)


def test_diagnose_keeps_no_more_than_it_needs() -> None:
    r = np.random.default_rng(2)
    n = 50_000
    y = r.integers(0, 2, n)
    p = np.clip(y * 0.6 + r.uniform(size=n) * 0.4, 0, 1)
    out = diagnose("binary", y, np.column_stack([1 - p, p]), classes=("no", "yes"), threshold=0.5)
    roc = out["curves"][0]["roc"]
    assert len(roc["fpr"]) <= 200 and roc["fpr"][0] == 0.0 and roc["fpr"][-1] == 1.0
    assert out["rows"] == n and out["classes"] == ["no", "yes"]
    reg = diagnose("regression", r.normal(size=n), r.normal(size=n))
    assert len(reg["residuals"]["predicted"]) == 2000
