"""Model families: one file each, one contract (``base.Family``), one registry (here)."""

from __future__ import annotations

import importlib.util

from mlwright.errors import ConfigError
from mlwright.train.models.base import Family, FitContext
from mlwright.train.models.catboost import CatBoostFamily
from mlwright.train.models.ensemble import EnsembleFamily
from mlwright.train.models.extra_trees import ExtraTreesFamily
from mlwright.train.models.hist_gb import HistGBFamily
from mlwright.train.models.lightgbm import LightGBMFamily
from mlwright.train.models.linear import LinearFamily
from mlwright.train.models.mlp import MLPFamily
from mlwright.train.models.random_forest import RandomForestFamily
from mlwright.train.models.xgboost import XGBoostFamily

_WITHOUT_TORCH: tuple[type[Family], ...] = (
    LightGBMFamily,
    XGBoostFamily,
    CatBoostFamily,
    HistGBFamily,
    LinearFamily,
    RandomForestFamily,
    ExtraTreesFamily,
)
FAMILIES: dict[str, type[Family]] = {f.name: f for f in _WITHOUT_TORCH}

# the tabular MLP registers itself only when torch is installed (its module imports torch only
# when it fits or loads)
if importlib.util.find_spec("torch") is not None:
    FAMILIES[MLPFamily.name] = MLPFamily

# every family the plan knows of, in the plan's order, whether this installation can fit it or
# not; the ensemble is never planned
PLANNED: tuple[type[Family], ...] = tuple(
    sorted((*_WITHOUT_TORCH, MLPFamily), key=lambda f: f.plan_order)
)


def get_family(name: str) -> type[Family]:
    """A searchable family by name, or the ensemble (which loads, but is never searched)."""
    if name == EnsembleFamily.name:
        return EnsembleFamily
    if name not in FAMILIES:
        hint = " (it needs PyTorch: pip install 'mlwright[torch]')" if name == "mlp" else ""
        raise ConfigError(
            f"unknown model family {name!r}{hint}", fix=f"use one of {', '.join(FAMILIES)}"
        )
    return FAMILIES[name]


__all__ = ["FAMILIES", "PLANNED", "EnsembleFamily", "Family", "FitContext", "get_family"]
