"""MLW102 fit-without-validation and MLW103 preprocessing-before-split (leakage)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from mlwright.audit.core import Source, rule
from mlwright.audit.rules.common import has_validation, last, method_calls, training_calls

PREPROCESSORS = {
    "StandardScaler",
    "MinMaxScaler",
    "MaxAbsScaler",
    "RobustScaler",
    "Normalizer",
    "QuantileTransformer",
    "PowerTransformer",
    "SimpleImputer",
    "KNNImputer",
    "IterativeImputer",
    "OneHotEncoder",
    "OrdinalEncoder",
    "TargetEncoder",
    "PCA",
    "TruncatedSVD",
    "SelectKBest",
    "SelectPercentile",
    "SelectFromModel",
    "RFE",
    "TfidfVectorizer",
    "CountVectorizer",
    "PolynomialFeatures",
    "KBinsDiscretizer",
    "SplineTransformer",
    "FunctionTransformer",
}
SPLITTERS = ("train_test_split",)


@rule(
    "MLW102",
    "fit-without-validation",
    "high",
    "a model trained with no split, cross-validation or validation set in sight",
)
def fit_without_validation(src: Source) -> Iterator[tuple[ast.AST, str, str]]:
    trained = training_calls(src)
    if not trained or has_validation(src):
        return
    first = trained[0]
    what = "a training loop" if getattr(first.func, "attr", "") == "backward" else "a model"
    yield (
        first,
        f"{what} is trained on all the data: no split, cross-validation or "
        "validation set anywhere in this file, so nothing measures how it generalises",
        "hold out data (train_test_split, a validation DataLoader) or cross-validate, and "
        "report the held-out score",
    )


@rule(
    "MLW103",
    "preprocessing-before-split",
    "high",
    "a preprocessor fitted on data that is split afterwards: the test rows leak into it",
)
def preprocessing_before_split(src: Source) -> Iterator[tuple[ast.AST, str, str]]:
    splits = [c for c, _ in src.calls_to(lambda n: last(n) in SPLITTERS)]
    if not splits:
        return
    fitted = _preprocessor_names(src)
    for call in method_calls(src, "fit", "fit_transform"):
        target = call.func.value  # type: ignore[attr-defined]
        kind = _preprocessor_kind(src, target, fitted)
        if kind is None or not call.args:
            continue
        scope = src.scope_of(call)
        data = _names(call.args[0])
        produced = _assigned_names(src, call)
        later = [s for s in splits if src.scope_of(s) is scope and s.lineno > call.lineno]
        for split in later:
            split_inputs = set().union(*(_names(a) for a in split.args))
            if split_inputs & (data | produced):
                shown = ast.unparse(call.args[0])
                yield (
                    call,
                    f"{kind} is fitted on `{shown}` before train_test_split (line "
                    f"{split.lineno}) splits it: statistics of the test rows leak into the "
                    "preprocessing and the test score is optimistic",
                    f"split first, then fit the {kind} on the training part only (or put it "
                    "in a Pipeline that is fitted after the split)",
                )
                break


def _preprocessor_names(src: Source) -> dict[str, str]:
    """Variables assigned a preprocessor: name → its class."""
    out = {}
    for node in src.of(ast.Assign):
        if isinstance(node.value, ast.Call):
            name = src.qualname(node.value.func)
            if name and last(name) in PREPROCESSORS:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        out[target.id] = last(name)
    return out


def _preprocessor_kind(src: Source, target: ast.AST, fitted: dict[str, str]) -> str | None:
    if isinstance(target, ast.Name):
        return fitted.get(target.id)
    if isinstance(target, ast.Call):  # StandardScaler().fit_transform(X)
        name = src.qualname(target.func)
        if name and last(name) in PREPROCESSORS:
            return last(name)
    return None


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _assigned_names(src: Source, call: ast.Call) -> set[str]:
    parent = src.parents.get(call)
    if isinstance(parent, ast.Assign):
        return set().union(*(_names(t) for t in parent.targets))
    return set()


__all__ = ["fit_without_validation", "preprocessing_before_split"]
