"""How a fitted model's raw outputs are combined and calibrated at scoring time.

- :class:`Blend` and :func:`combine`: a weighted blend (a convex combination of the members'
  outputs) or one stacking layer (a logistic regression on the members' log-probabilities, a
  non-negative linear regression on their values for regression).
- :func:`calibrate` applies a temperature to classifier probabilities (Guo et al., ICML 2017):
  one parameter that keeps every row's ranking of classes, so AUC and accuracy are unchanged.

Learning a blend, a stack or a temperature is the trainer's (:mod:`mlwright.train.ensemble`,
:mod:`mlwright.train.postprocess`); applying one is all that scoring a package needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlwright.data.tasks import Task

EPS = 1e-7  # probabilities are clipped to [EPS, 1] (or 1 - EPS) before their logarithm


@dataclass
class Blend:
    """How members' raw outputs combine: ``weighted`` (a convex combination) or ``stacked``."""

    method: str  # weighted | stacked
    weights: list[float]  # per member (weighted)
    coef: list[list[float]] | None = None  # stacked: (outputs, inputs)
    intercept: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "weights": self.weights}
        if self.method == "stacked":
            out.update(coef=self.coef, intercept=self.intercept)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Blend:
        return cls(raw["method"], list(raw["weights"]), raw.get("coef"), raw.get("intercept"))


def combine(raws: list[np.ndarray], blend: Blend, task: Task) -> np.ndarray:
    """The blend's output from its members' raw outputs (probabilities (n, k), or values)."""
    if blend.method == "weighted":
        out = sum(w * r for w, r in zip(blend.weights, raws, strict=True) if w)
        return np.asarray(out, dtype="float64")
    assert blend.coef is not None and blend.intercept is not None
    z = stack_inputs(raws, task) @ np.asarray(blend.coef).T + np.asarray(blend.intercept)
    if task == "regression":
        return np.asarray(z[:, 0], dtype="float64")
    if z.shape[1] == 1:  # binary: one logit
        p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
        return np.column_stack([1.0 - p1, p1])
    return softmax(z)


def calibrate(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature-scaled probabilities: softmax(log p / T)."""
    return softmax(np.log(np.clip(proba, EPS, 1.0)) / temperature)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype="float64")


def stack_inputs(raws: list[np.ndarray], task: Task) -> np.ndarray:
    """What a stacking layer reads: the members' values (regression), each member's logit
    (binary) or log-probabilities (multiclass), side by side."""
    if task == "regression":
        return np.column_stack(raws)
    if raws[0].shape[1] == 2:  # binary: each member's logit
        cols = [
            np.log(np.clip(r[:, 1], EPS, 1 - EPS) / np.clip(r[:, 0], EPS, 1 - EPS)) for r in raws
        ]
        return np.column_stack(cols)
    return np.column_stack([np.log(np.clip(r, EPS, 1.0)) for r in raws])


__all__ = ["EPS", "Blend", "calibrate", "combine", "softmax", "stack_inputs"]
