"""Feature importance of a fitted model, in the data's own columns.

Permutation importance (Breiman 2001; scikit-learn's ``permutation_importance`` does the same):
each column's values are shuffled among the rows and the model's score drops by as much as the
model relies on that column. It works for every family and ensemble, costs one prediction per
column and repeat, and is bounded here by a time allowance: rows and repeats shrink to fit it,
and columns it could not reach are reported as such. SHAP values (TreeSHAP, Lundberg et al.
2020) come from the booster's own ``pred_contrib`` for LightGBM and XGBoost and are summed back
from encoded features to the data's columns. TreeSHAP costs trees × leaves × depth² per row, so
a large booster can take seconds per hundred rows: a pilot of rows is timed first and the rest
of the sample shrinks to the time allowance.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.tasks import METRICS
from mlwright.evaluate.metrics import score

MAX_ROWS = 5_000
MIN_ROWS = 200
MAX_REPEATS = 5
SHAP_ROWS = 2_000
SHAP_PILOT_ROWS = 100


def permutation_importance(
    model: Any,
    features: pd.DataFrame,
    y: np.ndarray,
    metric: str,
    *,
    seconds: float,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean and standard deviation of the drop in ``metric`` (oriented so that positive means
    the column helps) when each feature column is shuffled. ``model`` has ``raw(frame)``,
    ``schema`` and ``threshold``."""
    rng = np.random.default_rng([seed, 47])
    columns = [c.name for c in model.schema.features if c.name in features.columns]
    threshold = 0.5 if getattr(model, "threshold", None) is None else model.threshold
    sign = 1.0 if METRICS[metric].greater_is_better else -1.0
    rows = np.arange(len(features))
    if len(rows) > MAX_ROWS:
        rows = np.sort(rng.choice(rows, MAX_ROWS, replace=False))
    started = time.perf_counter()
    base = score(metric, y[rows], model.raw(features.iloc[rows]), threshold)
    per_call = max(time.perf_counter() - started, 1e-4)
    # shrink rows, then repeats, until the columns fit the allowance
    repeats = MAX_REPEATS
    calls = len(columns) * repeats
    if calls * per_call > seconds and len(rows) > MIN_ROWS:
        keep = max(MIN_ROWS, int(len(rows) * seconds / (calls * per_call)))
        rows = np.sort(rng.choice(rows, min(keep, len(rows)), replace=False))
        per_call *= len(rows) / max(1, min(len(features), MAX_ROWS))
        base = score(metric, y[rows], model.raw(features.iloc[rows]), threshold)
    repeats = int(np.clip(seconds / max(per_call * max(len(columns), 1), 1e-9), 1, MAX_REPEATS))
    frame = features.iloc[rows].reset_index(drop=True)
    target = y[rows]
    out: list[dict[str, Any]] = []
    skipped: list[str] = []
    deadline = time.perf_counter() + seconds
    for name in columns:
        if time.perf_counter() > deadline:
            skipped.append(name)
            continue
        drops = []
        original = frame[name]
        for _ in range(repeats):
            shuffled = frame.copy(deep=False)
            # in the column's own dtype: a nullable column's gaps stay missing values
            shuffled[name] = original.iloc[rng.permutation(len(frame))].reset_index(drop=True)
            drops.append(sign * (base - score(metric, target, model.raw(shuffled), threshold)))
        out.append({"column": name, "mean": float(np.mean(drops)), "std": float(np.std(drops))})
    out.sort(key=lambda d: -d["mean"])
    return {
        "method": "permutation",
        "metric": metric,
        "rows": len(rows),
        "repeats": repeats,
        "baseline": float(base),
        "columns": out,
        "not_computed": skipped,
    }


def tree_shap(
    model: Any, features: pd.DataFrame, *, seconds: float | None = None, seed: int = 0
) -> dict[str, Any] | None:
    """Mean |SHAP| per data column for a LightGBM, XGBoost or CatBoost model; None for other
    families.
    With ``seconds``, the rows beyond a timed pilot are as many as fit that allowance."""
    family = model.family
    contributions = getattr(family, "contributions", None)
    if contributions is None:
        return None
    rng = np.random.default_rng([seed, 53])
    order = rng.permutation(len(features))[:SHAP_ROWS]

    def mean_abs(rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
        design = model.encoder.transform(features.iloc[np.sort(rows)], family.view)
        values = contributions(design)  # (rows, outputs, design columns)
        return np.abs(values).sum(axis=(0, 1)) / values.shape[1], design.names

    started = time.perf_counter()
    pilot = order[:SHAP_PILOT_ROWS]
    total, names = mean_abs(pilot)
    rest = order[len(pilot) :]
    if seconds is not None and len(rest):
        per_row = (time.perf_counter() - started) / max(len(pilot), 1)
        rest = rest[: max(0, int((seconds - per_row * len(pilot)) / max(per_row, 1e-9)))]
    if len(rest):
        total = total + mean_abs(rest)[0]
    rows = len(pilot) + len(rest)
    sources = source_columns(names, [c.name for c in model.schema.features])
    totals: dict[str, float] = {}
    for name, value in zip(sources, total / max(rows, 1), strict=True):
        totals[name] = totals.get(name, 0.0) + float(value)
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    return {
        "method": "tree_shap",
        "rows": rows,
        "columns": [{"column": k, "mean_abs": v} for k, v in ranked],
    }


def source_columns(encoded: list[str], columns: list[str]) -> list[str]:
    """The data column each encoded feature comes from (``age__missing`` → ``age``,
    ``city=Oslo`` → ``city``, ``note~word`` → ``note``)."""
    by_length = sorted(columns, key=len, reverse=True)
    out = []
    for name in encoded:
        match = next(
            (
                c
                for c in by_length
                if name == c or any(name.startswith(c + sep) for sep in ("=", "__", "~"))
            ),
            name,
        )
        out.append(match)
    return out
