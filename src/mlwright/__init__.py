"""mlwright: an ML engineer in a box.

    import mlwright as mw
    problem = mw.profile(df, target="churned")

Public names are imported lazily so that ``import mlwright`` and ``mlwright --help`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "profile": ("mlwright.data.profile", "profile"),
    "ProblemDefinition": ("mlwright.data.profile", "ProblemDefinition"),
    "TableSchema": ("mlwright.data.schema", "TableSchema"),
    "infer_schema": ("mlwright.data.schema", "infer_schema"),
    "read_table": ("mlwright.data.io", "read_table"),
    "load_dataset": ("mlwright.data.bundled", "load_dataset"),
    "ProfileSettings": ("mlwright.config", "ProfileSettings"),
    "MlwrightError": ("mlwright.errors", "MlwrightError"),
    "load": ("mlwright.api", "load"),
    "reproduce": ("mlwright.api", "reproduce"),
    "rebuild": ("mlwright.api", "rebuild"),  # the earlier name of reproduce
    "export": ("mlwright.api", "export"),
    "train_torch": ("mlwright.api", "train_torch"),
    "Model": ("mlwright.package.model", "Model"),
    "TensorModel": ("mlwright.package.tensor", "TensorModel"),
}

__all__ = [
    "MlwrightError",
    "Model",
    "ProblemDefinition",
    "ProfileSettings",
    "TableSchema",
    "TensorModel",
    "__version__",
    "export",
    "infer_schema",
    "load",
    "load_dataset",
    "profile",
    "read_table",
    "rebuild",
    "reproduce",
    "train",
    "train_torch",
]

if TYPE_CHECKING:
    from mlwright.api import export, load, rebuild, reproduce, train_torch
    from mlwright.config import ProfileSettings
    from mlwright.data.bundled import load_dataset
    from mlwright.data.io import read_table
    from mlwright.data.profile import ProblemDefinition, profile
    from mlwright.data.schema import TableSchema, infer_schema
    from mlwright.errors import MlwrightError
    from mlwright.package.model import Model
    from mlwright.package.tensor import TensorModel


def __getattr__(name: str) -> Any:
    if name == "train":  # the training package is itself callable: mlwright.train(df, target=...)
        return import_module("mlwright.train")
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlwright' has no attribute {name!r}")
