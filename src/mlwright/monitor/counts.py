"""Served values counted into the reference's bins, and drift over any window from the counts.

The serving store's writer process (never the request path) counts each batch's feature values
and predictions into the bins of the served version's ``reference.json`` with
:func:`count_batch` (the binning function the server hands the store's writer), and the store
keeps the counts per (reference, variant, minute, column) (:mod:`mlwright.store.counts`). Drift
over any window is the sum of its minutes' counts (:func:`window_counts`): a window of millions
of predictions is a few thousand small rows to read, never the raw requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.monitor.drift import (
    DriftSettings,
    count_categorical,
    count_numeric,
    feature_drift,
    summary,
)
from mlwright.package.reference import numeric_values
from mlwright.store.counts import BUCKET_SECONDS, ROWS, bucket_counts, merge

PREDICTION = "(prediction)"


# --- counting (writer process) --------------------------------------------------------------------


def count_batch(
    reference: dict[str, Any],
    columns: Mapping[str, Sequence[Any]],
    rows: int,
    predicted: Sequence[Any],
) -> dict[str, dict[str, Any]]:
    """Counts of one batch's values per reference column (``columns``: name → the values as
    sent, validated against the schema when served), of its predictions, and its rows."""
    out: dict[str, dict[str, Any]] = {ROWS: {"n": rows}}
    for name, entry in reference["columns"].items():
        values = columns.get(name)
        if values is None:
            values = [None] * rows
        if entry["kind"] == "numeric":
            out[name] = count_numeric(entry, _floats(values, entry["schema_kind"]))
        else:
            out[name] = count_categorical(entry, values)
    prediction = reference.get("prediction")
    if prediction and predicted:
        if prediction["kind"] == "numeric":
            out[PREDICTION] = count_numeric(prediction, _floats(predicted, "numeric"))
        else:
            out[PREDICTION] = count_categorical(prediction, predicted)
    return out


def _floats(values: Sequence[Any], kind: str) -> np.ndarray:
    if kind != "datetime":
        try:
            return np.array(values, dtype="float64")  # numbers, booleans and None (NaN)
        except (TypeError, ValueError):
            pass
    return numeric_values(pd.Series(values, dtype=object), kind)


# --- windows (server, CLI) ------------------------------------------------------------------------


def latest_since(buckets: dict[int, dict[str, dict[str, Any]]], last: int) -> int | None:
    """The first minute of the shortest run of latest minutes holding at least ``last`` rows
    (a count window is whole minutes: it may hold up to a minute's rows more)."""
    total = 0
    for bucket in sorted(buckets, reverse=True):
        total += int(buckets[bucket].get(ROWS, {}).get("n", 0))
        if total >= last:
            return bucket
    return min(buckets, default=None)


def total(minutes: Iterable[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The counts of several minutes together, per column."""
    totals: dict[str, dict[str, Any]] = {}
    by_col: dict[str, list[dict[str, Any]]] = {}
    for minute in minutes:
        for col, counts in minute.items():
            by_col.setdefault(col, []).append(counts)
    for col, parts in by_col.items():
        bins = [p["counts"] for p in parts if isinstance(p.get("counts"), np.ndarray)]
        if bins and len(bins) == len(parts) and len({len(b) for b in bins}) == 1:
            summed: dict[str, Any] = {"counts": np.sum(bins, axis=0)}
            for key in parts[0]:
                if key != "counts":
                    summed[key] = sum(p.get(key, 0) for p in parts)
            totals[col] = summed
            continue
        for part in parts:
            totals[col] = merge(totals.get(col), part)
    return totals


def window_buckets(
    store: Path,
    digest: str,
    variant: str,
    *,
    since: float | None = None,
    last: int | None = None,
) -> dict[int, dict[str, dict[str, Any]]]:
    """The minutes of a window: since ``since`` (epoch seconds), or the latest minutes
    holding ``last`` rows, or everything recorded."""
    buckets = bucket_counts(store, digest, variant, since)
    if last is not None:
        start = latest_since(buckets, last)
        buckets = {b: c for b, c in buckets.items() if start is not None and b >= start}
    return buckets


def window_counts(
    store: Path,
    digest: str,
    variant: str,
    *,
    since: float | None = None,
    last: int | None = None,
) -> dict[str, dict[str, Any]]:
    """A window's counts per column, summed over its minutes."""
    return total(window_buckets(store, digest, variant, since=since, last=last).values())


def drift_of(
    counts: dict[str, dict[str, Any]], reference: dict[str, Any], s: DriftSettings
) -> dict[str, Any]:
    """Every feature's drift, the predictions' and the dataset's, from a window's counts."""
    features = {
        name: feature_drift(entry, counts[name], s)
        for name, entry in reference["columns"].items()
        if name in counts
    }
    prediction = None
    if PREDICTION in counts and reference.get("prediction"):
        prediction = feature_drift(reference["prediction"], counts[PREDICTION], s)
    return {
        "rows": int(counts.get(ROWS, {}).get("n", 0)),
        "prediction": prediction,
        **summary(features, s),
    }


def window_drift(
    store: Path,
    reference: dict[str, Any],
    digest: str,
    *,
    variant: str = "champion",
    since: float | None = None,
    last: int | None = None,
    settings: DriftSettings | None = None,
) -> dict[str, Any]:
    """Drift of a variant's traffic counted against ``reference`` (whose digest is
    ``digest``): since ``since`` (epoch seconds), or over the latest minutes holding ``last``
    rows, or everything recorded."""
    s = settings or DriftSettings()
    buckets = window_buckets(store, digest, variant, since=since, last=last)
    result = drift_of(total(buckets.values()), reference, s)
    return {
        "variant": variant,
        "reference": digest,
        "since": since,
        "window": {
            "first": min(buckets, default=None),
            "last": None if not buckets else max(buckets) + BUCKET_SECONDS,
        },
        **result,
    }


def timeline(
    buckets: dict[int, dict[str, dict[str, Any]]],
    reference: dict[str, Any],
    step_seconds: int,
    settings: DriftSettings | None = None,
) -> list[dict[str, Any]]:
    """Drift per consecutive window of ``step_seconds``: rows, drift share, dataset drift,
    and each feature's and the predictions' statistic."""
    s = settings or DriftSettings()
    steps: dict[int, list[dict[str, dict[str, Any]]]] = {}
    for bucket, counts in buckets.items():
        steps.setdefault(bucket - bucket % step_seconds, []).append(counts)
    out = []
    for start in sorted(steps):
        result = drift_of(total(steps[start]), reference, s)
        out.append(
            {
                "start": start,
                "rows": result["rows"],
                "drift_share": result["drift_share"],
                "dataset_drift": result["dataset_drift"],
                "drifted_features": result["drifted_features"],
                "statistics": {k: v.get("statistic") for k, v in result["features"].items()},
                "prediction": None
                if result["prediction"] is None
                else result["prediction"].get("statistic"),
            }
        )
    return out
