"""The Python API: the same operations as the CLI, on frames or paths, in a notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlwright.config import TrainOptions
from mlwright.package.model import Model


def train(
    data: Any, target: str, *, sql: str | None = None, verbose: bool = False, **options: Any
) -> Model:
    """Train a model on ``data`` (a DataFrame, an Arrow table, a CSV/Parquet path or a
    SQLAlchemy URL with ``sql``) to predict ``target``. ``options`` are those of
    ``mlwright train`` (``time_budget``, ``max_trials``, ``seed``, ``metric``, ``out``, …)."""
    from mlwright.train.runner import train as run

    settings = TrainOptions.from_mapping({"target": target, **options}, source="train options")
    return run(data, settings, sql=sql, verbose=verbose)


def load(model: str | Path, *, threads: int | None = None) -> Model:
    """Load a model: a package folder, ``NAME@ALIAS`` or ``NAME/VERSION`` from the registry.
    Checksums are verified before anything is deserialised. ``threads``: what one predict call
    may use (default: every core)."""
    from mlwright.package.store import load_package
    from mlwright.track.registry import resolve

    resolved = resolve(model)
    loaded = load_package(resolved.path, threads=threads)
    loaded.registry = (
        None if resolved.name is None else {"name": resolved.name, "version": resolved.version}
    )
    return loaded
