"""The one contract every model family implements, and its search space (package data).

A family is constructed from its hyperparameters (nothing is learned in ``__init__``), fitted on
a :class:`~mlwright.train.models.features.Design`, predicts raw outputs (class probabilities of
shape (n, k), or values of shape (n,)), and saves / loads itself in its library's native format.
"""

from __future__ import annotations

import importlib
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlwright.data.tasks import TASKS, Task
from mlwright.errors import ConfigError
from mlwright.runtime import is_command_line
from mlwright.stopping import stop_requested
from mlwright.train.models.features import Design, View

# predictions on fewer rows use one thread: waking a thread pool costs more than it saves
PARALLEL_ROWS = 512


@dataclass(frozen=True)
class FitContext:
    """What a fit may use besides the data: the task, the seed, threads and the clock."""

    task: Task
    n_classes: int
    seed: int
    threads: int
    deadline: float | None = None  # time.monotonic() value after which training should stop
    verbose: bool = False
    on_epoch: Callable[[int, dict[str, float]], None] | None = None  # per-epoch metrics (MLP)

    def out_of_time(self) -> bool:
        """The clock ran out, or the process was asked to stop (a fit ends at its next round
        either way)."""
        return stop_requested() or (self.deadline is not None and time.monotonic() >= self.deadline)


def booster_library(name: str) -> Any:
    """``lightgbm`` or ``xgboost``, imported to load a model. Both import scikit-learn for their
    scikit-learn API, which mlwright never uses (it trains and loads their boosters): in
    mlwright's own command line, where no other code shares the process, they are imported
    without it while it is not loaded yet (0.7 s of every ``mlwright predict`` of such a model).
    Anywhere else they are imported as they are."""
    if name in sys.modules or not is_command_line() or "sklearn" in sys.modules:
        return importlib.import_module(name)
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # their `import sklearn` fails
    try:
        return importlib.import_module(name)
    finally:
        if sys.modules.get("sklearn", sys) is None:
            del sys.modules["sklearn"]


class Family(ABC):
    name: ClassVar[str]
    view: ClassVar[View]
    tasks: ClassVar[tuple[Task, ...]] = TASKS
    about: ClassVar[str]
    # a default trial's time relative to LightGBM's on the same rows: the budget's estimate
    # for a family until one of its own trials has been timed
    relative_cost: ClassVar[float] = 1.0
    # how a fit's time grows with its rows (time ∝ rows ** rows_exponent): below 1 for boosting
    # with histograms and early stopping, about 1 for forests
    rows_exponent: ClassVar[float] = 1.0

    # --- facts the plan and the package read (design/plan.py, package/) ---------------------
    # where the family comes in the default plan: families are tried in this order
    plan_order: ClassVar[int] = 100
    # what the plan calls the family's models when it explains leaving it out
    noun: ClassVar[str] = "this family"
    # typical p99 of a single-row prediction on 2 cores where it is slow enough to rule the
    # family out under a latency budget (None: fast enough for any)
    single_row_ms: ClassVar[float | None] = None
    # training rows above which the family is not tried: slow to fit, large on disk (None: any)
    max_rows: ClassVar[int | None] = None
    # bytes on disk per training row, for families whose package grows with the rows
    disk_bytes_per_row: ClassVar[int | None] = None
    # seconds a default trial takes, all folds together, per cell (row x column) the search
    # trains on, for the families that a short timed search leaves out (None: never)
    default_trial_seconds_per_cell: ClassVar[float | None] = None
    # the fewest rows, and seconds of budget, from which the plan tries the family unasked
    min_rows: ClassVar[int] = 0
    min_budget: ClassVar[float] = 0.0
    # the package exports to ONNX (:mod:`mlwright.package.onnx_export` builds its graph)
    onnx: ClassVar[bool] = False
    # the library a package of the family needs: (its key in the recipe's library_versions,
    # its pip distribution); None when mlwright's own requirements cover it
    requirement: ClassVar[tuple[str, str] | None] = None

    def __init__(self, params: dict[str, Any], ctx: FitContext) -> None:
        self.params = dict(params)
        self.ctx = ctx
        self.fitted_: dict[str, Any] = {}  # what fitting learned that a refit must reuse

    @abstractmethod
    def fit(
        self,
        train: Design,
        y: np.ndarray,
        *,
        valid: tuple[Design, np.ndarray] | None = None,
        weights: np.ndarray | None = None,
    ) -> Family:
        """Fit; ``valid`` may be used for early stopping. Sets ``fitted_``."""

    @abstractmethod
    def predict_raw(self, design: Design) -> np.ndarray:
        """Class probabilities (n, k) for classification, values (n,) for regression."""

    def predict_encoded(self, encode: Callable[[View], Design]) -> np.ndarray:
        """Raw outputs from ``encode(view)``; an ensemble's members ask for several views."""
        return self.predict_raw(encode(self.view))

    @property
    def components(self) -> list[str]:
        """The family names inside this model (an ensemble lists its members')."""
        return [self.name]

    @abstractmethod
    def save(self, folder: Path) -> list[str]:
        """Write native model files into ``folder``; returns their names."""

    @classmethod
    @abstractmethod
    def load(
        cls, folder: Path, params: dict[str, Any], ctx: FitContext, fitted: dict[str, Any]
    ) -> Family:
        """Rebuild a fitted family from ``save``'s files."""

    def refit_params(self) -> dict[str, Any]:
        """Hyperparameters for a refit on all rows without a validation set (e.g. the number
        of boosting rounds that early stopping chose)."""
        return dict(self.params)

    @classmethod
    def space(cls) -> SearchSpace:
        return load_space(cls.name)

    def _probabilities(self, raw: np.ndarray) -> np.ndarray:
        """(n,) positive-class probabilities or (n, k) into (n, k), rows summing to 1."""
        if raw.ndim == 1:
            raw = np.column_stack([1.0 - raw, raw])
        raw = np.clip(raw, 0.0, 1.0)
        return np.asarray(raw / np.clip(raw.sum(axis=1, keepdims=True), 1e-15, None))


class BoostedFamily(Family):
    """Gradient boosting with early stopping: ``max_rounds`` and ``early_stopping_rounds`` drive
    the search fit; ``rounds`` (set by ``refit_params``) fixes the count for a refit."""

    rows_exponent = 0.6

    CONTROL: ClassVar[tuple[str, ...]] = ("max_rounds", "early_stopping_rounds", "rounds")

    def booster_params(self) -> dict[str, Any]:
        """The hyperparameters the library sees (without the round controls)."""
        return {k: v for k, v in self.params.items() if k not in self.CONTROL}

    def refit_params(self) -> dict[str, Any]:
        # a refit sees more rows than a fold: a few more rounds than early stopping chose
        return {**self.params, "rounds": max(1, round(self.fitted_["rounds"] * 1.1))}


# --- search spaces -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def sample(self, rng: np.random.Generator) -> Any:
        if self.type == "categorical":
            return self.choices[int(rng.integers(len(self.choices)))]
        assert self.low is not None and self.high is not None
        if self.log:
            value = float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))
        else:
            value = float(rng.uniform(self.low, self.high))
        if self.type == "int":
            return round(value)
        return round(value, 6)


@dataclass(frozen=True)
class SearchSpace:
    family: str
    defaults: dict[str, Any]
    portfolio: tuple[dict[str, Any], ...]
    params: tuple[Param, ...]

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {**self.defaults, **{p.name: p.sample(rng) for p in self.params}}

    def to_dict(self) -> dict[str, Any]:
        return {
            "defaults": self.defaults,
            "portfolio": list(self.portfolio),
            "space": {
                p.name: {
                    k: v
                    for k, v in (
                        ("type", p.type),
                        ("low", p.low),
                        ("high", p.high),
                        ("log", p.log),
                        ("choices", list(p.choices)),
                    )
                    if v not in (None, False, [])
                }
                for p in self.params
            },
        }


@cache
def load_space(family: str) -> SearchSpace:
    import yaml

    text = resources.files("mlwright.train.models").joinpath(f"spaces/{family}.yaml").read_text()
    raw = yaml.safe_load(text)
    unknown = set(raw) - {"defaults", "portfolio", "space"}
    if unknown:
        raise ConfigError(f"search space of {family!r} has unknown keys {sorted(unknown)}")
    params = []
    for name, spec in (raw.get("space") or {}).items():
        params.append(
            Param(
                name=name,
                type=spec["type"],
                low=spec.get("low"),
                high=spec.get("high"),
                log=bool(spec.get("log", False)),
                choices=tuple(spec.get("choices", ())),
            )
        )
    return SearchSpace(
        family=family,
        defaults=dict(raw.get("defaults") or {}),
        portfolio=tuple({**raw.get("defaults", {}), **p} for p in raw.get("portfolio") or ()),
        params=tuple(params),
    )


def all_classes(proba: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Columns for every class, even those absent from a fold's training rows."""
    if proba.shape[1] == n_classes:
        return proba
    full = np.zeros((proba.shape[0], n_classes))
    full[:, np.asarray(seen, dtype=int)] = proba
    return full
