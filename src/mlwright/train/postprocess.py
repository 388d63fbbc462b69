"""What is learned after the choice, from the chosen candidate's out-of-fold predictions, each step
judged on rows it was not fitted on.

- **Calibration** (classification): one temperature (:func:`~mlwright.train.ensemble.calibrate`),
  bounded to [1/4, 4] and held towards 1 by a penalty on (log T)² worth PRIOR nats, so that a few
  hundred confident, correct out-of-fold rows cannot talk it into an extreme value. It is applied
  only when, cross-fitted (each fold's temperature learned on the other folds), it lowers log loss
  by more than its standard error across folds.
- **Decision threshold** (binary, when the plan tunes one): cross-fitted the same way against the
  default cut-off 0.5, and kept only when its gain on the held folds is beyond their noise.
- **Conformal residuals** (regression): the out-of-fold absolute residuals' quantiles, for
  split-conformal intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlwright.data.tasks import Task
from mlwright.evaluate.metrics import best_threshold, score
from mlwright.train.ensemble import (
    EPS,
    Judged,
    calibrate,
    clearly_better,
    judged_rows,
    standard_error,
)
from mlwright.train.validation import Split

QUANTILE_LEVELS = np.linspace(0.0, 1.0, 1001)
TEMPERATURE_BOUNDS = (0.25, 4.0)
PRIOR = 50.0  # nats of summed log loss that moving log T by one costs: small data keeps T near 1
MIN_GAIN = 1e-4  # out-of-fold log loss a temperature must save, at least, to be applied
NOTABLE_LOG_T = 0.1  # a temperature left out is announced when it is this far from 1 (log)


@dataclass
class Postprocess:
    """The chosen candidate's post-processing and the evidence for each step (for the recipe)."""

    threshold: float | None = None
    residual_quantiles: list[float] | None = None
    n_residuals: int = 0
    calibration: dict[str, Any] = field(default_factory=dict)
    threshold_choice: dict[str, Any] = field(default_factory=dict)

    @property
    def temperature(self) -> float | None:
        return self.calibration["temperature"] if self.calibration.get("applied") else None

    def decisions(self) -> list[str]:
        """What was applied, or left out though it looked better on all rows, and the evidence,
        one line each."""
        lines = []
        cal, cut = self.calibration, self.threshold_choice
        if cal:
            change = (
                f"cross-fitted log loss {cal['log_loss_before']:.5f} → {cal['log_loss_after']:.5f}"
                f" (standard error {cal['standard_error']:.5f} over {cal['folds']} folds)"
            )
            if cal["applied"]:
                lines.append(
                    f"calibrated the probabilities (temperature {cal['temperature']:.3f}): {change}"
                )
            elif abs(np.log(cal["temperature"])) > NOTABLE_LOG_T:
                lines.append(
                    f"left the probabilities uncalibrated: a temperature of "
                    f"{cal['temperature']:.3f} gives {change}, not a clear gain"
                )
        if cut:
            change = (
                f"cross-fitted {cut['metric']} {cut['at_default']:.5f} at 0.5 → "
                f"{cut['at_threshold']:.5f} (standard error {cut['standard_error']:.5f})"
            )
            if cut["applied"]:
                lines.append(f"decision threshold {cut['threshold']:.4f}: {change}")
            elif cut["threshold"] != 0.5 and cut["at_threshold"] > cut["at_default"]:
                lines.append(f"kept the decision threshold at 0.5: a tuned one gives {change}")
        return lines


def postprocess(
    oof: np.ndarray,
    y: np.ndarray,
    splits: list[Split],
    task: Task,
    threshold_metric: str | None,
    seed: int,
) -> Postprocess:
    """Calibration then the decision threshold (classification), or the conformal residuals
    (regression), from out-of-fold predictions ``oof`` (NaN where a row has none)."""
    if task == "regression":
        valid = ~np.isnan(oof)
        residuals = np.abs(y[valid] - oof[valid])
        table = np.quantile(residuals, QUANTILE_LEVELS, method="higher")
        return Postprocess(residual_quantiles=[float(v) for v in table], n_residuals=len(residuals))
    judged = judged_rows([oof], y, [val for _, val in splits], seed)
    proba = judged.oofs[0]
    calibration = calibration_choice(proba, judged)
    out = Postprocess(calibration=calibration)
    if calibration["applied"]:
        proba = calibrate(proba, calibration["temperature"])
    if task == "binary" and threshold_metric:
        out.threshold_choice = threshold_choice(proba[:, 1], judged, threshold_metric)
        out.threshold = (
            out.threshold_choice["threshold"] if out.threshold_choice["applied"] else None
        )
    return out


def fit_temperature(proba: np.ndarray, y: np.ndarray, prior: float = PRIOR) -> float:
    """The temperature minimising the summed log loss plus ``prior`` · (log T)², within
    TEMPERATURE_BOUNDS."""
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(proba, EPS, 1.0))
    rows = np.arange(len(y))

    def loss(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        nll = -np.sum(z[rows, y] - np.log(np.exp(z).sum(axis=1)))
        return float(nll + prior * log_t**2)

    low, high = np.log(TEMPERATURE_BOUNDS)
    found = minimize_scalar(loss, bounds=(low, high), method="bounded")
    return float(np.exp(found.x))


def calibration_choice(proba: np.ndarray, judged: Judged) -> dict[str, Any]:
    """The temperature learned on all judged rows, and whether to apply it: its cross-fitted log
    loss (each fold scored with the temperature learned on the other folds) against none."""
    before, after = [], []
    for k in np.unique(judged.fold):
        val = judged.fold == k
        t = fit_temperature(proba[~val], judged.y[~val])
        before.append(score("log_loss", judged.y[val], proba[val]))
        after.append(score("log_loss", judged.y[val], calibrate(proba[val], t)))
    temperature = round(fit_temperature(proba, judged.y), 6)
    mean_before, mean_after = float(np.mean(before)), float(np.mean(after))
    applied = (
        abs(np.log(temperature)) > 1e-3
        and mean_after < mean_before - MIN_GAIN
        and clearly_better(after, before, "log_loss")
    )
    return {
        "method": "temperature",
        "temperature": temperature,
        "log_loss_before": round(mean_before, 10),
        "log_loss_after": round(mean_after, 10),
        "folds": len(before),
        "standard_error": round(standard_error(np.subtract(before, after)), 10),
        "applied": bool(applied),
    }


def threshold_choice(positive: np.ndarray, judged: Judged, metric: str) -> dict[str, Any]:
    """The cut-off maximising ``metric`` on all judged rows, and whether to use it instead of
    0.5: each fold scored at the cut-off learned on the other folds, against 0.5."""
    default, tuned = [], []
    both = np.column_stack([1.0 - positive, positive])
    for k in np.unique(judged.fold):
        val = judged.fold == k
        t, _ = best_threshold(judged.y[~val], positive[~val], metric)
        default.append(score(metric, judged.y[val], both[val], 0.5))
        tuned.append(score(metric, judged.y[val], both[val], t))
    threshold, _ = best_threshold(judged.y, positive, metric)
    return {
        "metric": metric,
        "threshold": round(threshold, 6),
        "at_default": round(float(np.mean(default)), 10),
        "at_threshold": round(float(np.mean(tuned)), 10),
        "folds": len(tuned),
        "standard_error": round(standard_error(np.subtract(tuned, default)), 10),
        "applied": bool(threshold != 0.5 and clearly_better(tuned, default, metric)),
    }


__all__ = [
    "PRIOR",
    "QUANTILE_LEVELS",
    "TEMPERATURE_BOUNDS",
    "Postprocess",
    "calibration_choice",
    "fit_temperature",
    "postprocess",
    "threshold_choice",
]
