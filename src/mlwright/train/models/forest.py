"""Shared code of the two bagged-tree families (random forest, extra trees)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwright.train.models.features import Design
from mlwright.train.models.sklearn_io import SklearnFamily

BYTES_PER_NODE = 80  # a scikit-learn tree node on disk, about


class BaggedTrees(SklearnFamily):
    view = "tree"
    noun = "deep bagged trees"
    onnx = True
    single_row_ms = 15.0  # typical p99 on 2 cores
    max_rows = 200_000
    disk_bytes_per_row = 200 * BYTES_PER_NODE  # about 200 trees of one node per training row
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
