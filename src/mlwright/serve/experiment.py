"""Moved to :mod:`mlwright.experiment.config` and :mod:`mlwright.experiment.assignment`."""

from mlwright.experiment.assignment import Router, bucket
from mlwright.experiment.config import Canary, EntityKey, ExperimentConfig, Guardrails, Variant

__all__ = ["Canary", "EntityKey", "ExperimentConfig", "Guardrails", "Router", "Variant", "bucket"]
