"""Learning tasks and the metrics each can optimise.

The names here are the contract for ``--metric``; the evaluation stage implements each by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class MetricInfo:
    name: str
    tasks: tuple[Task, ...]
    greater_is_better: bool
    why: str


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo(
            "roc_auc",
            ("binary", "multiclass"),
            True,
            "ranks positives above negatives at every threshold and is insensitive to class "
            "balance; the decision threshold is tuned separately",
        ),
        MetricInfo(
            "log_loss",
            ("binary", "multiclass"),
            False,
            "rewards calibrated probabilities for every class, so it stays informative with "
            "many classes",
        ),
        MetricInfo("accuracy", ("binary", "multiclass"), True, "the share of correct labels"),
        MetricInfo(
            "balanced_accuracy",
            ("binary", "multiclass"),
            True,
            "the mean recall over classes; unaffected by class imbalance",
        ),
        MetricInfo("f1", ("binary",), True, "the harmonic mean of precision and recall"),
        MetricInfo("f1_macro", ("multiclass",), True, "F1 averaged over classes equally"),
        MetricInfo(
            "average_precision",
            ("binary",),
            True,
            "area under the precision-recall curve; focuses on the positive class",
        ),
        MetricInfo(
            "rmse",
            ("regression",),
            False,
            "penalises large errors more than small ones and is in the target's own units",
        ),
        MetricInfo("mae", ("regression",), False, "the typical absolute error, robust to outliers"),
        MetricInfo("r2", ("regression",), True, "the share of the target's variance explained"),
        MetricInfo(
            "mape",
            ("regression",),
            False,
            "the mean relative error; only meaningful when the target is never near zero",
        ),
    )
}

DEFAULT_METRIC: dict[Task, str] = {
    "binary": "roc_auc",
    "multiclass": "log_loss",
    "regression": "rmse",
}


def metrics_for(task: Task) -> list[str]:
    return [name for name, info in METRICS.items() if task in info.tasks]
