"""Served values counted into the reference's bins as they are written, per minute.

The serving store's writer process (never the request path) counts each batch's feature values
and predictions into the bins of the package's ``reference.json`` and adds them to the serving
store's ``drift_counts`` table, one row per (variant, minute, column). Drift over any window is
then the sum of its minutes' counts (:func:`window_counts`), so a window of millions of
predictions is a few thousand small rows to read, never the raw requests.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.package.reference import numeric_values
from mlwright.serve.drift import (
    Settings,
    count_categorical,
    count_numeric,
    feature_drift,
    summary,
)

BUCKET_SECONDS = 60
PREDICTION = "(prediction)"


def count_batch(
    reference: dict[str, Any], records: list[dict[str, Any]], outputs: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Counts of one batch's values per reference column, and of its predictions."""
    frame = pd.DataFrame.from_records(records)
    out: dict[str, dict[str, Any]] = {}
    for name, entry in reference["columns"].items():
        values = frame[name] if name in frame else pd.Series([None] * len(frame), dtype=object)
        if entry["kind"] == "numeric":
            out[name] = count_numeric(entry, numeric_values(values, entry["schema_kind"]))
        else:
            out[name] = count_categorical(entry, values)
    prediction = reference.get("prediction")
    if prediction and outputs:
        predicted = pd.Series([o.get("prediction") for o in outputs])
        if prediction["kind"] == "numeric":
            out[PREDICTION] = count_numeric(prediction, numeric_values(predicted, "numeric"))
        else:
            out[PREDICTION] = count_categorical(prediction, predicted)
    return out


def merge(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    """The counts of two windows together."""
    if a is None:
        return b
    merged: dict[str, Any] = {}
    for key, value in b.items():
        other = a.get(key)
        if isinstance(value, list):
            merged[key] = (np.asarray(other or 0) + np.asarray(value)).tolist()
        elif isinstance(value, dict):
            merged[key] = {
                k: (other or {}).get(k, 0) + value.get(k, 0) for k in {*(other or {}), *value}
            }
        else:
            merged[key] = (other or 0) + value
    return merged


def add_counts(
    conn: sqlite3.Connection, variant: str, ts: float, counted: dict[str, dict[str, Any]]
) -> None:
    """Add ``counted`` to the minute of ``ts`` (inside the caller's transaction)."""
    bucket = int(ts // BUCKET_SECONDS) * BUCKET_SECONDS
    for col, counts in counted.items():
        row = conn.execute(
            "SELECT counts FROM drift_counts WHERE variant = ? AND bucket = ? AND col = ?",
            (variant, bucket, col),
        ).fetchone()
        total = merge(None if row is None else json.loads(row[0]), counts)
        conn.execute(
            "INSERT OR REPLACE INTO drift_counts VALUES (?, ?, ?, ?)",
            (variant, bucket, col, json.dumps(total)),
        )


def window_counts(
    store: Path, variant: str, since: float | None = None, until: float | None = None
) -> dict[str, dict[str, Any]]:
    query = "SELECT col, counts FROM drift_counts WHERE variant = ?"
    params: list[Any] = [variant]
    if since is not None:
        query += " AND bucket >= ?"
        params.append(int(since // BUCKET_SECONDS) * BUCKET_SECONDS)
    if until is not None:
        query += " AND bucket <= ?"
        params.append(until)
    totals: dict[str, dict[str, Any]] = {}
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        for col, counts in conn.execute(query, params):
            totals[col] = merge(totals.get(col), json.loads(counts))
    return totals


def window_drift(
    store: Path,
    reference: dict[str, Any],
    *,
    variant: str = "champion",
    since: float | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Drift of the served traffic since ``since`` against ``reference``, from the counts."""
    s = settings or Settings()
    counts = window_counts(store, variant, since)
    features = {
        name: feature_drift(entry, counts[name], s)
        for name, entry in reference["columns"].items()
        if name in counts
    }
    prediction = None
    if PREDICTION in counts and reference.get("prediction"):
        prediction = feature_drift(reference["prediction"], counts[PREDICTION], s)
    rows = max(
        (sum(np.asarray(_cells(counts[name]))) + counts[name]["missing"] for name in features),
        default=0,
    )
    return {
        "variant": variant,
        "since": since,
        "rows": int(rows),
        "prediction": prediction,
        **summary(features, s),
    }


def _cells(counted: dict[str, Any]) -> list[int]:
    cells = counted["counts"]
    return list(cells.values()) if isinstance(cells, dict) else list(cells)
