"""Model references: a package folder, ``NAME@ALIAS`` or ``NAME/VERSION``.

Registry references are downloaded from the MLflow registry, and the package's manifest is
checked against the checksum recorded with the version before anything is loaded.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlwright.errors import MlwrightError

_ALIAS = re.compile(r"(?P<name>[A-Za-z0-9_.\-]+)@(?P<alias>[A-Za-z0-9_\-]+)")
_VERSION = re.compile(r"(?P<name>[A-Za-z0-9_.\-]+)/(?P<version>[0-9]+)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Resolved:
    path: Path
    name: str | None = None
    version: str | None = None


def parse(ref: str) -> tuple[str, str | None, str | None] | None:
    """(name, alias, version) for a registry reference, None for anything else."""
    if m := _ALIAS.fullmatch(ref):
        return m["name"], m["alias"], None
    if m := _VERSION.fullmatch(ref):
        return m["name"], None, m["version"]
    return None


def resolve(ref: str | Path, *, registry_only: bool = False) -> Resolved:
    """A local package folder for ``ref``, verified against the registry's checksum and
    signature. ``registry_only``: refuse folders, take ``NAME@ALIAS`` or ``NAME/VERSION`` only
    (what the server accepts over HTTP, where a path must never reach the filesystem)."""
    text = str(ref)
    if not registry_only and Path(text).exists():
        return Resolved(Path(text))
    parsed = parse(text)
    if parsed is None:
        from mlwright.package.store import PackageError

        if registry_only:
            raise PackageError(
                f"{text!r} is not a registry reference; only NAME@ALIAS or NAME/VERSION are "
                "accepted here",
                fix="name a registered version, e.g. churn@champion or churn/3",
            )
        raise PackageError(
            f"model {text!r} does not exist: it is neither a package folder nor a registry "
            "reference",
            fix="pass a folder written by `mlwright train`, NAME@ALIAS (e.g. churn@champion) "
            "or NAME/VERSION",
        )
    from mlwright.track.mlflow import MANIFEST_TAG, find_version

    name, alias, version = parsed
    found, tags = find_version(name, alias=alias, version=version)
    recorded = tags.get(MANIFEST_TAG, "")
    if not recorded:
        raise MlwrightError(
            f"{name}/{found} has no recorded checksum; it was not registered by mlwright",
            fix="register models with `mlwright train`",
        )
    if not _SHA256.fullmatch(recorded):
        raise MlwrightError(
            f"{name}/{found}: its recorded checksum {recorded[:80]!r} is not a SHA-256",
            fix="the version's tags were changed; register the model again with `mlwright train`",
        )
    from mlwright.package.store import PackageError

    try:
        path = _cached_version(name, found, recorded)
        _check_version(path, name, found, tags)
    except PackageError:  # a damaged copy in the cache: fetch it again, once
        path = _cached_version(name, found, recorded, fresh=True)
        _check_version(path, name, found, tags)
    return Resolved(path, name, found)


def _check_version(path: Path, name: str, version: str, tags: dict[str, str]) -> None:
    """The downloaded package is the one registered: its manifest's checksum and its signature
    are those recorded on the version, and it passes verification and the trust policy."""
    from mlwright.package.signing import read_signature
    from mlwright.package.store import PackageError, manifest_digest, verify_package
    from mlwright.track.mlflow import MANIFEST_TAG, SIGNATURE_TAG

    verify_package(path)
    if manifest_digest(path) != tags[MANIFEST_TAG]:
        raise PackageError(
            f"{name}/{version}: the package's manifest does not match the checksum "
            "recorded in the registry",
            fix="the stored artifacts were changed; register the model again with `mlwright train`",
        )
    signature = read_signature(path)
    have = None if signature is None else signature.tag()
    if have != tags.get(SIGNATURE_TAG):
        want = "no signature" if tags.get(SIGNATURE_TAG) is None else "a signature"
        raise PackageError(
            f"{name}/{version}: the package's signature does not match the one recorded in the "
            f"registry (the version records {want}; the stored package is "
            f"{'unsigned' if signature is None else 'signed by key ' + signature.key_id})",
            fix="the stored artifacts were changed; register the model again with `mlwright train`",
        )


def cache_dir() -> Path:
    """Where registry versions are kept once downloaded: ``MLWRIGHT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/mlwright`` (``~/.cache/mlwright``). Safe to delete at any time."""
    value = os.environ.get("MLWRIGHT_CACHE_DIR", "").strip()
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "mlwright"


def _cached_version(name: str, version: str, digest: str, *, fresh: bool = False) -> Path:
    """The package of ``name/version`` in the cache, downloaded once per manifest checksum (the
    same version number in another tracking store is another folder). Every load verifies it."""
    from mlwright.track.mlflow import download_version

    # one path component: a name such as ".." stays inside the cache
    folder = cache_dir() / "registry" / f"{name}@{version}-{digest[:16]}"
    return _fill_once(folder, lambda target: download_version(name, version, target), fresh)


def cached_run_package(run_id: str) -> tuple[Path, str | None]:
    """The package a training run logged, downloaded into the cache once; returns (package
    folder, the run's registered ``NAME/VERSION`` or None)."""
    from mlwright.track.mlflow import download_run_package

    registered: list[str | None] = [None]

    def fetch(target: Path) -> Path:
        path, registered[0] = download_run_package(run_id, target)
        (target / _REGISTERED).write_text(registered[0] or "", encoding="utf-8")
        return path

    if not _RUN_ID.fullmatch(run_id):
        raise MlwrightError(f"{run_id!r} is not an MLflow run id", fix="pass a run's 32-hex id")
    folder = cache_dir() / "runs" / run_id
    path = _fill_once(folder, fetch, fresh=False)
    if registered[0] is None and (folder / _REGISTERED).is_file():
        registered[0] = (folder / _REGISTERED).read_text(encoding="utf-8").strip() or None
    return path, registered[0]


_REGISTERED = ".registered"


def _fill_once(folder: Path, fetch: Callable[[Path], Path], fresh: bool) -> Path:
    """``folder`` holds one complete download: fetched into a staging folder beside it and
    renamed into place, so that a crash or a concurrent load never leaves half a package."""
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            fetch(staging)
            try:
                os.replace(staging, folder)
            except OSError:  # another process finished the same download first
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    packages = sorted(p.parent for p in folder.rglob("mlwright.json"))
    if len(packages) != 1:
        raise MlwrightError(
            f"the cached download in {folder} holds {len(packages)} packages",
            fix=f"remove {folder} and try again",
        )
    return packages[0]
