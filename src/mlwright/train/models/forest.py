"""Shared code of the two bagged-tree families (random forest, extra trees)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlwright.train.models import sklearn_io
from mlwright.train.models.base import Family, FitContext, all_classes
from mlwright.train.models.features import Design


class BaggedTrees(Family):
    view = "tree"
    _classifier: str
    _regressor: str

    def _estimator(self) -> Any:
        import sklearn.ensemble as ens

        cls = getattr(ens, self._regressor if self.ctx.task == "regression" else self._classifier)
        max_features = self.params["max_features"]
        return cls(
            n_estimators=int(self.params["chunk"]),
            max_features=max_features if isinstance(max_features, str) else float(max_features),
            min_samples_leaf=int(self.params["min_samples_leaf"]),
            max_depth=self.params.get("max_depth"),
            n_jobs=self.ctx.threads,
            random_state=self.ctx.seed,
            warm_start=True,
        )

    def fit(
        self,
        train: Design,
        y: np.ndarray,
        *,
        valid: tuple[Design, np.ndarray] | None = None,
        weights: np.ndarray | None = None,
    ) -> BaggedTrees:
        model = self._estimator()
        target = int(self.params["n_estimators"])
        chunk = int(self.params["chunk"])
        while True:  # grow in chunks so that the clock can stop it between chunks
            model.fit(train.X, y, sample_weight=weights)
            if model.n_estimators >= target or self.ctx.out_of_time():
                break
            model.n_estimators = min(target, model.n_estimators + chunk)
        model.warm_start = False
        self.model_ = model
        self.fitted_ = {"n_estimators": int(model.n_estimators)}
        return self

    def refit_params(self) -> dict[str, Any]:
        return {**self.params, "n_estimators": self.fitted_["n_estimators"]}

    def predict_raw(self, design: Design) -> np.ndarray:
        if self.ctx.task == "regression":
            return np.asarray(self.model_.predict(design.X), dtype="float64")
        proba = np.asarray(self.model_.predict_proba(design.X), dtype="float64")
        return all_classes(proba, self.model_.classes_, self.ctx.n_classes)

    def save(self, folder: Path) -> list[str]:
        name = f"{self.name}.skops"
        sklearn_io.dump(self.model_, folder / name)
        return [name]

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], ctx: FitContext, fitted: dict[str, Any]
    ) -> BaggedTrees:
        family = cls(params, ctx)
        family.model_ = sklearn_io.load(folder / f"{cls.name}.skops")
        family.model_.n_jobs = ctx.threads
        family.fitted_ = dict(fitted)
        return family
