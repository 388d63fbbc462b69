"""Guardrails of an experiment: is a challenger broken, slow, or predicting something else?

Each worker keeps a window of its recent traffic per variant: requests, failures, predict
latencies and predictions. A challenger is judged once it has answered
``guardrails.min_requests`` requests in this worker:

- **error rate**: the share of its requests on which it raised (the champion answered them);
- **p99 latency**: of its predict calls, in milliseconds (when ``max_p99_ms`` is set);
- **prediction shift**: the population stability index (PSI) of its predictions against the
  champion's over the same period — the positive class's probability (binary), the predicted
  label (multiclass) or the predicted value (regression), in 10 bins cut at the champion's
  deciles, each share smoothed by half a count — once each has :data:`SHIFT_MIN` predictions
  (on small windows PSI is mostly noise: about (bins − 1)(1/n₁ + 1/n₂) with no shift at all).
  0.1–0.25 is the usual "moderate" shift band, above 0.25 "major" (the default limit).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlwright.experiment.config import Guardrails

WINDOW = 5_000  # predictions and latencies kept per variant
SHIFT_MIN = 500  # predictions each variant needs before the shift is judged
PSI_BINS = 10


@dataclass
class VariantWindow:
    requests: int = 0
    errors: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    scores: deque[Any] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def observe(self, ms: float, scores: list[Any]) -> None:
        self.requests += 1
        self.latencies_ms.append(ms)
        self.scores.extend(scores[:100])  # a large batch does not flush the window alone

    def p99_ms(self) -> float | None:
        return float(np.percentile(list(self.latencies_ms), 99)) if self.latencies_ms else None


def psi(reference: list[Any], current: list[Any]) -> float | None:
    """Population stability index of ``current`` against ``reference`` (None if either is
    empty): numbers in bins cut at the reference's deciles, anything else by value."""
    if not reference or not current:
        return None
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in reference + current):
        ref = np.asarray(reference, dtype=float)
        cur = np.asarray(current, dtype=float)
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
        p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
        q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    else:
        levels = sorted({str(v) for v in reference + current})
        index = {v: i for i, v in enumerate(levels)}
        p = np.bincount([index[str(v)] for v in reference], minlength=len(levels))
        q = np.bincount([index[str(v)] for v in current], minlength=len(levels))
    # add-half smoothing: an empty bin in a small window is not an infinite shift
    p_share = (p + 0.5) / (p.sum() + 0.5 * len(p))
    q_share = (q + 0.5) / (q.sum() + 0.5 * len(q))
    return float(np.sum((q_share - p_share) * np.log(q_share / p_share)))


def breaches(
    limits: Guardrails, champion: VariantWindow, challenger: VariantWindow
) -> list[tuple[str, str]]:
    """(guardrail, what happened) for every limit the challenger broke; [] while too early."""
    if challenger.requests < limits.min_requests:
        return []
    found = []
    rate = challenger.errors / challenger.requests
    if rate > limits.max_error_rate:
        found.append(
            (
                "error_rate",
                f"it failed on {challenger.errors} of {challenger.requests} requests "
                f"({rate:.1%} > {limits.max_error_rate:.1%})",
            )
        )
    p99 = challenger.p99_ms()
    if limits.max_p99_ms is not None and p99 is not None and p99 > limits.max_p99_ms:
        found.append(
            ("p99_latency", f"its p99 predict latency {p99:.1f} ms > {limits.max_p99_ms:g} ms")
        )
    shift = None
    if min(len(champion.scores), len(challenger.scores)) >= SHIFT_MIN:  # small windows: noise
        shift = psi(list(champion.scores), list(challenger.scores))
    if shift is not None and shift > limits.max_prediction_psi:
        found.append(
            (
                "prediction_shift",
                f"its predictions shifted from the champion's (PSI {shift:.3f} > "
                f"{limits.max_prediction_psi:g})",
            )
        )
    return found


def scores_of(columns: dict[str, list[Any]], task: str) -> list[Any]:
    """What the shift guardrail compares from a response's columns."""
    if task == "regression":
        return list(columns["prediction"])
    probas = [k for k in columns if k.startswith("proba_")]
    if task == "binary" and len(probas) == 2:
        return list(columns[probas[1]])
    return list(columns["prediction"])
