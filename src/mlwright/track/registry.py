"""Model references: a package folder, ``NAME@ALIAS`` or ``NAME/VERSION``.

Registry references are downloaded from the MLflow registry, and the package's manifest is
checked against the checksum recorded with the version before anything is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlwright.errors import MlwrightError

_ALIAS = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)@(?P<alias>[A-Za-z0-9_\-]+)$")
_VERSION = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class Resolved:
    path: Path
    name: str | None = None
    version: str | None = None


def parse(ref: str) -> tuple[str, str | None, str | None] | None:
    """(name, alias, version) for a registry reference, None for anything else."""
    if m := _ALIAS.match(ref):
        return m["name"], m["alias"], None
    if m := _VERSION.match(ref):
        return m["name"], None, m["version"]
    return None


def resolve(ref: str | Path) -> Resolved:
    """A local package folder for ``ref``, verified against the registry's checksum."""
    text = str(ref)
    if Path(text).exists():
        return Resolved(Path(text))
    parsed = parse(text)
    if parsed is None:
        from mlwright.package.store import PackageError

        raise PackageError(
            f"model {text!r} does not exist: it is neither a package folder nor a registry "
            "reference",
            fix="pass a folder written by `mlwright train`, NAME@ALIAS (e.g. churn@champion) "
            "or NAME/VERSION",
        )
    from mlwright.package.store import PackageError, manifest_digest, verify_package
    from mlwright.track.mlflow import download_version

    name, alias, version = parsed
    path, found_version, recorded = download_version(name, alias=alias, version=version)
    verify_package(path)
    if recorded and manifest_digest(path) != recorded:
        raise PackageError(
            f"{name}/{found_version}: the package's manifest does not match the checksum "
            "recorded in the registry",
            fix="the stored artifacts were changed; register the model again with `mlwright train`",
        )
    if not recorded:
        raise MlwrightError(
            f"{name}/{found_version} has no recorded checksum; it was not registered by mlwright",
            fix="register models with `mlwright train`",
        )
    return Resolved(path, name, found_version)
