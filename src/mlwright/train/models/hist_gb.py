"""scikit-learn's histogram gradient boosting, native categorical splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlwright.train.models import sklearn_io
from mlwright.train.models.base import Family, FitContext, all_classes
from mlwright.train.models.features import Design

_FILE = "hist_gb.skops"


class HistGBFamily(Family):
    name = "hist_gb"
    view = "tree"
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
    ) -> HistGBFamily:
        family = cls(params, ctx)
        family.model_ = sklearn_io.load(folder / _FILE)
        family.fitted_ = dict(fitted)
        return family
