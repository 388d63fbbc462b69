"""Moved to :mod:`mlwright.experiment.analysis` and :mod:`mlwright.store`."""

from mlwright.experiment.analysis import (
    METRICS,
    PRIMARY,
    Outcome,
    analyze,
    json_safe,
    load_outcomes,
    shadow_agreement,
)
from mlwright.store.feedback import outcomes
from mlwright.store.predictions import request_counts

__all__ = [
    "METRICS",
    "PRIMARY",
    "Outcome",
    "analyze",
    "json_safe",
    "load_outcomes",
    "outcomes",
    "request_counts",
    "shadow_agreement",
]
