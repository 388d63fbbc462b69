"""The monitoring reference a package carries (``reference.json``): what the training data and
the model's predictions looked like, compact enough to ship and with no raw rows.

- numeric, integer and boolean features: a 1,000-quantile sketch (the values at levels 0,
  0.001, …, 1 of the non-missing training values), their mean and standard deviation, and the
  missing rate;
- categorical (and text) features: the frequency of each level (the :data:`MAX_LEVELS` most
  frequent; the rest pooled as ``(other)``) and the missing rate;
- datetimes: the sketch of their epoch seconds;
- predictions: the sketch of the predicted value (regression) or of the positive class's
  probability (binary), and the frequency of each predicted label (classification).

The sketch's CDF is exact at its 1,001 points and linear between them, so a CDF read from it is
within 0.001 of the training data's empirical CDF: what :mod:`mlwright.serve.drift` compares
served traffic against.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.schema import TableSchema

REFERENCE_FORMAT = 1
QUANTILES = 1000
MAX_LEVELS = 100
OTHER = "(other)"
NUMERIC_KINDS = ("numeric", "integer", "boolean", "datetime")


def numeric_values(values: pd.Series, kind: str) -> np.ndarray:
    """A column as floats (datetimes as epoch seconds), missing values as NaN."""
    if kind == "datetime":
        # mlwright: ignore[MLW107] values that do not parse count as missing, on purpose
        stamps = pd.to_datetime(values, errors="coerce", utc=True)
        seconds = (stamps - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
        return np.asarray(seconds, dtype="float64")
    # mlwright: ignore[MLW107] as above: the reference's missing rate counts them
    return np.asarray(pd.to_numeric(values, errors="coerce"), dtype="float64")


def sketch(values: np.ndarray) -> dict[str, Any]:
    """The quantile sketch of ``values`` (NaN ignored)."""
    present = values[~np.isnan(values)]
    if not len(present):
        return {"quantiles": [], "mean": None, "std": None, "n": 0}
    levels = np.linspace(0.0, 1.0, QUANTILES + 1)
    return {
        "quantiles": [float(v) for v in np.quantile(present, levels)],
        "mean": float(present.mean()),
        "std": float(present.std()),
        "n": len(present),
    }


def frequencies(values: pd.Series) -> dict[str, Any]:
    present = values.dropna().astype(str)
    counts = present.value_counts()
    top = counts.iloc[:MAX_LEVELS]
    freq = {str(k): float(v) / max(len(present), 1) for k, v in top.items()}
    rest = float(counts.iloc[MAX_LEVELS:].sum()) / max(len(present), 1)
    if rest > 0:
        freq[OTHER] = rest
    return {"frequencies": freq, "n": len(present)}


def build_reference(
    features: pd.DataFrame,
    schema: TableSchema,
    task: str,
    predictions: np.ndarray,
    classes: tuple[Any, ...] | None,
) -> dict[str, Any]:
    """The reference of the training ``features`` and of ``predictions`` (the model's
    out-of-fold outputs: values, or probabilities per class)."""
    columns: dict[str, Any] = {}
    for col in schema.features:
        if col.name not in features:
            continue
        values = features[col.name]
        missing = float(values.isna().mean()) if len(values) else 0.0
        if col.kind in NUMERIC_KINDS:
            entry = {"kind": "numeric", **sketch(numeric_values(values, col.kind))}
        else:
            entry = {"kind": "categorical", **frequencies(values)}
        columns[col.name] = {**entry, "missing_rate": missing, "schema_kind": col.kind}
    pred = np.asarray(predictions, dtype="float64")
    if task == "regression":
        prediction: dict[str, Any] = {"kind": "numeric", **sketch(pred)}
    else:
        assert classes is not None
        valid = ~np.isnan(pred[:, 0])
        labels = pd.Series(
            np.array([str(c) for c in classes], dtype=object)[pred[valid].argmax(axis=1)]
        )
        prediction = {"kind": "categorical", **frequencies(labels)}
        if len(classes) == 2:
            prediction["positive_probability"] = sketch(pred[valid, 1])
    return {
        "reference_format": REFERENCE_FORMAT,
        "rows": len(features),
        "columns": columns,
        "prediction": prediction,
    }
