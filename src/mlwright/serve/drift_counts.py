"""Served values counted into the reference's bins as they are written, per minute.

The serving store's writer process (never the request path) counts each batch's feature values
and predictions into the bins of the served version's ``reference.json`` and adds them to the
serving store's ``drift_counts`` table: one row per (reference, variant, minute, column), the
numeric bins as a compressed array. The reference itself is kept once in ``drift_references``
(keyed by the digest of its bytes, with the model and version it belongs to), so the store alone
answers for any version that was ever served, and counts made against one version's bins are
never added to another's. Drift over any window is the sum of its minutes' counts
(:func:`window_counts`): a window of millions of predictions is a few thousand small rows to
read, never the raw requests.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.errors import DataSourceError
from mlwright.package.reference import numeric_values
from mlwright.serve.drift import (
    Settings,
    count_categorical,
    count_numeric,
    feature_drift,
    summary,
)

BUCKET_SECONDS = 60
SAVE_SECONDS = 1.0  # pending counts are written at least this often
PREDICTION = "(prediction)"
ROWS = "(rows)"


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


# --- counting (writer process) --------------------------------------------------------------------


def count_batch(
    reference: dict[str, Any],
    columns: Mapping[str, Sequence[Any]],
    rows: int,
    predicted: Sequence[Any],
) -> dict[str, dict[str, Any]]:
    """Counts of one batch's values per reference column (``columns``: name → the values as
    sent, validated against the schema when served), of its predictions, and its rows."""
    out: dict[str, dict[str, Any]] = {ROWS: {"n": rows}}
    for name, entry in reference["columns"].items():
        values = columns.get(name)
        if values is None:
            values = [None] * rows
        if entry["kind"] == "numeric":
            out[name] = count_numeric(entry, _floats(values, entry["schema_kind"]))
        else:
            out[name] = count_categorical(entry, values)
    prediction = reference.get("prediction")
    if prediction and predicted:
        if prediction["kind"] == "numeric":
            out[PREDICTION] = count_numeric(prediction, _floats(predicted, "numeric"))
        else:
            out[PREDICTION] = count_categorical(prediction, predicted)
    return out


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


def _floats(values: Sequence[Any], kind: str) -> np.ndarray:
    if kind != "datetime":
        try:
            return np.array(values, dtype="float64")  # numbers, booleans and None (NaN)
        except (TypeError, ValueError):
            pass
    return numeric_values(pd.Series(values, dtype=object), kind)


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


@contextmanager
def reading(
    store: Path, tables: tuple[str, ...] = ("drift_references", "drift_counts")
) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a serving store that has ``tables``, closed after use."""
    if not Path(store).is_file():
        raise DataSourceError(
            f"no serving store at {store}", fix="pass the --store file of `mlwright serve`"
        )
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        try:
            found = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            raise DataSourceError(
                f"{store} is not a serving store ({exc})",
                fix="pass the --store file of `mlwright serve`",
            ) from None
        missing = [t for t in tables if t not in found]
        if missing:
            raise DataSourceError(
                f"{store} has no {', '.join(missing)} table: it is not a serving store of this "
                "mlwright version",
                fix="pass the --store file of `mlwright serve`, or serve once with this version "
                "to upgrade it",
            )
        yield conn
    finally:
        conn.close()


def monitored(store: Path, model: str | None = None) -> list[dict[str, Any]]:
    """Every (reference, variant) with counts in the store, oldest first: the model, version,
    variant, reference digest, first and last minute counted, and rows counted."""
    query = (
        "SELECT r.digest, r.model, r.version, c.variant, MIN(c.bucket), MAX(c.bucket) "
        "FROM drift_references AS r JOIN drift_counts AS c ON c.digest = r.digest "
        "WHERE c.col = ? AND (? IS NULL OR r.model = ?) "
        "GROUP BY r.digest, c.variant ORDER BY MIN(c.bucket), r.rowid"
    )
    with reading(store) as conn:
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
    with reading(store) as conn:
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
    with reading(store) as conn:
        for bucket, col, counts, bins in conn.execute(query, params):
            out.setdefault(int(bucket), {})[col] = _unpack(counts, bins)
    return out


def latest_since(buckets: dict[int, dict[str, dict[str, Any]]], last: int) -> int | None:
    """The first minute of the shortest run of latest minutes holding at least ``last`` rows
    (a count window is whole minutes: it may hold up to a minute's rows more)."""
    total = 0
    for bucket in sorted(buckets, reverse=True):
        total += int(buckets[bucket].get(ROWS, {}).get("n", 0))
        if total >= last:
            return bucket
    return min(buckets, default=None)


def total(minutes: Iterable[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The counts of several minutes together, per column."""
    totals: dict[str, dict[str, Any]] = {}
    by_col: dict[str, list[dict[str, Any]]] = {}
    for minute in minutes:
        for col, counts in minute.items():
            by_col.setdefault(col, []).append(counts)
    for col, parts in by_col.items():
        bins = [p["counts"] for p in parts if isinstance(p.get("counts"), np.ndarray)]
        if bins and len(bins) == len(parts) and len({len(b) for b in bins}) == 1:
            summed: dict[str, Any] = {"counts": np.sum(bins, axis=0)}
            for key in parts[0]:
                if key != "counts":
                    summed[key] = sum(p.get(key, 0) for p in parts)
            totals[col] = summed
            continue
        for part in parts:
            totals[col] = merge(totals.get(col), part)
    return totals


def window_buckets(
    store: Path,
    digest: str,
    variant: str,
    *,
    since: float | None = None,
    last: int | None = None,
) -> dict[int, dict[str, dict[str, Any]]]:
    """The minutes of a window: since ``since`` (epoch seconds), or the latest minutes
    holding ``last`` rows, or everything recorded."""
    buckets = bucket_counts(store, digest, variant, since)
    if last is not None:
        start = latest_since(buckets, last)
        buckets = {b: c for b, c in buckets.items() if start is not None and b >= start}
    return buckets


def window_counts(
    store: Path,
    digest: str,
    variant: str,
    *,
    since: float | None = None,
    last: int | None = None,
) -> dict[str, dict[str, Any]]:
    """A window's counts per column, summed over its minutes."""
    return total(window_buckets(store, digest, variant, since=since, last=last).values())


def drift_of(
    counts: dict[str, dict[str, Any]], reference: dict[str, Any], s: Settings
) -> dict[str, Any]:
    """Every feature's drift, the predictions' and the dataset's, from a window's counts."""
    features = {
        name: feature_drift(entry, counts[name], s)
        for name, entry in reference["columns"].items()
        if name in counts
    }
    prediction = None
    if PREDICTION in counts and reference.get("prediction"):
        prediction = feature_drift(reference["prediction"], counts[PREDICTION], s)
    return {
        "rows": int(counts.get(ROWS, {}).get("n", 0)),
        "prediction": prediction,
        **summary(features, s),
    }


def window_drift(
    store: Path,
    reference: dict[str, Any],
    digest: str,
    *,
    variant: str = "champion",
    since: float | None = None,
    last: int | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Drift of a variant's traffic counted against ``reference`` (whose digest is
    ``digest``): since ``since`` (epoch seconds), or over the latest minutes holding ``last``
    rows, or everything recorded."""
    s = settings or Settings()
    buckets = window_buckets(store, digest, variant, since=since, last=last)
    result = drift_of(total(buckets.values()), reference, s)
    return {
        "variant": variant,
        "reference": digest,
        "since": since,
        "window": {
            "first": min(buckets, default=None),
            "last": None if not buckets else max(buckets) + BUCKET_SECONDS,
        },
        **result,
    }


def timeline(
    buckets: dict[int, dict[str, dict[str, Any]]],
    reference: dict[str, Any],
    step_seconds: int,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Drift per consecutive window of ``step_seconds``: rows, drift share, dataset drift,
    and each feature's and the predictions' statistic."""
    s = settings or Settings()
    steps: dict[int, list[dict[str, dict[str, Any]]]] = {}
    for bucket, counts in buckets.items():
        steps.setdefault(bucket - bucket % step_seconds, []).append(counts)
    out = []
    for start in sorted(steps):
        result = drift_of(total(steps[start]), reference, s)
        out.append(
            {
                "start": start,
                "rows": result["rows"],
                "drift_share": result["drift_share"],
                "dataset_drift": result["dataset_drift"],
                "drifted_features": result["drifted_features"],
                "statistics": {k: v.get("statistic") for k, v in result["features"].items()},
                "prediction": None
                if result["prediction"] is None
                else result["prediction"].get("statistic"),
            }
        )
    return out
