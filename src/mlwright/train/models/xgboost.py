"""XGBoost with histogram trees, native categorical splits and early stopping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlwright.train.models.base import BoostedFamily, FitContext, booster_library
from mlwright.train.models.features import Design

_FILE = "xgboost.ubj"


class XGBoostFamily(BoostedFamily):
    name = "xgboost"
    view = "tree"
    relative_cost = 1.5
    about = "gradient-boosted trees, depth-wise; a strong second opinion to LightGBM"
    plan_order = 1
    onnx = True
    requirement = ("xgboost", "xgboost-cpu")

    def train_params(self) -> dict[str, Any]:
        task, ctx = self.ctx.task, self.ctx
        objective = {
            "binary": "binary:logistic",
            "multiclass": "multi:softprob",
            "regression": "reg:squarederror",
        }
        p = self.booster_params()
        p.update(
            objective=objective[task],
            tree_method="hist",
            seed=ctx.seed,
            nthread=ctx.threads,
            verbosity=0,
            device=_device(),
        )
        if task == "multiclass":
            p["num_class"] = ctx.n_classes
        return p

    @staticmethod
    def feature_types(design: Design) -> list[str]:
        """XGBoost's kind of each column: ``c`` for category codes, ``q`` for numbers."""
        return ["c" if i in set(design.categorical) else "q" for i in range(design.X.shape[1])]

    @staticmethod
    def _matrix(design: Design, y: np.ndarray | None = None, w: np.ndarray | None = None) -> Any:
        import xgboost as xgb

        return xgb.DMatrix(
            design.X,
            label=y,
            weight=w,
            feature_types=XGBoostFamily.feature_types(design),
            enable_categorical=True,
            nthread=1,
        )

    def fit(
        self,
        train: Design,
        y: np.ndarray,
        *,
        valid: tuple[Design, np.ndarray] | None = None,
        weights: np.ndarray | None = None,
    ) -> XGBoostFamily:
        import xgboost as xgb

        dtrain = self._matrix(train, y, weights)
        rounds = int(self.params.get("rounds") or self.params["max_rounds"])
        evals = []
        stop = None
        if valid is not None and "rounds" not in self.params:
            evals = [(self._matrix(valid[0], valid[1]), "valid")]
            stop = int(self.params["early_stopping_rounds"])
        booster = xgb.train(
            self.train_params(),
            dtrain,
            rounds,
            evals=evals,
            early_stopping_rounds=stop,
            callbacks=[_Deadline(self.ctx)],
            verbose_eval=False,
        )
        best = getattr(booster, "best_iteration", None)
        n_rounds = int(best) + 1 if best is not None and evals else booster.num_boosted_rounds()
        self.booster_ = booster[:n_rounds] if n_rounds < booster.num_boosted_rounds() else booster
        self.fitted_ = {"rounds": n_rounds}
        return self

    def predict_raw(self, design: Design) -> np.ndarray:
        raw = np.asarray(self.booster_.inplace_predict(design.X), dtype="float64")
        if self.ctx.task == "regression":
            return raw
        return self._probabilities(raw)

    def contributions(self, design: Design) -> np.ndarray:
        """TreeSHAP values, (rows, outputs, columns), without the bias column."""
        values = np.asarray(
            self.booster_.predict(self._matrix(design), pred_contribs=True), dtype="float64"
        )
        p = design.X.shape[1]
        return values.reshape(len(values), -1, p + 1)[:, :, :p]

    def save(self, folder: Path) -> list[str]:
        self.booster_.save_model(str(folder / _FILE))
        return [_FILE]

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], ctx: FitContext, fitted: dict[str, Any]
    ) -> XGBoostFamily:
        xgb = booster_library("xgboost")
        family = cls(params, ctx)
        booster = xgb.Booster()
        booster.load_model(str(folder / _FILE))
        booster.set_param({"nthread": ctx.threads, "device": _device()})
        family.booster_ = booster
        family.fitted_ = dict(fitted)
        return family


def _device() -> str:
    """CUDA when this XGBoost build and the machine have it, else the CPU."""
    import xgboost as xgb

    if not xgb.build_info().get("USE_CUDA", False):
        return "cpu"
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


class _Deadline:
    """Stops boosting when the run's clock runs out (keeps the rounds done so far)."""

    def __new__(cls, ctx: FitContext) -> Any:
        import xgboost as xgb

        class Deadline(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return epoch > 0 and ctx.out_of_time()

        return Deadline()
