"""What several rules look for: names of ML libraries' estimators, validation signals."""

from __future__ import annotations

import ast
import re

from mlwright.audit.core import Source

ML_LIBRARIES = ("sklearn", "xgboost", "lightgbm", "catboost")
SPLITS = (
    "train_test_split",
    "cross_val_score",
    "cross_validate",
    "cross_val_predict",
    "GridSearchCV",
    "RandomizedSearchCV",
    "HalvingGridSearchCV",
    "HalvingRandomSearchCV",
    "KFold",
    "StratifiedKFold",
    "GroupKFold",
    "StratifiedGroupKFold",
    "RepeatedKFold",
    "RepeatedStratifiedKFold",
    "TimeSeriesSplit",
    "ShuffleSplit",
    "StratifiedShuffleSplit",
    "GroupShuffleSplit",
    "LeaveOneOut",
    "LeaveOneGroupOut",
    "PredefinedSplit",
    "random_split",
    "learning_curve",
    "validation_curve",
    "cv",
)
VALIDATION_KEYWORDS = {
    "eval_set",
    "validation_data",
    "validation_split",
    "valid_sets",
    "evals",
    "cv",
    "val_dataloaders",
    "eval_dataset",
    "validation_fraction",
    "early_stopping",
}
HELD_OUT = re.compile(r"(^|_)(val|valid|validation|test|holdout|dev|eval)(_|$|\d)", re.I)
TRACKERS = (
    "mlflow",
    "wandb",
    "tensorboard",
    "tensorboardX",
    "neptune",
    "comet_ml",
    "clearml",
    "aim",
    "dvclive",
    "mlwright",
    "sacred",
    "guild",
    "polyaxon",
    "swanlab",
)


def last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def from_ml_library(name: str) -> bool:
    """A name from scikit-learn, XGBoost, LightGBM or CatBoost (or a bare, unresolved one)."""
    return "." not in name or name.split(".")[0] in ML_LIBRARIES


def has_validation(src: Source) -> bool:
    """Any sign of held-out evaluation in the file: a split or cross-validation, a validation
    keyword, a name like X_test or val_loader, or a model switched to eval()."""
    if src.called(*SPLITS):
        return True
    for call in src.calls:
        if any(k.arg in VALIDATION_KEYWORDS for k in call.keywords):
            return True
    names = {n.id for n in src.of(ast.Name)} | {n.attr for n in src.of(ast.Attribute)}
    names |= {a.arg for a in src.of(ast.arg, ast.keyword) if a.arg is not None}
    return any(HELD_OUT.search(name) for name in names)


def method_calls(src: Source, *methods: str) -> list[ast.Call]:
    return [c for c in src.calls if isinstance(c.func, ast.Attribute) and c.func.attr in methods]


def training_calls(src: Source) -> list[ast.Call]:
    """Where the file trains: fit(X, y), a backward pass, or a library's train()."""
    fits = [
        c
        for c in method_calls(src, "fit")
        if len(c.args) >= 2 or any(k.arg == "y" for k in c.keywords)
    ]
    backward = method_calls(src, "backward")
    trains = [c for c, _ in src.calls_to(lambda n: n in ("lightgbm.train", "xgboost.train"))]
    return sorted(fits + backward + trains, key=lambda c: (c.lineno, c.col_offset))


def is_literal_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def literal_text(node: ast.AST) -> str:
    return ast.unparse(node)
