"""Training: preprocessing, model families, validation splits, search and the run itself.

``mlwright.train`` is also the Python API's training function: ``mw.train(df, target=...)``.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _TrainModule(types.ModuleType):
    """This package, callable as ``mlwright.train(data, target=..., **options)``."""

    def __call__(self, data: Any, target: str, **options: Any) -> Any:
        from mlwright.train.runner import train_from_keywords

        return train_from_keywords(data, target, **options)


sys.modules[__name__].__class__ = _TrainModule
