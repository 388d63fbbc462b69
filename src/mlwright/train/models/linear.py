"""Logistic regression (classification) or ridge regression, on the dense view.

A fitted model is its coefficients, written as numbers (``linear.json``): loading one builds the
estimator and sets them, so nothing in the file names a type to construct, and a load needs
neither skops nor its import (packages of earlier releases hold ``linear.skops``, still read).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.errors import MlwrightError
from mlwright.train.models.base import FitContext
from mlwright.train.models.features import Design
from mlwright.train.models.sklearn_io import SklearnFamily

_FILE = "linear.json"


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

    def save(self, folder: Path) -> list[str]:
        model = self.model_
        state = {
            "estimator": type(model).__name__,
            "coef": np.asarray(model.coef_, dtype="float64").tolist(),
            "intercept": np.asarray(model.intercept_, dtype="float64").tolist(),
            "n_features_in": int(model.n_features_in_),
        }
        if hasattr(model, "classes_"):
            state["classes"] = np.asarray(model.classes_).tolist()
        # floats are written with repr's digits: read back, every one is the same float64
        (folder / _FILE).write_text(json.dumps(state, allow_nan=False), encoding="utf-8")
        return [_FILE]

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], ctx: FitContext, fitted: dict[str, Any]
    ) -> LinearFamily:
        if not (folder / _FILE).exists():  # a package of an earlier release: skops
            family = super().load(folder, params, ctx, fitted)
            assert isinstance(family, LinearFamily)
            return family
        family = cls(params, ctx)
        family.model_ = _estimator_from(folder / _FILE, ctx.task)
        family.fitted_ = dict(fitted)
        return family


def _estimator_from(path: Path, task: str) -> Any:
    """The fitted estimator whose coefficients ``path`` holds, checked as numbers of the right
    shapes before any is set."""
    from sklearn.linear_model import LogisticRegression, Ridge

    def refuse(why: str) -> MlwrightError:
        return MlwrightError(
            f"{path} is not a linear model mlwright wrote: {why}",
            fix="only load packages written by mlwright; retrain the model from its data",
        )

    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        kind = Ridge if task == "regression" else LogisticRegression
        if not isinstance(state, dict) or state.get("estimator") != kind.__name__:
            raise refuse(f"it does not hold a {kind.__name__}")
        n = int(state["n_features_in"])
        coef = np.asarray(state["coef"], dtype="float64")
        intercept = np.asarray(state["intercept"], dtype="float64")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise refuse(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if coef.shape[-1:] != (n,) or coef.ndim > 2 or intercept.ndim > 1:
        raise refuse(f"coefficients of shape {coef.shape} for {n} features")
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise refuse("a coefficient is not a finite number")
    model = kind()
    model.coef_, model.intercept_, model.n_features_in_ = coef, intercept, n
    if kind is Ridge:
        if intercept.ndim == 0:
            model.intercept_ = float(intercept)
        return model
    classes = np.asarray(state.get("classes"))
    rows = 1 if len(classes) == 2 else len(classes)
    if (
        classes.ndim != 1
        or len(classes) < 2
        or coef.shape != (rows, n)
        or intercept.shape != (rows,)
    ):
        raise refuse(f"{len(classes)} classes for coefficients of shape {coef.shape}")
    model.classes_ = classes
    return model
