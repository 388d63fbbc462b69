"""Search, train, package and register in one tracked run: the whole ``train-keras`` and
``train-jax`` job, given the framework's ``fit`` and its packager."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlwright.errors import MlwrightError
from mlwright.nets.config import NetConfig
from mlwright.nets.run import NetTrainingError
from mlwright.package.tensor import TensorModel

C = TypeVar("C", bound=NetConfig)
# (the fit's result, the tracker, the search's record) → the registered package
Packager = Callable[[Any, Any, "dict[str, Any] | None"], TensorModel]


def train_and_package(
    config: C,
    fit: Callable[..., Any],
    packager: Packager,
    *,
    data: Any = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    verbose: bool = True,
    error: type[MlwrightError] = NetTrainingError,
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
            data=data,
            verbose=verbose,
            error=error,
            **objects,
        )
    made: list[TensorModel] = []

    def finish(result: Any, tracker: Any) -> None:
        made.append(packager(result, tracker, searched))

    fit(
        config, data=data, checkpoint_dir=checkpoint_dir, resume=resume, verbose=verbose,
        finish=finish, **objects,
    )  # fmt: skip
    return made[0]


def train_to_package(
    config: C,
    out: str | Path | None,
    fit: Callable[..., Any],
    exporter: Callable[[Any], Any],
    *,
    data: Any = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    verbose: bool = True,
    model_factory: Any = None,
) -> TensorModel:
    """``train-keras`` and ``train-jax``: the destination checked before training, then
    :func:`train_and_package` with the package of ONNX and the native model
    (``exporter(trainer)``, a :class:`~mlwright.nets.package.Exporter`)."""
    from mlwright.nets.package import package
    from mlwright.package.store import check_destination

    path = Path(out or Path("models") / config.name)
    check_destination(path)  # before training, not after it

    def exported(result: Any, tracker: Any, searched: dict[str, Any] | None) -> TensorModel:
        return package(result, exporter(result.model), path, tracker, searched)

    return train_and_package(
        config, fit, exported, data=data, checkpoint_dir=checkpoint_dir, resume=resume,
        verbose=verbose, model_factory=model_factory,
    )  # fmt: skip


__all__ = ["train_and_package", "train_to_package"]
