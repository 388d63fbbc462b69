"""Saving scikit-learn estimators with skops, and loading them without trusting pickle.

A skops file is a zip whose ``schema.json`` names every object it will build (module, class and
the loader that builds it). Loading reads that schema first and refuses the file, naming the
types, unless every object is one that mlwright's own families write: the estimators and their
fitted parts, NumPy arrays and scalars, and plain containers. Nothing is built before the check.
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.errors import MlwrightError
from mlwright.runtime import is_command_line
from mlwright.train.models.base import PARALLEL_ROWS, Family, FitContext, all_classes
from mlwright.train.models.features import Design

# the exact types the scikit-learn families write (linear, random_forest, extra_trees, hist_gb)
_ESTIMATORS = {
    "sklearn.linear_model._logistic": ("LogisticRegression",),
    "sklearn.linear_model._ridge": ("Ridge",),
    "sklearn.ensemble._forest": (
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    ),
    "sklearn.tree._classes": (
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "ExtraTreeClassifier",
        "ExtraTreeRegressor",
    ),
    "sklearn.tree._tree": ("Tree",),
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting": (
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    ),
    "sklearn.ensemble._hist_gradient_boosting.binning": ("_BinMapper",),
    "sklearn.ensemble._hist_gradient_boosting.predictor": ("TreePredictor",),
    "sklearn.compose._column_transformer": ("ColumnTransformer",),
    "sklearn.preprocessing._encoders": ("OrdinalEncoder",),
    "sklearn.preprocessing._function_transformer": ("FunctionTransformer",),
    "sklearn.preprocessing._label": ("LabelEncoder",),
    "sklearn.utils.validation": ("check_array",),
    "sklearn._loss._loss": (
        "CyHalfBinomialLoss",
        "CyHalfMultinomialLoss",
        "CyHalfSquaredError",
    ),
    "sklearn._loss.link": ("IdentityLink", "Interval", "LogitLink", "MultinomialLogit"),
    "sklearn._loss.loss": ("HalfBinomialLoss", "HalfMultinomialLoss", "HalfSquaredError"),
    "numpy": (
        "ndarray",
        "bool_",
        *(f"int{b}" for b in (8, 16, 32, 64)),
        *(f"uint{b}" for b in (8, 16, 32, 64)),
        "float32",
        "float64",
        "str_",
    ),
    "numpy.random._generator": ("Generator",),
    # plain containers and JSON values; no builtin function, no type that runs code
    "builtins": ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType", "slice"),
    "functools": ("partial",),  # FunctionTransformer's check_array, with plain arguments
}
TRUSTED_TYPES = frozenset(f"{m}.{c}" for m, names in _ESTIMATORS.items() for c in names)
# how skops builds each object; a constructor call from a reduce tuple is never accepted
TRUSTED_LOADERS = frozenset(
    {
        "DictNode",
        "ListNode",
        "TupleNode",
        "JsonNode",
        "TypeNode",
        "SliceNode",
        "PartialNode",
        "FunctionNode",
        "ObjectNode",
        "NdArrayNode",
        "DTypeNode",
        "RandomGeneratorNode",
        "LossNode",
        "TreeNode",
    }
)


# skops lists scikit-learn's estimators when it is imported, and scikit-learn finds them by
# importing each of its packages, its vendored array-API shim for PyTorch among them: with PyTorch
# installed that imports PyTorch, two seconds of every model load. The shim is never an
# estimator (scikit-learn skips its "externals" in that list), so it is kept out of the walk.
_NEVER_ESTIMATORS = ("sklearn.externals.array_api_compat.torch",)


def _skops_io() -> Any:
    """``skops.io``, imported without the modules that cannot hold an estimator.

    That list is skops' default trust, which mlwright never relies on: every load names the
    types it trusts, after its own check. In mlwright's own command line, where no other code
    shares the process, skops is imported without the list at all (one to two seconds of every
    ``mlwright predict`` on a scikit-learn model); a program that imports mlwright keeps skops as
    it would be without it."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    blocked = [name for name in _NEVER_ESTIMATORS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # import fails; the walk goes on
    import sklearn.utils

    listing = sklearn.utils.all_estimators
    if is_command_line():
        sklearn.utils.all_estimators = _no_estimators
    try:
        import skops.io as sio
    finally:
        sklearn.utils.all_estimators = listing
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return sio


def _no_estimators(*args: Any, **kwargs: Any) -> list[tuple[str, type]]:
    return []


def dump(estimator: Any, path: Path) -> None:
    _skops_io().dump(estimator, path)


def load(path: Path) -> Any:
    """The estimator in ``path``, built only after every object it names passed the check."""
    sio = _skops_io()
    refused = sorted(set(untrusted_objects(path)))
    if refused:
        raise MlwrightError(
            f"{path} would create objects that mlwright never writes ({', '.join(refused[:8])}); "
            "refusing to load it",
            fix="only load packages written by mlwright; retrain the model from its data",
        )
    named = sio.get_untrusted_types(file=path)
    beyond = sorted(set(named) - TRUSTED_TYPES)
    if beyond:  # skops sees a type the schema walk did not: refuse rather than guess
        raise MlwrightError(
            f"{path} names types outside mlwright's list ({', '.join(beyond[:8])}); "
            "refusing to load it",
            fix="only load packages written by mlwright; retrain the model from its data",
        )
    try:
        return sio.load(path, trusted=named)
    except Exception as exc:  # a malformed file of allowed types: refused, never a crash
        raise MlwrightError(
            f"{path} is not a scikit-learn model mlwright can read ({type(exc).__name__}: "
            f"{str(exc)[:200]})",
            fix="only load packages written by mlwright; retrain the model from its data",
        ) from None


def untrusted_objects(path: Path) -> Iterator[str]:
    """Each object in the skops file at ``path`` that is not on mlwright's list, as
    ``module.Class (Loader)``; a file that is not a readable skops archive is refused whole."""
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError):
        yield f"{path.name} (not a readable skops file)"
        return
    for node in _nodes(schema):
        module, name, loader = node.get("__module__"), node.get("__class__"), node.get("__loader__")
        kind = f"{module}.{name}"
        if kind not in TRUSTED_TYPES or loader not in TRUSTED_LOADERS or not _pairs(kind, loader):
            yield f"{kind} ({loader})"


# a builtin is built only by its own node (a str through ObjectNode would be a str.__new__ with
# attributes set on it); objects from attributes are scikit-learn's alone
_BUILTIN_LOADERS = {
    "builtins.dict": {"DictNode"},
    "builtins.list": {"ListNode"},
    "builtins.tuple": {"TupleNode"},
    "builtins.slice": {"SliceNode"},
    "functools.partial": {"PartialNode"},
}


def _pairs(kind: str, loader: str) -> bool:
    """Whether ``loader`` is how mlwright's own files build an object of type ``kind``."""
    if loader == "TypeNode":
        return kind.startswith(("builtins.", "numpy."))
    if kind in _BUILTIN_LOADERS:
        return loader in _BUILTIN_LOADERS[kind]
    if kind.startswith("builtins."):
        return loader == "JsonNode"
    if loader in ("ObjectNode", "LossNode", "TreeNode", "FunctionNode"):
        return kind.startswith("sklearn.")
    return kind.startswith("numpy")  # NdArrayNode, DTypeNode, RandomGeneratorNode


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every object description in a skops schema, however deeply nested (without recursion,
    so that a deep hostile file cannot exhaust the stack)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__class__" in item or "__loader__" in item or "__module__" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class SklearnFamily(Family):
    """A family whose fitted state is one scikit-learn estimator in ``model_``."""

    model_: Any
    _pools: Any = None  # threadpoolctl's view of the loaded OpenMP/BLAS libraries

    def predict_raw(self, design: Design) -> np.ndarray:
        if hasattr(self.model_, "n_jobs"):  # a joblib pool costs more than a few rows take
            self.model_.n_jobs = self.ctx.threads if design.n_rows >= PARALLEL_ROWS else 1
        with self._thread_limit():
            if self.ctx.task == "regression":
                return np.asarray(self.model_.predict(design.X), dtype="float64")
            proba = np.asarray(self.model_.predict_proba(design.X), dtype="float64")
        return all_classes(proba, self.model_.classes_, self.ctx.n_classes)

    def _thread_limit(self) -> Any:
        """OpenMP and BLAS inside scikit-learn use ``ctx.threads``, not every core."""
        if self._pools is None:
            from threadpoolctl import ThreadpoolController

            self._pools = ThreadpoolController()
        return self._pools.limit(limits=self.ctx.threads)

    def save(self, folder: Path) -> list[str]:
        name = f"{self.name}.skops"
        dump(self.model_, folder / name)
        return [name]

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], ctx: FitContext, fitted: dict[str, Any]
    ) -> Family:
        family = cls(params, ctx)
        assert isinstance(family, SklearnFamily)
        family.model_ = load(folder / f"{cls.name}.skops")
        if hasattr(family.model_, "n_jobs"):
            family.model_.n_jobs = ctx.threads
        family.fitted_ = dict(fitted)
        return family
