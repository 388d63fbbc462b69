"""Logistic regression (classification) or ridge regression, on the dense view."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from mlwright.train.models.features import Design
from mlwright.train.models.sklearn_io import SklearnFamily


class LinearFamily(SklearnFamily):
    name = "linear"
    view = "dense"
    relative_cost = 0.5
    rows_exponent = 0.8
    about = "regularised linear model; fast, stable, the right choice on small or wide data"
    plan_order = 2
    onnx = True

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
