"""scikit-learn's histogram gradient boosting, native categorical splits."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwright.train.models.features import Design
from mlwright.train.models.sklearn_io import SklearnFamily

_CHUNK = 50  # rounds between looks at the clock when the fit has a deadline


class HistGBFamily(SklearnFamily):
    name = "hist_gb"
    view = "tree"
    onnx = True
    relative_cost = 3.0
    rows_exponent = 0.6
    about = "histogram gradient boosting from scikit-learn; a dependable boosted baseline"
    plan_order = 4

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
        if refit or self.ctx.deadline is None:
            model.fit(train.X, y, sample_weight=weights)
        else:
            self._fit_in_time(model, train.X, y, weights)
        self.model_ = model
        self.fitted_ = {"iterations": int(model.n_iter_)}
        return self

    def _fit_in_time(self, model: Any, X: np.ndarray, y: np.ndarray, w: Any) -> None:
        """Boosting capped by the clock: rounds added in chunks (warm start), stopping when early
        stopping ends it, the rounds run out or the time is up. The model is the one a single
        fit of the same rounds makes: the validation split and the trees do not depend on the
        chunks."""
        target = int(model.max_iter)
        model.set_params(max_iter=min(_CHUNK, target), warm_start=True)
        while True:
            model.fit(X, y, sample_weight=w)
            done = model.n_iter_ < model.max_iter or model.max_iter >= target or _stopped(model)
            if done or self.ctx.out_of_time():
                break
            model.set_params(max_iter=min(model.max_iter + _CHUNK, target))
        model.set_params(warm_start=False, max_iter=target)

    def refit_params(self) -> dict[str, Any]:
        return {**self.params, "iterations": self.fitted_["iterations"]}


def _stopped(model: Any) -> bool:
    """Whether early stopping ended the fit right at a chunk's last round (it would not go on
    in a single fit): scikit-learn's own test on the validation scores so far."""
    scores = getattr(model, "validation_score_", None)
    should_stop = getattr(model, "_should_stop", None)
    return bool(scores is not None and should_stop is not None and should_stop(scores))
