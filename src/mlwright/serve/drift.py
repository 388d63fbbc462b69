"""Moved to :mod:`mlwright.monitor.drift`."""

from mlwright.monitor.drift import (
    UNSEEN,
    categorical_drift,
    count_categorical,
    count_numeric,
    feature_drift,
    frame_drift,
    numeric_drift,
    sketch_cdf,
    summary,
)
from mlwright.serve.drift_settings import Settings

__all__ = [
    "UNSEEN",
    "Settings",
    "categorical_drift",
    "count_categorical",
    "count_numeric",
    "feature_drift",
    "frame_drift",
    "numeric_drift",
    "sketch_cdf",
    "summary",
]
