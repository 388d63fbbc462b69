"""MLW106 hardcoded-hyperparameters: numbers written into optimizer, DataLoader, fit and model
constructor calls (and epoch loops) instead of coming from a config or arguments."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from mlwright.audit.core import Source, rule
from mlwright.audit.rules.common import from_ml_library, is_literal_number, last, literal_text

NOT_HYPERPARAMETERS = {
    "random_state",
    "seed",
    "random_seed",
    "n_jobs",
    "verbose",
    "verbosity",
    "num_workers",
    "device",
    "nthread",
    "num_threads",
    "thread_count",
    "pin_memory",
    "prefetch_factor",
    "persistent_workers",
    "drop_last",
    "shuffle",
    "dim",
    "axis",
    "in_features",
    "out_features",
    "padding_idx",
    "print_every",
    "log_every",
    "save_every",
    "cv",
    "n_splits",
    "test_size",
    "train_size",
    "max_iter",
}
FIT_KEYWORDS = {
    "epochs",
    "batch_size",
    "learning_rate",
    "lr",
    "n_estimators",
    "num_boost_round",
    "max_epochs",
    "steps_per_epoch",
    "early_stopping_rounds",
}
ESTIMATOR_SUFFIXES = (
    "Classifier",
    "Regressor",
    "Ranker",
    "Regression",
    "SVC",
    "SVR",
    "KMeans",
    "Ridge",
    "Lasso",
    "ElasticNet",
    "Boost",
    "Forest",
    "Tree",
)
FIX = (
    "read them from a config file or command-line arguments (e.g. config['lr'], args.lr) "
    "and record them with the run"
)


@rule(
    "MLW106",
    "hardcoded-hyperparameters",
    "low",
    "hyperparameters written as literals instead of coming from a config or arguments",
)
def hardcoded(src: Source) -> Iterator[tuple[ast.AST, str, str]]:
    modules = _module_classes(src)
    for call in src.calls:
        name = src.qualname(call.func) or ""
        short = last(name)
        literals: list[str] = []
        if name.startswith("torch.optim.") and short[:1].isupper():
            if len(call.args) >= 2 and is_literal_number(call.args[1]):
                literals.append(f"lr={literal_text(call.args[1])}")
            literals += _keywords(call)
        elif short == "DataLoader":
            literals += _keywords(call, only={"batch_size"})
        elif isinstance(call.func, ast.Attribute) and call.func.attr in ("fit", "train"):
            literals += _keywords(call, only=FIT_KEYWORDS)
        elif from_ml_library(name) and short.endswith(ESTIMATOR_SUFFIXES) and "." in name:
            literals += _keywords(call)
        elif short in modules or (name.startswith("torch.nn.") and short.startswith("Dropout")):
            literals += _keywords(call)
            literals += [
                literal_text(a)
                for a in call.args
                if is_literal_number(a) and short.startswith("Dropout")
            ]
        if literals:
            shown = short or ast.unparse(call.func)
            yield (call, f"hard-coded hyperparameters in {shown}(...): {', '.join(literals)}", FIX)
    for loop in src.of(ast.For):
        if (
            isinstance(loop, ast.For)
            and isinstance(loop.target, ast.Name)
            and "epoch" in loop.target.id.lower()
            and isinstance(loop.iter, ast.Call)
        ):
            args = loop.iter.args
            stop = args[0] if len(args) == 1 else args[1] if len(args) > 1 else None
            if src.qualname(loop.iter.func) == "range" and stop and is_literal_number(stop):
                yield (
                    loop,
                    f"the number of epochs is hard-coded: range("
                    f"{', '.join(literal_text(a) for a in loop.iter.args)})",
                    FIX,
                )


def _keywords(call: ast.Call, only: set[str] | None = None) -> list[str]:
    return [
        f"{k.arg}={literal_text(k.value)}"
        for k in call.keywords
        if k.arg
        and k.arg not in NOT_HYPERPARAMETERS
        and (only is None or k.arg in only)
        and is_literal_number(k.value)
    ]


def _module_classes(src: Source) -> set[str]:
    """Classes defined in the file that are PyTorch (or Lightning) modules."""
    out = set()
    for node in src.of(ast.ClassDef):
        bases = {last(src.qualname(b) or "") for b in node.bases}
        if bases & {"Module", "LightningModule"}:
            out.add(node.name)
    return out


__all__ = ["hardcoded"]
