"""The Python API: the same operations as the CLI, on frames or paths, in a notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlwright.config import TrainOptions
from mlwright.errors import ConfigError
from mlwright.package.model import Model


def train(
    data: Any, target: str, *, sql: str | None = None, verbose: bool = False, **options: Any
) -> Model:
    """Train a model on ``data`` (a DataFrame, an Arrow table, a CSV/Parquet path or a
    SQLAlchemy URL with ``sql``) to predict ``target``. ``options`` are those of
    ``mlwright train`` (``time_budget``, ``max_trials``, ``seed``, ``metric``, ``out``, …)."""
    from mlwright.train.runner import train as run

    for key in ("keep_cols", "drop_cols", "families"):
        if isinstance(options.get(key), str):
            options[key] = (options[key],)
    settings = TrainOptions.from_mapping({"target": target, **options}, source="train options")
    return run(data, settings, sql=sql, verbose=verbose)


def load(model: str | Path) -> Model:
    """Load a model package directory (checksums verified before anything is deserialised)."""
    from mlwright.package.store import load_package

    text = str(model)
    if "@" in text and not Path(text).exists():
        raise ConfigError(
            f"{text!r} names a registry alias, and no model registry is configured here",
            fix="pass the package directory that `mlwright train --out` wrote",
        )
    return load_package(text)
