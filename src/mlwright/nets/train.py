"""Search, train, package and register in one tracked run: the whole ``train-keras`` and
``train-jax`` job, given the framework's ``fit`` and its packager."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlwright.nets.config import NetConfig
from mlwright.nets.run import NetFit, NetTrainingError, call_user
from mlwright.package.tensor import TensorModel

C = TypeVar("C", bound=NetConfig)
Packager = Callable[[NetFit, Any, "dict[str, Any] | None"], TensorModel]


def train_and_package(
    config: C,
    fit: Callable[..., NetFit],
    packager: Packager,
    *,
    data: Any = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    verbose: bool = True,
    **objects: Any,
) -> TensorModel:
    """``config``'s ranges searched (when it declares any), the best configuration trained with
    ``fit`` and packaged by ``packager(result, tracker, search record)`` inside its run."""
    searched = None
    if config.search is not None:
        from mlwright.nets.search import search

        config, searched = search(
            config,
            fit=fit,
            load_data=lambda: call_user(
                config.data, None, "data function", "data_params", config.data_params
            ),
            data=data,
            verbose=verbose,
            error=NetTrainingError,
            **objects,
        )
    made: list[TensorModel] = []

    def finish(result: NetFit, tracker: Any) -> None:
        made.append(packager(result, tracker, searched))

    fit(
        config, data=data, checkpoint_dir=checkpoint_dir, resume=resume, verbose=verbose,
        finish=finish, **objects,
    )  # fmt: skip
    return made[0]


__all__ = ["train_and_package"]
