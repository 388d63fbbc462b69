"""Moved to :mod:`mlwright.experiment.stats`."""

from mlwright.experiment.stats import (
    ALPHA,
    MIN_PER_ARM,
    MIXTURE_SD,
    SRM_ALPHA,
    Arm,
    Comparison,
    compare,
    confidence_sequence,
    cuped,
    is_binary,
    sample_ratio_mismatch,
    sequential_p_values,
    verdict,
)

__all__ = [
    "ALPHA",
    "MIN_PER_ARM",
    "MIXTURE_SD",
    "SRM_ALPHA",
    "Arm",
    "Comparison",
    "compare",
    "confidence_sequence",
    "cuped",
    "is_binary",
    "sample_ratio_mismatch",
    "sequential_p_values",
    "verdict",
]
