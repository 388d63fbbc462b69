"""The Python API: the same operations as the CLI, on frames or paths, in a notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlwright.config import TrainOptions
from mlwright.package.model import Model
from mlwright.package.tensor import TensorModel


def train(
    data: Any, target: str, *, sql: str | None = None, verbose: bool = False, **options: Any
) -> Model:
    """Train a model on ``data`` (a DataFrame, an Arrow table, a CSV/Parquet path or a
    SQLAlchemy URL with ``sql``) to predict ``target``. ``options`` are those of
    ``mlwright train`` (``time_budget``, ``max_trials``, ``seed``, ``metric``, ``out``, …)."""
    from mlwright.train.runner import train as run

    settings = TrainOptions.from_mapping({"target": target, **options}, source="train options")
    return run(data, settings, sql=sql, verbose=verbose)


def load(
    model: str | Path, *, threads: int | None = None, registry_only: bool = False
) -> Model | TensorModel:
    """Load a model: a package folder, ``NAME@ALIAS`` or ``NAME/VERSION`` from the registry.
    Checksums (and signatures, under a trust policy) are verified before anything is
    deserialised. ``threads``: what one predict call may use (default: every core).
    ``registry_only``: refuse folders. A PyTorch package (``mlwright train-torch``) loads as a
    :class:`~mlwright.package.tensor.TensorModel`."""
    from mlwright.package.store import load_any
    from mlwright.track.registry import resolve

    resolved = resolve(model, registry_only=registry_only)
    loaded = load_any(resolved.path, threads=threads)
    loaded.registry = (
        None if resolved.name is None else {"name": resolved.name, "version": resolved.version}
    )
    return loaded


def export(model: Model | TensorModel | str | Path, format: str, output: str | Path) -> Any:
    """Export ``model`` (loaded, a folder or a registry reference) as ``onnx`` or ``triton``
    into ``output``, checked on its golden examples in onnxruntime first (``mlwright export``);
    returns what was written (``.output``, ``.files``, ``.max_difference``)."""
    from mlwright.package.export import export as run

    loaded = model if isinstance(model, (Model, TensorModel)) else load(model)
    return run(loaded, format, output)


def tabular(model: Model | TensorModel, command: str) -> Model:
    """``model`` when it is a tabular model; a clear error for a PyTorch one."""
    if isinstance(model, Model):
        return model
    from mlwright.errors import ConfigError

    raise ConfigError(
        f"{model.name!r} is a PyTorch model (mlwright train-torch): {command} works on tabular "
        "models",
        fix="serve it with `mlwright serve`, export it with `mlwright export`, report on it with "
        "`mlwright report`, or predict in Python with mlwright.load(...).predict(records)",
    )


def rebuild(model: Model | str | Path, data: Any = None, *, sql: str | None = None) -> Model:
    """Refit ``model``'s final configuration from its recipe on its training data: the same
    rows, hyperparameters and seed, no search (``mlwright reproduce`` without the check).
    ``data`` defaults to where the model's data was read from; data that differs from it
    (by digest) is refused."""
    from mlwright.train.replay import replay

    package = model if isinstance(model, Model) else tabular(load(model), "rebuild")
    return replay(package, data, sql=sql).model
