"""The Python API: the same operations as the CLI, on frames or paths, in a notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlwright.package.loading import tabular
from mlwright.package.model import Model
from mlwright.package.tensor import TensorModel


def train(
    data: Any, target: str, *, sql: str | None = None, verbose: bool = False, **options: Any
) -> Model:
    """Train a model on ``data`` (a DataFrame, an Arrow table, a CSV/Parquet path or a
    SQLAlchemy URL with ``sql``) to predict ``target``. ``options`` are those of
    ``mlwright train`` (``time_budget``, ``max_trials``, ``seed``, ``metric``, ``out``, …)."""
    from mlwright.train.runner import train_from_keywords

    return train_from_keywords(data, target, sql=sql, verbose=verbose, **options)


def load(
    model: str | Path, *, threads: int | None = None, registry_only: bool = False
) -> Model | TensorModel:
    """Load a model: a package folder, ``NAME@ALIAS`` or ``NAME/VERSION`` from the registry.
    Checksums (and signatures, under a trust policy) are verified before anything is
    deserialised. ``threads``: what one predict call may use (default: every core).
    ``registry_only``: refuse folders. A PyTorch package (``mlwright train-torch``) loads as a
    :class:`~mlwright.package.tensor.TensorModel`."""
    from mlwright.package.loading import load as load_reference
    from mlwright.track.registry import resolve

    loaded = load_reference(model, resolve=resolve, threads=threads, registry_only=registry_only)
    return with_reporter(loaded)


def with_reporter(model: Model | TensorModel) -> Model | TensorModel:
    """``model``, able to render its ML Solution report (``model.report()``, and the report in
    the package ``model.save`` writes)."""
    if isinstance(model, Model):
        from mlwright.report import TabularReporter

        model.reporter = TabularReporter()
    else:
        from mlwright.report.tensor import TorchReporter

        model.reporter = TorchReporter()
    return model


def export(model: Model | TensorModel | str | Path, format: str, output: str | Path) -> Any:
    """Export ``model`` (loaded, a folder or a registry reference) as ``onnx`` or ``triton``
    into ``output``, checked on its golden examples in onnxruntime first (``mlwright export``);
    returns what was written (``.output``, ``.files``, ``.max_difference``)."""
    from mlwright.package.export import export as run

    loaded = model if isinstance(model, (Model, TensorModel)) else load(model)
    return run(loaded, format, output)


def rebuild(model: Model | str | Path, data: Any = None, *, sql: str | None = None) -> Model:
    """Refit ``model``'s final configuration from its recipe on its training data: the same
    rows, hyperparameters and seed, no search (``mlwright reproduce`` without the check).
    ``data`` defaults to where the model's data was read from; data that differs from it
    (by digest) is refused."""
    from mlwright.train.replay import replay

    package = model if isinstance(model, Model) else tabular(load(model), "rebuild")
    return replay(package, data, sql=sql).model


__all__ = ["export", "load", "rebuild", "tabular", "train", "with_reporter"]
