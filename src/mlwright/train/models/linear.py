"""Logistic regression (classification) or ridge regression, on the dense view."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.train.models import sklearn_io
from mlwright.train.models.base import Family, FitContext, all_classes
from mlwright.train.models.features import Design

_FILE = "linear.skops"


class LinearFamily(Family):
    name = "linear"
    view = "dense"
    about = "regularised linear model; fast, stable, the right choice on small or wide data"

    def _estimator(self) -> Any:
        from sklearn.linear_model import LogisticRegression, Ridge

        if self.ctx.task == "regression":
            return Ridge(alpha=float(self.params["alpha"]))
        return LogisticRegression(
            C=float(self.params["C"]),
            max_iter=int(self.params["max_iter"]),
            random_state=self.ctx.seed,
        )

    def fit(
        self,
        train: Design,
        y: np.ndarray,
        *,
        valid: tuple[Design, np.ndarray] | None = None,
        weights: np.ndarray | None = None,
    ) -> LinearFamily:
        from sklearn.exceptions import ConvergenceWarning

        model = self._estimator()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(train.X, y, sample_weight=weights)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        self.model_ = model
        self.fitted_ = {"converged": converged}
        return self

    def predict_raw(self, design: Design) -> np.ndarray:
        if self.ctx.task == "regression":
            return np.asarray(self.model_.predict(design.X), dtype="float64")
        proba = np.asarray(self.model_.predict_proba(design.X), dtype="float64")
        return all_classes(proba, self.model_.classes_, self.ctx.n_classes)

    def save(self, folder: Path) -> list[str]:
        sklearn_io.dump(self.model_, folder / _FILE)
        return [_FILE]

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], ctx: FitContext, fitted: dict[str, Any]
    ) -> LinearFamily:
        family = cls(params, ctx)
        family.model_ = sklearn_io.load(folder / _FILE)
        family.fitted_ = dict(fitted)
        return family
