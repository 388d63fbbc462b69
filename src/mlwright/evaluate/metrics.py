"""Metric registry: every metric named in ``mlwright.data.tasks.METRICS``, computed one way.

Classification metrics take the true class indices (0..k-1) and the predicted probability
matrix (n, k); labels come from the probabilities (argmax, or the binary threshold). Regression
metrics take true and predicted values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlwright.data.tasks import METRICS, Task, metrics_for

Scorer = Callable[[np.ndarray, np.ndarray, float], float]


def labels_from_proba(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Class indices: argmax, or for two classes ``proba[:, 1] >= threshold``."""
    if proba.shape[1] == 2 and threshold is not None:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return np.asarray(proba.argmax(axis=1), dtype=np.int64)


def binary_auc(y: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of scores ``positive`` for labels ``y`` in {0, 1}: the Mann-Whitney statistic
    from average ranks (ties count a half), as scikit-learn's ``roc_auc_score`` gives it, without
    its input checks (the search and the ensemble selection score thousands of times)."""
    from scipy.stats import rankdata

    if not np.isfinite(positive).all():
        raise ValueError("the predictions hold NaN or infinite values: ROC AUC is not defined")
    pos = np.asarray(y) == 1
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("Only one class present in y_true. ROC AUC score is not defined.")
    ranks = rankdata(positive)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _roc_auc(y: np.ndarray, p: np.ndarray, _: float) -> float:
    from sklearn.metrics import roc_auc_score

    if p.shape[1] == 2:
        return binary_auc(y, p[:, 1])
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    # classes absent from y are dropped; the rest renormalised (one-vs-rest, macro)
    probs = p[:, present] / np.clip(p[:, present].sum(axis=1, keepdims=True), 1e-15, None)
    remap = np.searchsorted(present, y)
    if len(present) == 2:
        return binary_auc(remap, probs[:, 1])
    return float(roc_auc_score(remap, probs, multi_class="ovr", average="macro"))


def _log_loss(y: np.ndarray, p: np.ndarray, _: float) -> float:
    eps = 1e-15
    picked = np.clip(p[np.arange(len(y)), y], eps, 1.0)
    return float(-np.mean(np.log(picked)))


def _accuracy(y: np.ndarray, p: np.ndarray, t: float) -> float:
    return float(np.mean(labels_from_proba(p, t) == y))


def _balanced_accuracy(y: np.ndarray, p: np.ndarray, t: float) -> float:
    pred = labels_from_proba(p, t)
    recalls = [np.mean(pred[y == c] == c) for c in np.unique(y)]
    return float(np.mean(recalls))


def _f1(y: np.ndarray, p: np.ndarray, t: float) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, labels_from_proba(p, t), zero_division=0.0))


def _f1_macro(y: np.ndarray, p: np.ndarray, t: float) -> float:
    from sklearn.metrics import f1_score

    return float(
        f1_score(
            y, labels_from_proba(p, t), average="macro", labels=np.unique(y), zero_division=0.0
        )
    )


def _average_precision(y: np.ndarray, p: np.ndarray, _: float) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p[:, 1]))


def _rmse(y: np.ndarray, p: np.ndarray, _: float) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


def _mae(y: np.ndarray, p: np.ndarray, _: float) -> float:
    return float(np.mean(np.abs(y - p)))


def _r2(y: np.ndarray, p: np.ndarray, _: float) -> float:
    sst = float(np.sum((y - y.mean()) ** 2))
    return float("nan") if sst == 0 else 1.0 - float(np.sum((y - p) ** 2)) / sst


def _mape(y: np.ndarray, p: np.ndarray, _: float) -> float:
    return float(np.mean(np.abs(y - p) / np.clip(np.abs(y), 1e-12, None)))


SCORERS: dict[str, Scorer] = {
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
    "f1": _f1,
    "f1_macro": _f1_macro,
    "average_precision": _average_precision,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
    "mape": _mape,
}
assert set(SCORERS) == set(METRICS), "every declared metric needs a scorer"

THRESHOLD_METRICS = frozenset({"accuracy", "balanced_accuracy", "f1", "f1_macro"})


def score(metric: str, y: np.ndarray, pred: np.ndarray, threshold: float = 0.5) -> float:
    return SCORERS[metric](y, pred, threshold)


def signed(metric: str, value: float) -> float:
    """The score oriented so that greater is better."""
    return value if METRICS[metric].greater_is_better else -value


def all_scores(
    task: Task, y: np.ndarray, pred: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    return {name: score(name, y, pred, threshold) for name in metrics_for(task)}


def best_threshold(y: np.ndarray, positive_proba: np.ndarray, metric: str) -> tuple[float, float]:
    """The probability cut-off that maximises ``metric`` on out-of-fold predictions."""
    candidates = np.unique(np.round(positive_proba, 4))
    if len(candidates) > 512:
        candidates = np.quantile(positive_proba, np.linspace(0.002, 0.998, 512))
    proba = np.column_stack([1 - positive_proba, positive_proba])
    best_t, best_v = 0.5, score(metric, y, proba, 0.5)
    for t in candidates:
        v = score(metric, y, proba, float(t))
        if v > best_v + 1e-12:
            best_t, best_v = float(t), v
    return best_t, best_v
