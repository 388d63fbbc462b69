"""Loading a model by reference: a package folder, ``NAME@ALIAS`` or ``NAME/VERSION``.

What a reference names is a resolver's to say (:func:`mlwright.track.registry.resolve` looks
registry references up, downloads the version and checks it against the checksum recorded in
the registry); loading then verifies every checksum of the folder before anything in it is
deserialised. :func:`mlwright.load` is this loader with the registry's resolver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from mlwright.errors import ConfigError
from mlwright.package.model import Model
from mlwright.package.store import load_any
from mlwright.package.tensor import TensorModel


class Resolved(Protocol):
    """The package folder a reference names, and its registry name and version (if any)."""

    @property
    def path(self) -> Path: ...

    @property
    def name(self) -> str | None: ...

    @property
    def version(self) -> str | None: ...


class Resolver(Protocol):
    """Turns a reference into a package folder. ``registry_only``: refuse folders, take
    ``NAME@ALIAS`` or ``NAME/VERSION`` only (what a server accepts over HTTP)."""

    def __call__(self, ref: str | Path, *, registry_only: bool = False) -> Resolved: ...


def load(
    model: str | Path,
    *,
    resolve: Resolver,
    threads: int | None = None,
    registry_only: bool = False,
) -> Model | TensorModel:
    """The model ``resolve`` finds for ``model``, with ``registry`` set when it came from the
    registry. ``threads``: what one predict call may use (default: every core). A tensor
    package (``mlwright train-torch``) loads as a :class:`~mlwright.package.tensor.TensorModel`."""
    resolved = resolve(model, registry_only=registry_only)
    loaded = load_any(resolved.path, threads=threads)
    loaded.registry = (
        None if resolved.name is None else {"name": resolved.name, "version": resolved.version}
    )
    return loaded


def tabular(model: Model | TensorModel, command: str) -> Model:
    """``model`` when it is a tabular model; a clear error for a tensor one."""
    if isinstance(model, Model):
        return model
    raise ConfigError(
        f"{model.name!r} is a {model.framework} model (mlwright train-{model.kind}): {command} "
        "works on tabular models",
        fix="serve it with `mlwright serve`, export it with `mlwright export`, report on it with "
        "`mlwright report`, or predict in Python with mlwright.load(...).predict(records)",
    )


__all__ = ["Resolved", "Resolver", "load", "tabular"]
