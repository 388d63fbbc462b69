"""Live performance: served predictions joined to the feedback that arrived for them.

Each feedback row names its prediction (``<request_id>:<row>``), so the store looks each one up
by the request's primary key (:func:`mlwright.store.feedback.feedback_of_model`): reading
performance costs the feedback received, not the predictions served. Per model version (and
variant), the metrics over the whole window and over consecutive steps of it (by the time of the
prediction):

- a true ``label``: accuracy and, when the answer carried the probability of the true class,
  log loss;
- a true ``value``: RMSE and MAE;
- a ``reward``: its mean.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mlwright.store.feedback import feedback_of_model, outcomes

# how each metric is read from the per-prediction outcomes, and whether greater is better
LIVE_METRICS = {
    "accuracy": ("accuracy", True),
    "log_loss": ("log_loss", False),
    "rmse": ("squared_error", False),
    "mae": ("squared_error", False),
    "reward": ("reward", True),
}


def _value(metric: str, values: list[float]) -> float:
    mean = sum(values) / len(values)
    if metric == "rmse":
        return math.sqrt(mean)
    if metric == "mae":
        return sum(math.sqrt(v) for v in values) / len(values)
    return mean


def _summarise(rows: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric, (source, _) in LIVE_METRICS.items():
        values = rows.get(source)
        if values:
            out[metric] = _value(metric, values)
    return out


def live_performance(
    store: Path,
    *,
    model: str | None = None,
    since: float | None = None,
    step_seconds: int = 3600,
) -> list[dict[str, Any]]:
    """Per (model, version, variant), oldest first: the feedback count, each metric over the
    window and its value per step of ``step_seconds`` (steps with no feedback are left out)."""
    groups: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for name, version, variant, ts, output, kind, value in feedback_of_model(
        store, model=model, since=since
    ):
        if output is None:  # feedback for a row the request did not have
            continue
        group = groups.setdefault(
            (name, version, variant),
            {"first": ts, "last": ts, "n": 0, "all": {}, "steps": {}},
        )
        group["last"], group["n"] = ts, group["n"] + 1
        step = group["steps"].setdefault(
            int(ts // step_seconds) * step_seconds, {"n": 0, "rows": {}}
        )
        step["n"] += 1
        for metric, outcome in outcomes(output, kind, value):
            group["all"].setdefault(metric, []).append(outcome)
            step["rows"].setdefault(metric, []).append(outcome)
    result = []
    for (name, version, variant), group in groups.items():
        result.append(
            {
                "model": name,
                "version": version,
                "variant": variant,
                "feedback": group["n"],
                "first": group["first"],
                "last": group["last"],
                "metrics": _summarise(group["all"]),
                "timeline": [
                    {"start": start, "feedback": step["n"], **_summarise(step["rows"])}
                    for start, step in sorted(group["steps"].items())
                ],
            }
        )
    return sorted(result, key=lambda g: g["first"])
