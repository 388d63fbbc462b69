"""Drift of served traffic against a package's training reference (``reference.json``).

Served values are first counted into the reference's bins (:func:`count_numeric`,
:func:`count_categorical`) — counts can be added up over any window, so a large window never
re-reads raw rows — and each feature's drift is computed from the counts:

- numeric, up to :data:`DriftSettings.small_window` values: the one-sample Kolmogorov–Smirnov test
  against the reference's CDF (read from its 1,000-quantile sketch: exact at the 1,001 sketch
  points, linear between, so D is within about 0.001 of the exact statistic), drift at
  p < 0.05; above: the Wasserstein distance normed by the reference's standard deviation, drift
  at ≥ 0.1;
- categorical, small windows: the chi-square goodness-of-fit test against the reference's level
  frequencies (unseen levels pooled into one cell), drift at p < 0.05; larger windows: the
  Jensen–Shannon distance (natural log), drift at ≥ 0.1;
- PSI as well for every feature (reference deciles, or levels), since many teams read it;
- data quality: the missing-value rate (against the reference's), the unknown-category rate and
  the out-of-range rate (outside the training minimum and maximum).

The defaults are Evidently's documented ones (statistical tests for windows of up to 1,000
rows, distances with threshold 0.1 above; the dataset drifts when at least half of its features
do); every one is a field of :class:`DriftSettings`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlwright.monitor.settings import DriftSettings as DriftSettings  # re-exported
from mlwright.package.reference import OTHER, QUANTILES, numeric_values

UNSEEN = "(unseen)"


# --- counting into the reference's bins -----------------------------------------------------------


_CDFS: dict[int, tuple[dict[str, Any], np.ndarray, np.ndarray]] = {}


def sketch_cdf(entry: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The sketch's distinct values and the reference CDF at each (P(X ≤ edge)); cached per
    entry, since the writer counts every flush against the same reference."""
    cached = _CDFS.get(id(entry))
    if cached is not None and cached[0] is entry:
        return cached[1], cached[2]
    q = np.asarray(entry["quantiles"], dtype="float64")
    edges = np.unique(q)
    cdf = np.clip((np.searchsorted(q, edges, side="right") - 1) / QUANTILES, 0.0, 1.0)
    if len(_CDFS) >= 4096:
        _CDFS.clear()
    _CDFS[id(entry)] = (entry, edges, cdf)  # holding the entry keeps its id unique
    return edges, cdf


def count_numeric(entry: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
    """Counts of ``values`` in the reference's bins: bin k holds edges[k-1] < x ≤ edges[k]
    (bin 0: x ≤ edges[0]; the last: above every edge), plus missing values and the summed
    distance of out-of-range values beyond the training minimum / maximum."""
    edges, _ = sketch_cdf(entry)
    present = values[~np.isnan(values)]
    index = np.searchsorted(edges, present, side="left")
    below = present[present < edges[0]] if len(edges) else present[:0]
    above = present[present > edges[-1]] if len(edges) else present[:0]
    return {
        "counts": np.bincount(index, minlength=len(edges) + 1),
        "missing": int(len(values) - len(present)),
        "below": len(below),
        "above": len(above),
        "beyond": float((edges[0] - below).sum() + (above - edges[-1]).sum())
        if len(edges)
        else 0.0,
    }


def count_categorical(entry: dict[str, Any], values: pd.Series | Sequence[Any]) -> dict[str, Any]:
    """Counts of ``values`` per reference level, ``(unseen)`` for new ones, and missing."""
    known = entry["frequencies"]
    pool = OTHER if OTHER in known else UNSEEN
    counts: Counter[str] = Counter()
    missing = unseen = 0
    for value, k in Counter(values).items():  # counted in C; then once per distinct value
        if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
            missing += k
            continue
        level = value if isinstance(value, str) else str(value)  # as pandas' astype(str)
        if level in known:
            counts[level] += k
        else:
            counts[pool] += k
            unseen += k
    return {"counts": dict(counts), "missing": missing, "unseen": unseen}


# --- statistics from counts -----------------------------------------------------------------------


def numeric_drift(
    entry: dict[str, Any], counted: dict[str, Any], s: DriftSettings
) -> dict[str, Any]:
    from scipy import stats

    edges, ref_cdf = sketch_cdf(entry)
    counts = np.asarray(counted["counts"], dtype="float64")
    n = int(counts.sum())
    total = n + counted["missing"]
    out: dict[str, Any] = {
        "kind": "numeric",
        "n": n,
        "missing_rate": counted["missing"] / total if total else None,
        "reference_missing_rate": entry.get("missing_rate"),
        "out_of_range_rate": (counted["below"] + counted["above"]) / n if n else None,
    }
    if not n or not len(edges):
        return {**out, "method": None, "drifted": False}
    cur_cdf = np.cumsum(counts)[:-1] / n  # P(current ≤ edge k)
    ks = float(np.max(np.abs(cur_cdf - ref_cdf)))
    widths = np.diff(edges)
    area = float(np.sum(np.abs(cur_cdf[:-1] - ref_cdf[:-1]) * widths)) + counted["beyond"] / n
    std = entry.get("std") or 0.0
    normed = area / std if std > 0 else (0.0 if area == 0 else float("inf"))
    out["psi"] = _psi(_decile_masses(ref_cdf, edges, entry), _decile_masses(cur_cdf, edges, entry))
    if n <= s.small_window:
        p = float(stats.kstwo.sf(ks, n))
        return {**out, "method": "ks", "statistic": ks, "p_value": p, "drifted": p < s.p_value}
    return {
        **out,
        "method": "wasserstein_normed",
        "statistic": normed,
        "ks_statistic": ks,
        "drifted": normed >= s.wasserstein,
    }


def _decile_masses(cdf: np.ndarray, edges: np.ndarray, entry: dict[str, Any]) -> np.ndarray:
    q = np.asarray(entry["quantiles"], dtype="float64")
    cut = np.unique(q[np.arange(100, QUANTILES, 100)])
    at = np.searchsorted(edges, cut)  # each cut is an edge
    cumulative = np.r_[0.0, cdf[at], 1.0]
    return np.diff(cumulative)


def categorical_drift(
    entry: dict[str, Any], counted: dict[str, Any], s: DriftSettings
) -> dict[str, Any]:
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    levels = sorted(set(entry["frequencies"]) | set(counted["counts"]))
    ref = np.array([entry["frequencies"].get(k, 0.0) for k in levels])
    cur = np.array([counted["counts"].get(k, 0) for k in levels], dtype="float64")
    n = int(cur.sum())
    total = n + counted["missing"]
    out: dict[str, Any] = {
        "kind": "categorical",
        "n": n,
        "missing_rate": counted["missing"] / total if total else None,
        "reference_missing_rate": entry.get("missing_rate"),
        "unknown_rate": counted["unseen"] / n if n else None,
    }
    if not n:
        return {**out, "method": None, "drifted": False}
    ref_share = (ref + 1e-6) / (ref + 1e-6).sum()  # an unseen level is not impossible
    out["psi"] = _psi(ref_share, cur / n)
    if n <= s.small_window:
        chi2, p = stats.chisquare(cur, ref_share * n)
        return {
            **out,
            "method": "chi_square",
            "statistic": float(chi2),
            "p_value": float(p),
            "drifted": bool(p < s.p_value),
        }
    distance = float(jensenshannon(ref_share, cur / n))
    return {
        **out,
        "method": "jensen_shannon",
        "statistic": distance,
        "drifted": distance >= s.jensen_shannon,
    }


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    r = np.clip(reference, 1e-4, None)
    c = np.clip(current, 1e-4, None)
    return float(np.sum((c - r) * np.log(c / r)))


def feature_drift(
    entry: dict[str, Any], counted: dict[str, Any], s: DriftSettings
) -> dict[str, Any]:
    """One column's drift from its counts; a column that stopped arriving (its missing rate up
    by more than half) counts as drifted, whatever the test on the few values left says."""
    if entry["kind"] == "numeric":
        result = numeric_drift(entry, counted, s)
    else:
        result = categorical_drift(entry, counted, s)
    rate, before = result["missing_rate"], entry.get("missing_rate") or 0.0
    if rate is not None and rate - before > 0.5:
        result["drifted"] = True
        result["method"] = result["method"] or "missing_rate"
    return result


def summary(features: dict[str, Any], s: DriftSettings) -> dict[str, Any]:
    drifted = [k for k, v in features.items() if v["drifted"]]
    share = len(drifted) / len(features) if features else 0.0
    return {
        "features": features,
        "drifted_features": drifted,
        "drift_share": share,
        "dataset_drift": bool(features) and share >= s.dataset_share,
        "settings": s.__dict__,
    }


def frame_drift(
    reference: dict[str, Any], frame: pd.DataFrame, settings: DriftSettings | None = None
) -> dict[str, Any]:
    """Drift of every reference column present in ``frame`` (served feature values), and of
    the dataset as a whole."""
    s = settings or DriftSettings()
    features: dict[str, Any] = {}
    for name, entry in reference["columns"].items():
        if name not in frame:
            continue
        if entry["kind"] == "numeric":
            counted = count_numeric(entry, numeric_values(frame[name], entry["schema_kind"]))
        else:
            counted = count_categorical(entry, frame[name])
        features[name] = feature_drift(entry, counted, s)
    return {"rows": len(frame), **summary(features, s)}
