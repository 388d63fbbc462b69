"""What a reviewer needs to judge a model's predictions, computed once where the labels are.

:func:`diagnose` turns labels and predictions (out-of-fold validation predictions, or the test
split's) into a JSON-ready summary: every metric of the task with a bootstrap confidence
interval, and for classification the per-class precision / recall / F1, the confusion matrix, ROC
and precision-recall curves and a calibration curve; for regression a sample of residuals and
their quantiles; and for every task the naive baseline (:func:`baseline_metrics`), each metric
of the best constant answer for the same rows. Curves are thinned to at most
:data:`CURVE_POINTS` points so a model package stays small; no feature values are kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwright.data.tasks import METRICS, Task, metrics_for
from mlwright.evaluate.metrics import labels_from_proba, score

BOOTSTRAP_SAMPLES = 200
BOOTSTRAP_ROWS = 20_000  # resamples draw from at most this many rows (a seeded sample)
CURVE_POINTS = 200
CALIBRATION_BINS = 10
RESIDUAL_POINTS = 2_000
CONFIDENCE = 0.95


def diagnose(
    task: Task,
    y: np.ndarray,
    pred: np.ndarray,
    *,
    classes: tuple[Any, ...] | None = None,
    threshold: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The summary of ``pred`` against ``y`` (class indices, or values for regression)."""
    y = np.asarray(y)
    pred = np.asarray(pred, dtype="float64")
    t = 0.5 if threshold is None else float(threshold)
    out: dict[str, Any] = {
        "rows": len(y),
        "metrics": bootstrap_metrics(task, y, pred, t, seed),
        "confidence": CONFIDENCE,
        "bootstrap_samples": BOOTSTRAP_SAMPLES,
        "baseline": baseline_metrics(task, y, 0 if classes is None else len(classes)),
    }
    if task == "regression":
        out["residuals"] = residual_summary(y, pred, seed)
        return out
    assert classes is not None
    names = [str(c) for c in classes]
    labels = labels_from_proba(pred, threshold)
    out["classes"] = names
    out["threshold"] = threshold
    out["confusion"] = confusion(y, labels, len(names)).tolist()
    out["per_class"] = per_class(y, labels, names)
    out["curves"] = class_curves(y, pred, names)
    out["calibration"] = calibration_curve(y, pred)
    return out


def baseline_metrics(task: Task, y: np.ndarray, n_classes: int = 0) -> dict[str, float | None]:
    """Each metric of the naive baseline on the rows of ``y``: the same constant answer for every
    row, the best one for these rows — their mean (regression), or their class shares as
    probabilities, which label every row with the most common class (classification). A model
    has learned something when it beats this."""
    y = np.asarray(y)
    if task == "regression":
        constant = np.full(len(y), float(np.mean(y)) if len(y) else 0.0)
    else:
        shares = np.bincount(y.astype(np.int64), minlength=n_classes) / max(len(y), 1)
        constant = np.tile(shares, (len(y), 1))
    return {name: _finite(score(name, y, constant, 0.5)) for name in metrics_for(task)}


def bootstrap_metrics(
    task: Task, y: np.ndarray, pred: np.ndarray, threshold: float, seed: int
) -> dict[str, dict[str, float | None]]:
    """Each metric's value on all rows and a percentile bootstrap interval."""
    rng = np.random.default_rng([seed, 41])
    idx = np.arange(len(y))
    if len(idx) > BOOTSTRAP_ROWS:
        idx = np.sort(rng.choice(idx, BOOTSTRAP_ROWS, replace=False))
    out: dict[str, dict[str, float | None]] = {}
    draws = [rng.choice(idx, len(idx), replace=True) for _ in range(BOOTSTRAP_SAMPLES)]
    alpha = (1 - CONFIDENCE) / 2
    for name in metrics_for(task):
        value = _finite(score(name, y, pred, threshold))
        fast = FAST_SCORERS.get(name)
        samples = [
            fast(y[d], pred[d], threshold) if fast else score(name, y[d], pred[d], threshold)
            for d in draws
        ]
        good = np.array([s for s in samples if np.isfinite(s)])
        low = high = None
        if len(good) >= BOOTSTRAP_SAMPLES // 2:
            low, high = (float(v) for v in np.quantile(good, [alpha, 1 - alpha]))
        out[name] = {
            "value": value,
            "low": low,
            "high": high,
            "greater_is_better": METRICS[name].greater_is_better,
        }
    return out


# --- the bootstrap's scorers: the same values as scikit-learn's, without its per-call checks ----


def _auc_binary(hit: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count half)."""
    from scipy.stats import rankdata

    n1 = int(hit.sum())
    n0 = len(hit) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[hit].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _fast_roc_auc(y: np.ndarray, p: np.ndarray, _: float) -> float:
    if p.shape[1] == 2:
        return _auc_binary(y == 1, p[:, 1])
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    probs = p[:, present] / np.clip(p[:, present].sum(axis=1, keepdims=True), 1e-15, None)
    if len(present) == 2:
        return _auc_binary(y == present[1], probs[:, 1])
    return float(np.mean([_auc_binary(y == c, probs[:, j]) for j, c in enumerate(present)]))


def _fast_average_precision(y: np.ndarray, p: np.ndarray, _: float) -> float:
    """Σ (recall_k − recall_{k−1}) · precision_k over distinct thresholds, as scikit-learn."""
    order = np.argsort(-p[:, 1], kind="mergesort")
    scores, hit = p[order, 1], (y[order] == 1)
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tps = np.cumsum(hit)[last]
    if tps[-1] == 0:
        return float("nan")
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _f1_of(y: np.ndarray, labels: np.ndarray, c: int) -> float:
    tp = np.sum((labels == c) & (y == c))
    wrong = np.sum((labels == c) != (y == c))
    return float(2 * tp / (2 * tp + wrong)) if tp + wrong else 0.0


def _fast_f1(y: np.ndarray, p: np.ndarray, t: float) -> float:
    return _f1_of(y, labels_from_proba(p, t), 1)


def _fast_f1_macro(y: np.ndarray, p: np.ndarray, t: float) -> float:
    labels = labels_from_proba(p, t)
    return float(np.mean([_f1_of(y, labels, c) for c in np.unique(y)]))


FAST_SCORERS = {
    "roc_auc": _fast_roc_auc,
    "average_precision": _fast_average_precision,
    "f1": _fast_f1,
    "f1_macro": _fast_f1_macro,
}


def confusion(y: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (y.astype(np.int64), labels.astype(np.int64)), 1)
    return matrix


def per_class(y: np.ndarray, labels: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    out = []
    for j, name in enumerate(names):
        tp = int(np.sum((labels == j) & (y == j)))
        predicted = int(np.sum(labels == j))
        support = int(np.sum(y == j))
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision is not None and recall is not None and precision + recall > 0
            else (0.0 if precision is not None and recall is not None else None)
        )
        out.append(
            {"class": name, "precision": precision, "recall": recall, "f1": f1, "support": support}
        )
    return out


def class_curves(y: np.ndarray, proba: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """ROC and precision-recall curves: the positive class for binary tasks, one-vs-rest per
    class otherwise (classes absent from ``y`` or always present have none)."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    targets = [1] if len(names) == 2 else list(range(len(names)))
    out = []
    for j in targets:
        hit = (y == j).astype(np.int64)
        if hit.min() == hit.max():
            continue
        fpr, tpr, _ = roc_curve(hit, proba[:, j])
        precision, recall, _ = precision_recall_curve(hit, proba[:, j])
        out.append(
            {
                "class": names[j],
                "roc": {"fpr": _thin(fpr), "tpr": _thin(tpr), "auc": float(auc(fpr, tpr))},
                "pr": {
                    "recall": _thin(recall),
                    "precision": _thin(precision),
                    "base_rate": float(hit.mean()),
                },
            }
        )
    return out


def calibration_curve(y: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Reliability of the top-class probability (binary: the positive class), in equal-count
    bins: mean predicted probability against the observed frequency, with each bin's count."""
    if proba.shape[1] == 2:
        p, hit, what = proba[:, 1], (y == 1), "positive class"
    else:
        top = proba.argmax(axis=1)
        p, hit, what = proba[np.arange(len(y)), top], (top == y), "predicted class"
    order = np.argsort(p, kind="stable")
    bins = [b for b in np.array_split(order, min(CALIBRATION_BINS, len(order))) if len(b)]
    return {
        "of": what,
        "predicted": [float(p[b].mean()) for b in bins],
        "observed": [float(hit[b].mean()) for b in bins],
        "count": [len(b) for b in bins],
        "brier": float(np.mean((p - hit) ** 2)),
    }


def residual_summary(y: np.ndarray, pred: np.ndarray, seed: int) -> dict[str, Any]:
    residual = y - pred
    rng = np.random.default_rng([seed, 43])
    idx = np.arange(len(y))
    if len(idx) > RESIDUAL_POINTS:
        idx = np.sort(rng.choice(idx, RESIDUAL_POINTS, replace=False))
    levels = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    return {
        "predicted": [float(v) for v in pred[idx]],
        "actual": [float(v) for v in y[idx]],
        "quantiles": {
            str(q): float(v) for q, v in zip(levels, np.quantile(residual, levels), strict=True)
        },
        "mean": float(residual.mean()),
        "std": float(residual.std()),
    }


def _thin(values: np.ndarray) -> list[float]:
    if len(values) > CURVE_POINTS:
        values = values[np.unique(np.linspace(0, len(values) - 1, CURVE_POINTS).astype(int))]
    return [round(float(v), 6) for v in values]


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
