"""Drift counts in the serving store: served values counted into a reference's bins, per minute.

The writer process adds each batch's counts to the ``drift_counts`` table: one row per
(reference, variant, minute, column), the numeric bins as a compressed array beside the rest as
JSON. The reference itself is kept once in ``drift_references`` (keyed by the digest of its
bytes, with the model and version it belongs to), so the store alone answers for any version
that was ever served, and counts made against one version's bins are never added to another's.
Counts are added up column by column (:func:`merge`), so any window is the sum of its minutes.

The binning itself is the caller's (the monitor's): the store only adds counts up and keeps them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.errors import DataSourceError
from mlwright.store.schema import reading

BUCKET_SECONDS = 60
SAVE_SECONDS = 1.0  # pending counts are written at least this often
ROWS = "(rows)"  # the column that counts a minute's rows
DRIFT_TABLES = ("drift_references", "drift_counts")


@dataclass(frozen=True)
class Watched:
    """A monitoring reference as the writer counts against it."""

    digest: str  # sha-256 of the reference.json bytes, 16 hex digits
    reference: dict[str, Any]
    text: str

    @classmethod
    def load(cls, path: Path) -> Watched:
        data = path.read_bytes()
        return cls(digest_of(data), json.loads(data), data.decode("utf-8"))

    @staticmethod
    @lru_cache(maxsize=32)
    def cached(path: str) -> Watched:
        """:meth:`load`, once per path: a package's reference never changes (its manifest
        checks it), so the server reads it once, not on every drift request or scrape."""
        return Watched.load(Path(path))


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def merge(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    """The counts of two windows together (numeric bins as arrays)."""
    if a is None:
        return dict(b)
    merged: dict[str, Any] = {}
    for key, value in b.items():
        other = a.get(key)
        if isinstance(value, (list, np.ndarray)):
            merged[key] = np.asarray(value, dtype="int64") + (
                0 if other is None else np.asarray(other, dtype="int64")
            )
        elif isinstance(value, dict):
            before = other or {}
            merged[key] = {k: before.get(k, 0) + value.get(k, 0) for k in {*before, *value}}
        else:
            merged[key] = (other or 0) + value
    return merged


# --- writing (writer process) ---------------------------------------------------------------------


class PendingCounts:
    """Counts the writer has made but not yet saved: merged in memory and written to the store
    at most every :data:`SAVE_SECONDS` (and when the writer stops), so that a busy server does
    one small transaction a second for monitoring, not one per flush."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], dict[str, dict[str, Any]]] = {}
        self.references: dict[str, tuple[Watched, str, str | None, float]] = {}
        self.rows = 0
        self.due: float | None = None  # time.monotonic() by which to save

    def add(
        self,
        watched: Watched,
        model: str,
        version: str | None,
        variant: str,
        bucket: int,
        counted: dict[str, dict[str, Any]],
    ) -> None:
        self.references.setdefault(watched.digest, (watched, model, version, float(bucket)))
        cell = self.counts.setdefault((watched.digest, variant, bucket), {})
        for col, counts in counted.items():
            cell[col] = merge(cell.get(col), counts)
        self.rows += int(counted[ROWS]["n"])
        if self.due is None:
            self.due = time.monotonic() + SAVE_SECONDS

    def save(self, conn: sqlite3.Connection, saved: set[str]) -> None:
        """Write everything pending (inside the caller's transaction)."""
        for digest, (watched, model, version, ts) in self.references.items():
            if digest not in saved:
                save_reference(conn, watched, model, version, ts)
        for (digest, variant, bucket), counted in self.counts.items():
            add_counts(conn, digest, variant, bucket, counted)

    def clear(self) -> None:
        self.counts.clear()
        self.references.clear()
        self.rows = 0
        self.due = None


def _pack(counts: dict[str, Any]) -> tuple[str, bytes | None]:
    """A column's counts as the store keeps them: JSON, with numeric bins as a compressed
    int64 array beside it."""
    bins = counts.get("counts")
    if isinstance(bins, (list, np.ndarray)):
        rest = {k: v for k, v in counts.items() if k != "counts"}
        array = np.asarray(bins, dtype="<i8")
        return json.dumps(rest), zlib.compress(array.tobytes(), 1)
    return json.dumps(counts), None


def _unpack(text: str, blob: bytes | None) -> dict[str, Any]:
    counts: dict[str, Any] = json.loads(text)
    if blob is not None:
        counts["counts"] = np.frombuffer(zlib.decompress(blob), dtype="<i8")
    return counts


def add_counts(
    conn: sqlite3.Connection,
    digest: str,
    variant: str,
    ts: float,
    counted: dict[str, dict[str, Any]],
) -> None:
    """Add ``counted`` to the minute of ``ts`` (inside the caller's transaction)."""
    bucket = int(ts // BUCKET_SECONDS) * BUCKET_SECONDS
    for col, counts in counted.items():
        row = conn.execute(
            "SELECT counts, bins FROM drift_counts "
            "WHERE digest = ? AND variant = ? AND bucket = ? AND col = ?",
            (digest, variant, bucket, col),
        ).fetchone()
        total = merge(None if row is None else _unpack(*row), counts)
        conn.execute(
            "INSERT OR REPLACE INTO drift_counts VALUES (?, ?, ?, ?, ?, ?)",
            (digest, variant, bucket, col, *_pack(total)),
        )


def save_reference(
    conn: sqlite3.Connection, watched: Watched, model: str, version: str | None, ts: float
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO drift_references VALUES (?, ?, ?, ?, ?)",
        (watched.digest, model, version, ts, watched.text),
    )


# --- reading (server, CLI) ------------------------------------------------------------------------


def monitored(store: Path, model: str | None = None) -> list[dict[str, Any]]:
    """Every (reference, variant) with counts in the store, oldest first: the model, version,
    variant, reference digest, first and last minute counted, and rows counted."""
    query = (
        "SELECT r.digest, r.model, r.version, c.variant, MIN(c.bucket), MAX(c.bucket) "
        "FROM drift_references AS r JOIN drift_counts AS c ON c.digest = r.digest "
        "WHERE c.col = ? AND (? IS NULL OR r.model = ?) "
        "GROUP BY r.digest, c.variant ORDER BY MIN(c.bucket), r.rowid"
    )
    with reading(store, DRIFT_TABLES) as conn:
        found = conn.execute(query, (ROWS, model, model)).fetchall()
        rows = {
            (digest, variant): n
            for digest, variant, n in conn.execute(
                "SELECT digest, variant, SUM(json_extract(counts, '$.n')) FROM drift_counts "
                "WHERE col = ? GROUP BY digest, variant",
                (ROWS,),
            )
        }
    return [
        {
            "digest": digest,
            "model": name,
            "version": version,
            "variant": variant,
            "first": first,
            "last": last + BUCKET_SECONDS,
            "rows": int(rows.get((digest, variant)) or 0),
        }
        for digest, name, version, variant, first, last in found
    ]


def stored_reference(store: Path, digest: str) -> dict[str, Any]:
    """The monitoring reference the store keeps under ``digest``."""
    with reading(store, DRIFT_TABLES) as conn:
        row = conn.execute(
            "SELECT reference FROM drift_references WHERE digest = ?", (digest,)
        ).fetchone()
    if row is None:
        raise DataSourceError(
            f"the serving store {store} has no monitoring reference {digest}",
            fix="monitor a version that this store has served",
        )
    loaded: dict[str, Any] = json.loads(row[0])
    return loaded


def bucket_counts(
    store: Path,
    digest: str,
    variant: str,
    since: float | None = None,
) -> dict[int, dict[str, dict[str, Any]]]:
    """minute → column → counts, for one reference and variant."""
    query = "SELECT bucket, col, counts, bins FROM drift_counts WHERE digest = ? AND variant = ?"
    params: list[Any] = [digest, variant]
    if since is not None:
        query += " AND bucket >= ?"
        params.append(int(since // BUCKET_SECONDS) * BUCKET_SECONDS)
    out: dict[int, dict[str, dict[str, Any]]] = {}
    with reading(store, DRIFT_TABLES) as conn:
        for bucket, col, counts, bins in conn.execute(query, params):
            out.setdefault(int(bucket), {})[col] = _unpack(counts, bins)
    return out
