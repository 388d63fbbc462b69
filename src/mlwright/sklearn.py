"""mlwright as scikit-learn estimators: :class:`AutoClassifier` and :class:`AutoRegressor`.

Each ``fit`` is one mlwright training run (profile, plan, search, refit) on ``X`` and ``y``; the
trained :class:`~mlwright.package.model.Model` is kept as ``model_`` and answers ``predict``.
The estimators follow scikit-learn's conventions, so they clone, go into a ``Pipeline`` and work
with ``cross_val_score`` and ``GridSearchCV``: the constructor stores its parameters unchanged,
``fit`` checks them (as :class:`~mlwright.config.TrainOptions`) and learns; learned state ends in
``_``. Tracking is off unless ``tracking=True``, so that cross-validation writes no MLflow runs.
A fitted estimator pickles as its model package (files, not Python objects).

This module goes through :mod:`mlwright.api`, never the stages below it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from mlwright.api import TrainOptions, load, train_with_options
from mlwright.errors import EstimatorInputError

if TYPE_CHECKING:
    from mlwright.api import Model

# set by the estimator itself: not accepted in ``options``
_OWN = {"target", "task", "out", "tracker"}


class _AutoEstimator(BaseEstimator):  # type: ignore[misc]
    """What both estimators share: parameters, input checks, training, pickling."""

    _task: ClassVar[str]  # "classification" or "regression"
    model_: Model  # learned by fit

    def __init__(
        self,
        *,
        time_budget: float | None = None,
        max_trials: int | None = None,
        metric: str | None = None,
        families: str | Sequence[str] | None = None,
        seed: int = 0,
        n_folds: int = 5,
        test_size: float = 0.2,
        threads: int | None = None,
        latency_budget_ms: float | None = None,
        max_model_mb: float | None = None,
        tracking: bool = False,
        experiment: str | None = None,
        name: str | None = None,
        output: str | Path | None = None,
        verbose: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.time_budget = time_budget
        self.max_trials = max_trials
        self.metric = metric
        self.families = families
        self.seed = seed
        self.n_folds = n_folds
        self.test_size = test_size
        self.threads = threads
        self.latency_budget_ms = latency_budget_ms
        self.max_model_mb = max_model_mb
        self.tracking = tracking
        self.experiment = experiment
        self.name = name
        self.output = output
        self.verbose = verbose
        self.options = options

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are the schema's business
        tags.non_deterministic = False  # one seed drives every random source
        return tags

    # --- training -------------------------------------------------------------------------------
    def _train(self, X: Any, y: Any) -> tuple[np.ndarray, Model]:
        """Check ``X`` and ``y``, train on them, and set the input attributes; returns the
        checked ``y`` and the model."""
        if y is None:
            raise EstimatorInputError(
                f"This {type(self).__name__} estimator requires y to be passed, "
                "but the target y is None",
                fix="pass the labels or values to learn as fit(X, y)",
            )
        frame = self._frame(X, reset=True)
        if len(frame) < 2:
            raise EstimatorInputError(
                f"X has {len(frame)} sample; training needs rows to learn from and rows to "
                "validate on",
                fix="pass more rows",
            )
        target = _target_name(y, frame.columns)
        y = self._target(y)
        check_consistent_length(frame, y)
        task = self._task
        if task == "classification":
            task = "binary" if len(np.unique(y)) == 2 else "multiclass"
        options = self._options(target, task)
        data = frame.assign(**{target: y})
        model = train_with_options(
            data, options, verbose=False, on_event=_print_event if self.verbose else None
        )
        return y, model

    def _options(self, target: str, task: str) -> TrainOptions:
        extra = dict(self.options or {})
        taken = sorted(_OWN.intersection(extra))
        if taken:
            raise EstimatorInputError(
                f"options {taken} are set by {type(self).__name__} itself",
                fix="leave them out (the output folder is the parameter output; "
                "tracking=True turns MLflow tracking on)",
            )
        named = {
            "time_budget": self.time_budget,
            "max_trials": self.max_trials,
            "metric": self.metric,
            "families": self.families,  # one name or several
            "seed": self.seed,
            "n_folds": self.n_folds,
            "test_size": self.test_size,
            "threads": self.threads,
            "latency_budget_ms": self.latency_budget_ms,
            "max_model_mb": self.max_model_mb,
            "experiment": self.experiment,
            "name": self.name,
        }
        twice = sorted(set(named).intersection(extra))
        if twice:
            raise EstimatorInputError(
                f"options {twice} are parameters of {type(self).__name__} too",
                fix="set them as parameters, not in options",
            )
        return TrainOptions.from_mapping(
            {
                **named,
                **extra,
                "target": target,
                "task": task,
                "out": None if self.output is None else str(self.output),
                "tracker": ("mlflow",) if self.tracking else ("none",),
            },
            source=f"{type(self).__name__} parameters",
        )

    def _target(self, y: Any) -> np.ndarray:
        raise NotImplementedError

    # --- input ----------------------------------------------------------------------------------
    def _frame(self, X: Any, *, reset: bool) -> pd.DataFrame:
        """``X`` as a frame with the column names training used (the frame's own names when
        they are all strings, else ``x0``, ``x1``, …)."""
        if isinstance(X, pd.DataFrame):
            frame = X
            if frame.shape[0] == 0 or frame.shape[1] == 0:
                raise EstimatorInputError(
                    f"X has shape {frame.shape}: no samples or no features",
                    fix="pass at least one row and one column",
                )
        else:
            frame = pd.DataFrame(_as_array(X))
        validate_data(self, frame, reset=reset, skip_check_array=True)
        names = getattr(self, "feature_names_in_", None)
        columns = [f"x{i}" for i in range(frame.shape[1])] if names is None else list(names)
        if list(frame.columns) != columns:
            frame = frame.set_axis(columns, axis=1)
        return frame

    def _features(self, X: Any) -> pd.DataFrame:
        """The model's enforced features for ``X`` (after the fitted check)."""
        check_is_fitted(self, "model_")
        features, _ = self.model_.prepare(self._frame(X, reset=False))
        return features

    # --- pickling: the model travels as its package's files -------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = dict(super().__getstate__())  # a copy: never self.__dict__
        model = state.get("model_")
        if model is not None:
            state["model_"] = _PackedModel.of(model)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        packed = state.get("model_")
        if isinstance(packed, _PackedModel):
            state = {**state, "model_": packed.load(_threads(state))}
        super().__setstate__(state)


class AutoClassifier(ClassifierMixin, _AutoEstimator):  # type: ignore[misc]
    """An mlwright training run as a scikit-learn classifier.

    Parameters are the options of ``mlwright train`` (see docs/sklearn.md): ``time_budget``
    (seconds per fit; default 60 unless ``max_trials``), ``max_trials``, ``metric``,
    ``families``, ``seed``, ``n_folds``, ``test_size``, ``threads``, ``latency_budget_ms``,
    ``max_model_mb``; ``tracking`` (off by default: no MLflow run per fit), ``experiment``,
    ``name``; ``output``, a folder to keep the model package in (default: none written);
    ``verbose``, print the run's progress; ``options``, any other ``mlwright train`` option.

    Fitted attributes: ``classes_``, ``n_features_in_``, ``feature_names_in_`` (when ``X`` is a
    frame with string column names) and ``model_``, the trained mlwright model. ``predict``
    gives the model's decision (for two classes, at the threshold training tuned out of fold).
    """

    _task = "classification"
    classes_: np.ndarray  # learned by fit

    def fit(self, X: Any, y: Any) -> AutoClassifier:
        """Train on ``X`` (an array or a DataFrame) and ``y`` (the labels)."""
        y, model = self._train(X, y)
        self.classes_ = np.unique(y)
        self.model_ = model
        return self

    def _target(self, y: Any) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        check_array(y, ensure_2d=False, dtype=None, input_name="y")
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise EstimatorInputError(
                f"y has one class ({classes[0]!r}); a classifier needs at least two",
                fix="pass rows of at least two classes",
            )
        return np.asarray(y)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted class of each row of ``X``."""
        features = self._features(X)
        labels = self.model_.labels(self.model_.raw(features))
        return np.asarray(self.classes_[self._class_index(labels)])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per class in the order of ``classes_``."""
        features = self._features(X)
        raw = np.asarray(self.model_.raw(features))
        order = self._class_index(np.asarray(self.model_.classes, dtype=object))
        proba = np.empty_like(raw)
        proba[:, order] = raw
        return proba

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):  # a probability of 0 is a log of -inf
            log: np.ndarray = np.log(self.predict_proba(X))
        return log

    def _class_index(self, labels: np.ndarray) -> np.ndarray:
        """The position in ``classes_`` of each of the model's labels."""
        index: np.ndarray = pd.Index(self.classes_).get_indexer(pd.Index(labels, dtype=object))
        if (index < 0).any():  # labels the model wrote another way (1 for 1.0, "1" for 1)
            by_text = {str(c): i for i, c in enumerate(self.classes_)}
            index = np.array([by_text.get(str(label), -1) for label in labels])
        if (index < 0).any():
            unknown = sorted({str(label) for label, i in zip(labels, index, strict=True) if i < 0})
            raise EstimatorInputError(
                f"the model's classes {unknown} are not among classes_ {list(self.classes_)}",
                fix="fit the estimator again",
            )
        return index


class AutoRegressor(RegressorMixin, _AutoEstimator):  # type: ignore[misc]
    """An mlwright training run as a scikit-learn regressor; parameters and fitted attributes as
    :class:`AutoClassifier`'s (without ``classes_``)."""

    _task = "regression"

    def fit(self, X: Any, y: Any) -> AutoRegressor:
        """Train on ``X`` (an array or a DataFrame) and ``y`` (numbers)."""
        _, self.model_ = self._train(X, y)
        return self

    def _target(self, y: Any) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        checked: np.ndarray = check_array(y, ensure_2d=False, dtype="numeric", input_name="y")
        return checked.astype("float64")

    def predict(self, X: Any) -> np.ndarray:
        """The predicted value of each row of ``X``."""
        features = self._features(X)
        return np.asarray(self.model_.raw(features), dtype="float64")


# --- helpers -------------------------------------------------------------------------------------


def _as_array(X: Any) -> np.ndarray:
    """``X`` (not a frame) as a 2-D array: numbers as numbers; an object array of numbers and
    text keeps its text (mlwright reads it as categories)."""
    array: np.ndarray = check_array(
        X, dtype=None, ensure_all_finite="allow-nan", accept_sparse=False, input_name="X"
    )
    if array.dtype == object:
        try:
            return np.asarray(array.astype("float64"))
        except ValueError:  # text; a TypeError (a dict, a list) goes to the caller
            return array
    return array


def _target_name(y: Any, columns: pd.Index) -> str:
    """The target's column name: ``y``'s own name when it is a named Series, else ``target``;
    never one of the features'."""
    name = getattr(y, "name", None)
    base = name if isinstance(name, str) and name else "target"
    taken = {str(c) for c in columns}
    candidate, n = base, 1
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def _print_event(kind: str, payload: Any) -> None:
    """``verbose=True``: one line per step, decision and trial of the run."""
    if kind in ("step", "decision"):
        print(payload)
    elif kind == "trial":
        score = "-" if payload.mean is None else f"{payload.mean:.4f}"
        print(f"trial {payload.number} {payload.family}: {payload.status} {score}")


def _threads(state: Mapping[str, Any]) -> int | None:
    threads = state.get("threads")
    return threads if isinstance(threads, int) else None


class _PackedModel:
    """A model's package as bytes (file path → content), written and read through the API."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    @classmethod
    def of(cls, model: Model) -> _PackedModel:
        with tempfile.TemporaryDirectory(prefix="mlwright-estimator-") as tmp:
            folder = replace(model, reporter=None).save(Path(tmp) / "model")
            files = {
                path.relative_to(folder).as_posix(): path.read_bytes()
                for path in sorted(folder.rglob("*"))
                if path.is_file()
            }
        return cls(files)

    def load(self, threads: int | None) -> Model:
        with tempfile.TemporaryDirectory(prefix="mlwright-estimator-") as tmp:
            folder = Path(tmp) / "model"
            for name, content in self.files.items():
                path = folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            model = load(folder, threads=threads)
        model.path = None  # the folder is gone
        return model  # type: ignore[return-value]


__all__ = ["AutoClassifier", "AutoRegressor"]
