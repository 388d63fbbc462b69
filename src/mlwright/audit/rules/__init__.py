"""The audit's rules, one module per family; importing this package registers them all."""

from __future__ import annotations

from mlwright.audit.rules import (  # noqa: F401  (each module registers its rules)
    failures,
    hyperparameters,
    randomness,
    torch_rules,
    tracking,
    validation,
)
