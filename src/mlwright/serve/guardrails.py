"""Moved to :mod:`mlwright.experiment.guardrails`."""

from mlwright.experiment.guardrails import (
    PSI_BINS,
    SHIFT_MIN,
    WINDOW,
    VariantWindow,
    breaches,
    psi,
    scores_of,
)

__all__ = ["PSI_BINS", "SHIFT_MIN", "WINDOW", "VariantWindow", "breaches", "psi", "scores_of"]
