"""mlwright: an ML engineer in a box.

    import mlwright as mw
    problem = mw.profile(df, target="churned")
    model = mw.train(df, target="churned", time_budget=60)

Public names are imported lazily so that ``import mlwright`` and ``mlwright --help`` stay fast.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "profile": ("mlwright.api", "profile"),
    "train": ("mlwright.api", "train"),
    "retrain": ("mlwright.api", "retrain"),
    "ProblemDefinition": ("mlwright.data.profile", "ProblemDefinition"),
    "TableSchema": ("mlwright.data.schema", "TableSchema"),
    "infer_schema": ("mlwright.data.schema", "infer_schema"),
    "read_table": ("mlwright.data.io", "read_table"),
    "load_dataset": ("mlwright.data.bundled", "load_dataset"),
    "list_datasets": ("mlwright.data.bundled", "list_datasets"),
    "ProfileSettings": ("mlwright.config", "ProfileSettings"),
    "MlwrightError": ("mlwright.errors", "MlwrightError"),
    "load": ("mlwright.api", "load"),
    "reproduce": ("mlwright.api", "reproduce"),
    "rebuild": ("mlwright.api", "rebuild"),  # the earlier name of reproduce
    "export": ("mlwright.api", "export"),
    "train_torch": ("mlwright.api", "train_torch"),
    "train_keras": ("mlwright.api", "train_keras"),
    "train_jax": ("mlwright.api", "train_jax"),
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
    "list_datasets",
    "load",
    "load_dataset",
    "profile",
    "read_table",
    "rebuild",
    "reproduce",
    "retrain",
    "train",
    "train_jax",
    "train_keras",
    "train_torch",
]

if TYPE_CHECKING:
    from mlwright.api import (
        export,
        load,
        profile,
        rebuild,
        reproduce,
        retrain,
        train,
        train_jax,
        train_keras,
        train_torch,
    )
    from mlwright.config import ProfileSettings
    from mlwright.data.bundled import list_datasets, load_dataset
    from mlwright.data.io import read_table
    from mlwright.data.profile import ProblemDefinition
    from mlwright.data.schema import TableSchema, infer_schema
    from mlwright.errors import MlwrightError
    from mlwright.package.model import Model
    from mlwright.package.tensor import TensorModel


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(import_module(module), attr)
        if name == "train":
            _share_namespace(value)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlwright' has no attribute {name!r}")


# ``mlwright.train`` is two things: the function (``mw.train(df, target=...)``) and the package
# of the training stages (``from mlwright.train.search import ...``). The name on this module is
# the function: the import system's binding of the subpackage to it is ignored. So that the
# dotted paths through it still resolve (``import mlwright.train.runner as runner``,
# ``mlwright.train.runner``, a mock's "mlwright.train.runner.X"), the function's attributes are
# the package's namespace: its submodules appear on it as they are imported.


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "train" and isinstance(value, types.ModuleType):
            return  # the subpackage, bound by its import: mlwright.train stays the function
        super().__setattr__(name, value)


def _share_namespace(function: Any) -> None:
    function.__dict__ = import_module("mlwright.train").__dict__


sys.modules[__name__].__class__ = _Package
