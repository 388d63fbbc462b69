"""The evidence a run leaves for its ML Solution report, gathered while the labels are at hand.

A model package keeps no training rows, so everything the report's Evaluation section shows is
computed here and saved with the package (``report/evaluation.json``): diagnostics of the
out-of-fold validation predictions and of the test split, feature importance, the neural
net's learning curves and the final model's measured latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.tasks import Task
from mlwright.evaluate.diagnostics import diagnose
from mlwright.evaluate.importance import permutation_importance, tree_shap
from mlwright.package.latency import single_row_p99_ms
from mlwright.package.model import Model
from mlwright.train.budget import Budget
from mlwright.train.search import Trial

EVIDENCE_FORMAT = 1
IMPORTANCE_SECONDS = 10.0  # the most permutation importance may take
SHAP_SECONDS = 5.0  # the most TreeSHAP may take beyond its pilot rows
LATENCY_CALLS = 100


@dataclass
class Held:
    """Labelled rows a model did not train on, and its predictions for them."""

    features: pd.DataFrame
    y: np.ndarray
    raw: np.ndarray
    model: Model  # the model that made ``raw`` (fit without these rows)
    what: str


def gather(
    model: Model,
    *,
    task: Task,
    metric: str,
    validation: tuple[np.ndarray, np.ndarray],
    test: Held | None,
    fallback: tuple[pd.DataFrame, np.ndarray],
    members: list[Trial],
    seed: int,
    budget: Budget,
    latency_ms: float | None = None,
) -> dict[str, Any]:
    """``validation``: (labels, out-of-fold predictions as the final model would give them);
    ``fallback``: training rows and labels for importance when there is no test split."""
    threshold = model.threshold
    y_val, oof = validation
    valid = ~np.isnan(oof if oof.ndim == 1 else oof[:, 0])
    evidence: dict[str, Any] = {
        "evidence_format": EVIDENCE_FORMAT,
        "validation": diagnose(
            task, y_val[valid], oof[valid], classes=model.classes, threshold=threshold, seed=seed
        ),
        "test": None
        if test is None
        else diagnose(
            task, test.y, test.raw, classes=model.classes, threshold=threshold, seed=seed
        ),
    }
    if test is not None:
        importance_model, frame, y, where = test.model, test.features, test.y, test.what
    else:
        importance_model, (frame, y), where = model, fallback, "the training rows (in-sample)"
    importance = permutation_importance(
        importance_model,
        frame,
        y,
        metric,
        seconds=budget.allowance(IMPORTANCE_SECONDS),
        seed=seed,
    )
    importance["on"] = where
    evidence["importance"] = importance
    shap = tree_shap(model, frame, seconds=budget.allowance(SHAP_SECONDS), seed=seed)
    if shap is not None:
        shap["on"] = where
    evidence["shap"] = shap
    evidence["learning_curves"] = learning_curves(members)
    if latency_ms is None and model.golden is not None:
        latency_ms = single_row_p99_ms(model, calls=LATENCY_CALLS)
    evidence["latency"] = {
        "p99_ms": latency_ms,
        "calls": LATENCY_CALLS,
        "path": "one golden record through the server's request path, one thread",
    }
    return evidence


def learning_curves(members: list[Trial]) -> dict[str, dict[str, list[list[float]]]]:
    """Per neural-net member: its first fold's per-epoch series (``train_loss``, ``val_...``)."""
    out: dict[str, dict[str, list[list[float]]]] = {}
    for trial in members:
        series: dict[str, list[list[float]]] = {}
        for key, value, epoch in trial.curves:
            if key.startswith("fold_0_"):
                series.setdefault(key.removeprefix("fold_0_"), []).append([epoch, value])
        if series:
            out[f"trial {trial.number} ({trial.family})"] = series
    return out
