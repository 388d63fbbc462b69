"""LightGBM, native categorical splits, early stopping on the validation fold."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlwright.train.models.base import PARALLEL_ROWS, BoostedFamily, FitContext, booster_library
from mlwright.train.models.features import Design

_FILE = "lightgbm.txt"


class LightGBMFamily(BoostedFamily):
    name = "lightgbm"
    view = "tree"
    about = "gradient-boosted trees; fast, strong on most tables, native categorical splits"
    plan_order = 0
    onnx = True
    requirement = ("lightgbm", "lightgbm")

    def _lgb_params(self) -> dict[str, Any]:
        task, ctx = self.ctx.task, self.ctx
        objective = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}
        p = self.booster_params()
        p.update(
            objective=objective[task],
            seed=ctx.seed,
            deterministic=True,
            force_row_wise=True,
            num_threads=ctx.threads,
            verbosity=-1,
            feature_pre_filter=False,
        )
        if task == "multiclass":
            p["num_class"] = ctx.n_classes
        return p

    def fit(
        self,
        train: Design,
        y: np.ndarray,
        *,
        valid: tuple[Design, np.ndarray] | None = None,
        weights: np.ndarray | None = None,
    ) -> LightGBMFamily:
        import lightgbm as lgb

        params = self._lgb_params()
        cats: list[int] | Literal["auto"] = train.categorical or "auto"
        data = lgb.Dataset(train.X, y, weight=weights, categorical_feature=cats, free_raw_data=True)
        callbacks = [self._deadline_callback()]
        rounds = int(self.params.get("rounds") or self.params["max_rounds"])
        valid_sets = []
        if valid is not None and "rounds" not in self.params:
            valid_sets = [
                lgb.Dataset(valid[0].X, valid[1], reference=data, categorical_feature=cats)
            ]
            callbacks.append(
                lgb.early_stopping(int(self.params["early_stopping_rounds"]), verbose=False)
            )
        booster = lgb.train(params, data, rounds, valid_sets=valid_sets, callbacks=callbacks)
        best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
        self.booster_ = booster
        self.fitted_ = {"rounds": int(best)}
        return self

    def _deadline_callback(self) -> Any:
        import lightgbm as lgb

        ctx = self.ctx

        def stop_at_deadline(env: Any) -> None:
            if ctx.out_of_time() and env.iteration > 0:
                raise lgb.callback.EarlyStopException(
                    env.iteration, env.evaluation_result_list or []
                )

        stop_at_deadline.order = 40  # type: ignore[attr-defined]
        return stop_at_deadline

    def predict_raw(self, design: Design) -> np.ndarray:
        # the thread count goes with the call: a Booster's params do not reach predict
        threads = self.ctx.threads if design.n_rows >= PARALLEL_ROWS else 1
        predicted = self.booster_.predict(
            design.X, num_iteration=self.fitted_["rounds"], num_threads=threads
        )
        raw = np.asarray(predicted, dtype="float64")
        if self.ctx.task == "regression":
            return raw
        return self._probabilities(raw)

    def contributions(self, design: Design) -> np.ndarray:
        """TreeSHAP values, (rows, outputs, columns), without the expected-value column."""
        values = np.asarray(
            self.booster_.predict(
                design.X, num_iteration=self.fitted_["rounds"], pred_contrib=True, num_threads=1
            ),
            dtype="float64",
        )
        p = design.X.shape[1]
        return values.reshape(len(values), -1, p + 1)[:, :, :p]

    def save(self, folder: Path) -> list[str]:
        self.booster_.save_model(str(folder / _FILE), num_iteration=self.fitted_["rounds"])
        return [_FILE]

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], ctx: FitContext, fitted: dict[str, Any]
    ) -> LightGBMFamily:
        lgb = booster_library("lightgbm")
        family = cls(params, ctx)
        family.booster_ = lgb.Booster(model_file=str(folder / _FILE))
        family.booster_.params["num_threads"] = ctx.threads
        family.fitted_ = dict(fitted)
        return family
