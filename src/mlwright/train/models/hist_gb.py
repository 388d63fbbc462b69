"""scikit-learn's histogram gradient boosting, native categorical splits."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwright.train.models.features import Design
from mlwright.train.models.sklearn_io import SklearnFamily


class HistGBFamily(SklearnFamily):
    name = "hist_gb"
    view = "tree"
    relative_cost = 3.0
    rows_exponent = 0.6
    about = "histogram gradient boosting from scikit-learn; a dependable boosted baseline"

    def fit(
        self,
        train: Design,
        y: np.ndarray,
        *,
        valid: tuple[Design, np.ndarray] | None = None,
        weights: np.ndarray | None = None,
    ) -> HistGBFamily:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = (
            HistGradientBoostingRegressor
            if self.ctx.task == "regression"
            else HistGradientBoostingClassifier
        )
        mask = np.zeros(train.X.shape[1], dtype=bool)
        mask[train.categorical] = True
        refit = "iterations" in self.params
        model = cls(
            learning_rate=float(self.params["learning_rate"]),
            max_leaf_nodes=int(self.params["max_leaf_nodes"]),
            min_samples_leaf=int(self.params["min_samples_leaf"]),
            l2_regularization=float(self.params["l2_regularization"]),
            max_iter=int(self.params["iterations"] if refit else self.params["max_iter"]),
            categorical_features=mask if mask.any() else None,
            early_stopping=not refit,
            n_iter_no_change=int(self.params["n_iter_no_change"]),
            validation_fraction=0.1,
            random_state=self.ctx.seed,
        )
        model.fit(train.X, y, sample_weight=weights)
        self.model_ = model
        self.fitted_ = {"iterations": int(model.n_iter_)}
        return self

    def refit_params(self) -> dict[str, Any]:
        return {**self.params, "iterations": self.fitted_["iterations"]}
