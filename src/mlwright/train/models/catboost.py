"""CatBoost: symmetric trees, its own target statistics for categories, early stopping.

Category codes from the ``tree`` view reach CatBoost as integer categories (missing as ``-1``,
a value unseen in training as the encoder's "other" code), so CatBoost's ordered target
statistics, not numeric splits on the codes, decide how a category is used. Nothing is written
to the working directory and nothing is printed: CatBoost's own messages go to the ``mlwright``
logger at debug level.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.train.models.base import PARALLEL_ROWS, BoostedFamily, FitContext
from mlwright.train.models.features import Design

_FILE = "catboost.cbm"
_LOSS = {"binary": "Logloss", "multiclass": "MultiClass", "regression": "RMSE"}
log = logging.getLogger("mlwright")


class CatBoostFamily(BoostedFamily):
    name = "catboost"
    view = "tree"
    relative_cost = 3.0
    about = (
        "gradient-boosted symmetric trees with ordered target statistics for categories; "
        "often the strongest boosted trees without tuning"
    )
    plan_order = 3
    # its default trial, all folds together: 5 folds of 4,000 rows x 10 columns (2 categorical)
    # take about 3 s on 2 cores, twice LightGBM's time
    default_trial_seconds_per_cell = 7e-5
    onnx = True  # numeric features only (package/onnx_export.py refuses categorical ones)
    requirement = ("catboost", "catboost")

    def _cb_params(self, rounds: int) -> dict[str, Any]:
        ctx = self.ctx
        p = self.booster_params()
        p.update(
            loss_function=_LOSS[ctx.task],
            iterations=rounds,
            random_seed=ctx.seed,
            thread_count=ctx.threads,
            task_type="CPU",
            allow_writing_files=False,  # no catboost_info folder in the working directory
            logging_level="Silent",
        )
        if ctx.task == "multiclass":
            p["classes_count"] = ctx.n_classes
        return p

    def fit(
        self,
        train: Design,
        y: np.ndarray,
        *,
        valid: tuple[Design, np.ndarray] | None = None,
        weights: np.ndarray | None = None,
    ) -> CatBoostFamily:
        import catboost as cb

        rounds = int(self.params.get("rounds") or self.params["max_rounds"])
        model = cb.CatBoost(self._cb_params(rounds))
        early: dict[str, Any] = {}
        if valid is not None and "rounds" not in self.params:
            early = {
                "eval_set": _pool(valid[0], valid[1]),
                "early_stopping_rounds": int(self.params["early_stopping_rounds"]),
                "use_best_model": True,
            }
        model.fit(
            _pool(train, y, weights),
            callbacks=[_Deadline(self.ctx)],
            log_cout=_Log(),
            log_cerr=_Log(),
            **early,
        )
        self.model_ = model
        self.fitted_ = {"rounds": int(model.tree_count_)}
        return self

    def predict_raw(self, design: Design) -> np.ndarray:
        threads = self.ctx.threads if design.n_rows >= PARALLEL_ROWS else 1
        kind = "RawFormulaVal" if self.ctx.task == "regression" else "Probability"
        raw = np.asarray(
            self.model_.predict(_data(design), prediction_type=kind, thread_count=threads),
            dtype="float64",
        )
        if self.ctx.task == "regression":
            return raw.reshape(-1)
        return self._probabilities(raw)

    def contributions(self, design: Design) -> np.ndarray:
        """SHAP values, (rows, outputs, columns), without the expected-value column."""
        values = np.asarray(
            self.model_.get_feature_importance(
                data=_pool(design), type="ShapValues", thread_count=1, log_cout=_Log()
            ),
            dtype="float64",
        )
        p = design.X.shape[1]
        return values.reshape(len(values), -1, p + 1)[:, :, :p]

    def categorical_features(self) -> list[int]:
        """The design columns the fitted model treats as categories."""
        return [int(i) for i in self.model_.get_cat_feature_indices()]

    def model_json(self) -> dict[str, Any]:
        """The fitted model in CatBoost's JSON format (trees, borders, leaf values)."""
        import json
        import tempfile

        with tempfile.TemporaryDirectory(prefix="mlwright-catboost-") as tmp:
            path = Path(tmp) / "model.json"
            self.model_.save_model(str(path), format="json")
            loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded

    def save(self, folder: Path) -> list[str]:
        # CatBoost stamps a random model id and the training's finish time into the file: out,
        # so that the same fit writes the same bytes (and the package the same checksums)
        metadata = self.model_.get_metadata()
        for key in ("model_guid", "train_finish_time"):
            if key in metadata:
                del metadata[key]
        self.model_.save_model(str(folder / _FILE), format="cbm")
        return [_FILE]

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], ctx: FitContext, fitted: dict[str, Any]
    ) -> CatBoostFamily:
        import catboost as cb

        family = cls(params, ctx)
        model = cb.CatBoost()
        model.load_model(str(folder / _FILE), format="cbm")
        family.model_ = model
        family.fitted_ = dict(fitted)
        return family


def _data(design: Design) -> np.ndarray:
    """The matrix CatBoost reads: floats, or (with categories) objects whose category columns
    hold integer codes, missing as -1."""
    if not design.categorical:
        return design.X
    data = design.X.astype(object)
    for j in design.categorical:
        codes = design.X[:, j]
        data[:, j] = np.where(np.isnan(codes), -1, codes).astype(np.int64)
    return data


def _pool(design: Design, y: np.ndarray | None = None, weights: np.ndarray | None = None) -> Any:
    import catboost as cb

    return cb.Pool(
        _data(design),
        label=y,
        weight=weights,
        cat_features=design.categorical or None,
        feature_names=[f"f{i}" for i in range(design.X.shape[1])],
        thread_count=1,
    )


class _Log:
    """CatBoost's output stream: its messages go to the debug log, never to stdout."""

    def write(self, text: str) -> None:
        if text.strip():
            log.debug("catboost: %s", text.strip())


class _Deadline:
    """Stops boosting when the run's clock runs out (keeps the rounds done so far; CatBoost
    calls it after each round, so at least one tree is kept)."""

    def __init__(self, ctx: FitContext) -> None:
        self.ctx = ctx

    def after_iteration(self, info: Any) -> bool:
        return not self.ctx.out_of_time()
