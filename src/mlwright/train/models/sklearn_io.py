"""Saving scikit-learn estimators with skops, and loading them without trusting pickle.

Loading lists the types a file would create and refuses anything outside scikit-learn, NumPy and
SciPy before a single object is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlwright.errors import MlwrightError
from mlwright.train.models.base import PARALLEL_ROWS, Family, FitContext, all_classes
from mlwright.train.models.features import Design

_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")
# skops rebuilds a partial from its parts, each of which is checked against the prefixes too
_TRUSTED_NAMES = frozenset({"functools.partial"})


def dump(estimator: Any, path: Path) -> None:
    import skops.io as sio

    sio.dump(estimator, path)


def load(path: Path) -> Any:
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    refused = [
        t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES) and t not in _TRUSTED_NAMES
    ]
    if refused:
        raise MlwrightError(
            f"{path} would create objects of untrusted types {refused}; refusing to load it",
            fix="retrain the model with mlwright; never load model files from unknown sources",
        )
    return sio.load(path, trusted=untrusted)


class SklearnFamily(Family):
    """A family whose fitted state is one scikit-learn estimator in ``model_``."""

    model_: Any
    _pools: Any = None  # threadpoolctl's view of the loaded OpenMP/BLAS libraries

    def predict_raw(self, design: Design) -> np.ndarray:
        if hasattr(self.model_, "n_jobs"):  # a joblib pool costs more than a few rows take
            self.model_.n_jobs = self.ctx.threads if design.n_rows >= PARALLEL_ROWS else 1
        with self._thread_limit():
            if self.ctx.task == "regression":
                return np.asarray(self.model_.predict(design.X), dtype="float64")
            proba = np.asarray(self.model_.predict_proba(design.X), dtype="float64")
        return all_classes(proba, self.model_.classes_, self.ctx.n_classes)

    def _thread_limit(self) -> Any:
        """OpenMP and BLAS inside scikit-learn use ``ctx.threads``, not every core."""
        if self._pools is None:
            from threadpoolctl import ThreadpoolController

            self._pools = ThreadpoolController()
        return self._pools.limit(limits=self.ctx.threads)

    def save(self, folder: Path) -> list[str]:
        name = f"{self.name}.skops"
        dump(self.model_, folder / name)
        return [name]

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], ctx: FitContext, fitted: dict[str, Any]
    ) -> Family:
        family = cls(params, ctx)
        assert isinstance(family, SklearnFamily)
        family.model_ = load(folder / f"{cls.name}.skops")
        if hasattr(family.model_, "n_jobs"):
            family.model_.n_jobs = ctx.threads
        family.fitted_ = dict(fitted)
        return family
