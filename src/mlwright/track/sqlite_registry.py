"""The registry of a local SQLite MLflow store, read without importing MLflow.

``mlwright models list``, ``models show`` and every ``NAME@ALIAS`` load only read the registry.
Importing MLflow and opening its store through SQLAlchemy costs about two seconds before the
first query; the same answers come from three small tables in a few milliseconds. The store is
opened read-only, and the reader answers only for a ``sqlite:///`` store whose tables have the
columns it reads: anything else (a tracking server, another database, a schema this reader does
not know) returns None, and the caller asks MLflow itself. Every write goes through MLflow.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

# MLflow keeps a deleted version's row, marked with this stage, until it is cleaned up
_DELETED = "Deleted_Internal"


def store_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for any other store."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or "?" in uri:
        return None
    return Path(uri[len(prefix) :])


def registry_uri(tracking: str) -> str:
    return os.environ.get("MLFLOW_REGISTRY_URI") or tracking


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        yield db


def _query(uri: str, read: Any) -> Any:
    """``read(connection)`` on the store at ``uri``; None where this reader cannot answer. A
    store file that does not exist yet is an empty registry (``read`` gets None)."""
    path = store_file(registry_uri(uri))
    if path is None:
        return None
    if not path.exists():
        return read(None)
    try:
        with _reading(path) as db:
            return read(db)
    except sqlite3.Error:  # not an MLflow store, or one of a schema this reader does not know
        return None


def _live_versions(db: sqlite3.Connection, name: str) -> list[tuple[str, str, int]]:
    """(version, run id, created in ms) of each version of ``name`` that is not deleted."""
    rows = db.execute(
        "SELECT version, run_id, creation_time FROM model_versions "
        "WHERE name = ? AND current_stage != ? ORDER BY version",
        (name, _DELETED),
    ).fetchall()
    return [(str(v), run or "", created or 0) for v, run, created in rows]


def _aliases(db: sqlite3.Connection, name: str) -> dict[str, int]:
    """Alias → version number (an int, as MLflow's registered model gives it)."""
    rows = db.execute(
        "SELECT alias, version FROM registered_model_aliases WHERE name = ? ORDER BY alias",
        (name,),
    )
    return {alias: int(version) for alias, version in rows}


def _version_tags(db: sqlite3.Connection, name: str, version: str) -> dict[str, str]:
    rows = db.execute(
        "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?",
        (name, int(version)),
    )
    return {key: value or "" for key, value in rows}


def _model_tags(db: sqlite3.Connection, name: str) -> dict[str, str]:
    rows = db.execute("SELECT key, value FROM registered_model_tags WHERE name = ?", (name,))
    return {key: value or "" for key, value in rows}


def list_models(uri: str) -> list[dict[str, Any]] | None:
    """What ``mlwright models list`` shows, or None where MLflow must answer."""

    def read(db: sqlite3.Connection | None) -> list[dict[str, Any]]:
        if db is None:
            return []
        out = []
        for (name,) in db.execute("SELECT name FROM registered_models ORDER BY name").fetchall():
            versions = [int(v) for v, _, _ in _live_versions(db, name)]
            out.append(
                {
                    "name": name,
                    "versions": len(versions),
                    "latest": max(versions, default=None),
                    "aliases": _aliases(db, name),
                }
            )
        return out

    result: list[dict[str, Any]] | None = _query(uri, read)
    return result


def find_version(
    uri: str, name: str, *, alias: str | None = None, version: str | None = None
) -> tuple[str, dict[str, str]] | None:
    """(version, its tags) for ``NAME@ALIAS`` or ``NAME/VERSION``; None where MLflow must
    answer, and when the model or the version does not exist (MLflow's answer words that)."""

    def read(db: sqlite3.Connection | None) -> tuple[str, dict[str, str]] | None:
        if db is None:
            return None
        live = {v for v, _, _ in _live_versions(db, name)}
        number = _aliases(db, name).get(alias) if alias else int(version or "0")
        found = None if number is None else str(number)
        if found is None or found not in live:
            return None
        return found, _version_tags(db, name, found)

    result: tuple[str, dict[str, str]] | None = _query(uri, read)
    return result


def show_model(uri: str, name: str, manifest_tag: str, history_tag: str) -> dict[str, Any] | None:
    """What ``mlwright models show NAME`` shows (None where MLflow must answer, or when the
    model does not exist: the caller words that error with MLflow's list)."""
    if store_file(uri) != store_file(registry_uri(uri)):  # runs kept elsewhere than the registry
        return None

    def read(db: sqlite3.Connection | None) -> dict[str, Any] | None:
        if (
            db is None
            or not db.execute("SELECT 1 FROM registered_models WHERE name = ?", (name,)).fetchone()
        ):
            return None
        import json

        aliases = _aliases(db, name)
        versions = []
        for version, run_id, created in _live_versions(db, name):
            metrics = {
                key: math.nan if is_nan else float(value)
                for key, value, is_nan in db.execute(
                    "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", (run_id,)
                )
            }
            versions.append(
                {
                    "version": version,
                    "aliases": [a for a, v in aliases.items() if str(v) == version],
                    "created": created,
                    "run_id": run_id or None,
                    "manifest_sha256": _version_tags(db, name, version).get(manifest_tag),
                    "metrics": metrics,
                }
            )
        tags = _model_tags(db, name)
        history = {
            a: list(json.loads(tags[history_tag + a])) if tags.get(history_tag + a) else []
            for a in aliases
        }
        return {"name": name, "aliases": aliases, "versions": versions, "alias_history": history}

    result: dict[str, Any] | None = _query(uri, read)
    return result
