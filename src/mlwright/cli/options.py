"""What the commands share: the help of common arguments, the choices of options that take a
fixed set of values (help lists them; any other value is a usage error, exit 2), the
``--threads`` option, hidden earlier spellings, and the examples every command's help ends with.

One spelling per option everywhere: ``-o/--output``, ``-c/--config``, ``-q/--quiet``,
``-t/--target``. An earlier spelling (``train --out``, ``--no-quiet``, ``train --workers``) is a
hidden option of its own that still works; :func:`either` merges it into the current one.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

import typer

MODEL_HELP = "The model: a package folder, NAME@ALIAS or NAME/VERSION (a registered model)."
DATA_HELP = (
    "CSV or Parquet path, a directory or glob of Parquet files (train), or a SQLAlchemy URL "
    "with --sql."
)
SQL_HELP = "Query to run when DATA is a database URL."
STORE_HELP = "The serving store the server writes (its --store)."

# the values each choice accepts; tests/cli/test_help.py checks them against the modules that
# act on them (the task list, TrainOptions, ServeOptions, the audit's severities)
Task = Literal["binary", "multiclass", "regression"]
TrainBackend = Literal["local", "ray"]
ServeBackend = Literal["uvicorn", "ray-serve"]


class Tracker(StrEnum):  # an Enum, not a Literal: the option is repeatable
    mlflow = "mlflow"
    wandb = "wandb"
    none = "none"


Metric = Literal[
    "roc_auc",
    "log_loss",
    "accuracy",
    "balanced_accuracy",
    "f1",
    "f1_macro",
    "average_precision",
    "rmse",
    "mae",
    "r2",
    "mape",
]


class Family(StrEnum):  # repeatable; mlp needs PyTorch (the torch extra)
    lightgbm = "lightgbm"
    xgboost = "xgboost"
    catboost = "catboost"
    hist_gb = "hist_gb"
    linear = "linear"
    random_forest = "random_forest"
    extra_trees = "extra_trees"
    mlp = "mlp"


ExportFormat = Literal["onnx", "triton"]
AuditFormat = Literal["text", "json", "sarif"]
Severity = Literal["low", "medium", "high"]


def _within(bounds: str, holds: Callable[[float], bool]) -> Callable[[str], float]:
    """A parser of a number that must satisfy ``holds`` (written ``bounds``, e.g. ``0<x<1``):
    any other value is a usage error (exit 2) that names the bounds."""

    def parse(value: str | float) -> float:
        try:
            number = float(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a number") from None
        if not holds(number):
            raise typer.BadParameter(f"{value} is not in the range {bounds}")
        return number

    return parse


# numbers with bounds (their metavar is FLOAT_METAVAR)
POSITIVE = _within("x>0", lambda x: x > 0)
TEST_SHARE = _within("0<=x<0.9", lambda x: 0 <= x < 0.9)
LEVEL = _within("0<x<1", lambda x: 0 < x < 1)
FLOAT_METAVAR = "<float>"

THREADS_HELP = (
    "Threads per model, or auto (the default): the cores this process may use, shared by what "
    "runs at once (a local training fit gets them all; a trial on Ray, or a served predict "
    "call, gets 1)."
)
THREADS_METAVAR = "<N|auto>"


def threads(value: str | int | None) -> int | None:
    """``--threads``: a whole number of at least 1, or ``auto`` (None: the command decides)."""
    if value is None or value == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a whole number nor auto") from None
    if count < 1:
        raise typer.BadParameter(f"{count} is less than 1; give 1 or more, or auto")
    return count


# ``--threads`` as every command spells it (the parameter is ``threads_``: ``threads`` parses)
Threads = Annotated[
    int | None,
    typer.Option("--threads", parser=threads, metavar=THREADS_METAVAR, help=THREADS_HELP),
]

T = TypeVar("T")


def either(current: T | None, earlier: T | None, flags: str) -> T | None:
    """The value of an option given in its current spelling or its earlier, hidden one
    (``flags``: "--output/--out"); both at once is a usage error."""
    if current is not None and earlier is not None and current != earlier:
        new, old = flags.split("/", 1)
        raise typer.BadParameter(
            f"{old} is the earlier spelling of {new}; give one of them", param_hint=new
        )
    return current if current is not None else earlier


def examples(*commands: str) -> str:
    """A help epilog of example command lines, printed as written (never re-wrapped)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {command}" for command in commands)
