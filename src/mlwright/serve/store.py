"""The serving store: SQLite in WAL mode, written by one background writer per worker.

Each worker hands every answered request to its own writer process
(:mod:`mlwright.serve.writer`), which parses and commits them when 512 predictions are waiting or
the oldest has waited 100 ms, whichever comes first. One row per request in ``requests``; the
``predictions`` view has one row per prediction, and :func:`read_predictions` adds each one's
inputs. A hard kill of the worker can lose at most what the writer process had not committed:
the last 100 ms (plus the commit in flight); a graceful shutdown flushes everything. Feedback,
experiments, assignments and alias history have their own tables (CONTRACTS.md), read by A/B
analysis and monitoring.
"""

from __future__ import annotations

import json
import logging
import operator
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from mlwright.errors import DataSourceError

if TYPE_CHECKING:
    from mlwright.serve.drift_counts import PendingCounts, Watched

log = logging.getLogger("mlwright.serve")

FLUSH_SECONDS = 0.1
FLUSH_ROWS = 512
MAX_WRITE_ROWS = 8 * FLUSH_ROWS  # one transaction's most rows, when a backlog builds up

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    model TEXT NOT NULL,
    version TEXT,
    variant TEXT NOT NULL,
    entity_key TEXT,
    n INTEGER NOT NULL,
    features TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_model ON requests (model, version, ts);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
CREATE VIEW IF NOT EXISTS predictions AS
SELECT json_extract(o.value, '$.prediction_id') AS prediction_id,
       r.request_id, r.ts, r.model, r.version, r.variant, r.entity_key,
       o.key AS row, o.value AS output
FROM requests AS r, json_each(r.outputs) AS o;
CREATE TABLE IF NOT EXISTS feedback (
    prediction_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    covariate REAL
);
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    experiment_id TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    variant TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (experiment_id, entity_key)
);
CREATE TABLE IF NOT EXISTS drift_references (
    digest TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT,
    first_seen REAL NOT NULL,
    reference TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drift_counts (
    digest TEXT NOT NULL,
    variant TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    col TEXT NOT NULL,
    counts TEXT NOT NULL,
    bins BLOB,
    PRIMARY KEY (digest, variant, bucket, col)
);
CREATE TABLE IF NOT EXISTS alias_history (
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    version TEXT NOT NULL,
    ts REAL NOT NULL
);
"""


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    drift = {row[1] for row in conn.execute("PRAGMA table_info(drift_counts)")}
    if drift and "digest" not in drift:
        # counts from before they were kept per reference: derived data, and their bins
        # cannot be told apart after a version swap; counting starts again
        log.warning("the serving store's drift counts predate per-version references; reset")
        conn.execute("DROP TABLE drift_counts")
    conn.executescript(_SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(feedback)")}
    if "covariate" not in columns:  # a store written before covariates existed
        conn.execute("ALTER TABLE feedback ADD COLUMN covariate REAL")
    return conn


@dataclass(frozen=True)
class PredictionBatch:
    """The predictions of one answered request, as the bytes that crossed the wire: the
    request body (records as sent) and the response (predictions as answered). Parsing and
    storing happen in the writer process, never on the request path."""

    request_id: str
    ts: float
    model: str
    version: str | None
    variant: str
    entity_key: str | None
    features: tuple[str, ...]
    n: int  # predictions in the answer
    body: bytes  # {"records": [...], ...}
    answer: bytes  # {"predictions": [...], ...}

    def __len__(self) -> int:
        return self.n

    @property
    def head(self) -> tuple[Any, ...]:
        """The request's own columns: id, time, model, version, variant, entity key."""
        return (self.request_id, self.ts, self.model, self.version, self.variant, self.entity_key)

    def frame(self) -> bytes:
        """The batch as one length-prefixed message for the writer process."""
        head = orjson.dumps([*self.head, self.features, self.n])
        sizes = _FRAME.pack(len(head), len(self.body), len(self.answer))
        return b"".join((sizes, head, self.body, self.answer))

    @classmethod
    def read(cls, stream: BinaryIO) -> PredictionBatch | Watch | None:
        """The next framed batch (or :class:`Watch`) from ``stream``; None at its end."""
        prefix = stream.read(_FRAME.size)
        if len(prefix) < _FRAME.size:
            return None
        sizes = _FRAME.unpack(prefix)
        head, body, answer = (stream.read(size) for size in sizes)
        if len(head) < sizes[0] or len(body) < sizes[1] or len(answer) < sizes[2]:
            return None  # cut off mid-message: the server died while sending it
        if not sizes[0]:
            return Watch(**orjson.loads(body))
        rid, ts, model, version, variant, key, features, n = orjson.loads(head)
        return cls(rid, ts, model, version, variant, key, tuple(features), n, body, answer)

    def parsed(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The records as sent and the predictions as answered."""
        return read_json(self.body)["records"], orjson.loads(self.answer)["predictions"]

    def inputs(self, records: list[dict[str, Any]]) -> list[Any]:
        """Each record's values of ``features``, in their order (None where one is absent)."""
        names = self.features
        if len(names) > 1:
            pick = operator.itemgetter(*names)
            try:
                return list(map(pick, records))  # served records carry every feature
            except (KeyError, TypeError):
                pass
        return [[record.get(name) for name in names] for record in records]

    def row(
        self,
        parsed: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None,
        inputs: list[Any] | None = None,
    ) -> tuple[Any, ...]:
        """The batch as one row of the requests table: inputs are arrays of the features'
        values (in the order of ``features``), outputs the answered predictions."""
        records, outputs = parsed or self.parsed()
        names = self.features
        if inputs is None:
            inputs = self.inputs(records)
        return (
            *self.head,
            len(outputs),
            _dumps(list(names)),
            _dumps(inputs),
            _dumps(outputs),
        )


_FRAME = struct.Struct("<III")  # sizes of a frame's head, request body and response


@dataclass(frozen=True)
class Watch:
    """Tells the writer process which monitoring reference a variant's version is counted
    against (sent when the server starts and before a swapped-in version takes traffic)."""

    variant: str
    version: str | None
    reference: str  # path of the package's reference.json

    def frame(self) -> bytes:
        """A frame with an empty head: the writer reads it as a Watch, not a batch."""
        body = orjson.dumps(self.__dict__)
        return _FRAME.pack(0, len(body), 0) + body


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # e.g. an integer beyond 64 bits
        return json.dumps(value, default=str)


def read_json(body: bytes) -> Any:
    """Parse JSON; NaN and Infinity literals are read as numbers (as json.loads reads them).
    Raises ValueError when ``body`` is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


class StoreWriter:
    """Buffers prediction batches and commits them from one background thread: the writer
    process's half of the serving store (see :mod:`mlwright.serve.writer`)."""

    def __init__(
        self,
        path: Path,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        flush_rows: int = FLUSH_ROWS,
    ) -> None:
        self.path = path
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        # (variant, version) → the monitoring reference its served values are counted against
        self.references: dict[tuple[str, str | None], Watched] = {}
        self._saved: set[str] = set()  # references already in the store's drift_references
        self._counts: PendingCounts | None = None  # made when the first reference arrives
        self._conn = connect(path)
        self._batches: list[PredictionBatch] = []
        self._pending = 0  # rows in the buffered batches
        self._oldest: float | None = None
        self._lock = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="mlwright-store", daemon=True)
        self._thread.start()

    def watch(self, watch: Watch) -> None:
        """Count ``watch.variant``'s values served by ``watch.version`` against the reference
        at ``watch.reference`` from now on (batches already buffered included)."""
        from mlwright.serve.drift_counts import Watched

        try:
            watched = Watched.load(Path(watch.reference))
        except (OSError, ValueError) as exc:
            log.error("cannot monitor %s: its reference is unreadable (%s)", watch.variant, exc)
            return
        with self._lock:
            self.references[(watch.variant, watch.version)] = watched
            if self._counts is None:
                from mlwright.serve.drift_counts import PendingCounts

                self._counts = PendingCounts()

    def add(self, batch: PredictionBatch) -> None:
        if not len(batch):
            return
        with self._lock:
            self._batches.append(batch)
            self._pending += len(batch)
            if self._oldest is None:
                self._oldest = time.monotonic()
                self._lock.notify()  # start the writer's 100 ms clock
            elif self._pending >= self.flush_rows:
                self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closing:
                    if self._pending >= self.flush_rows:
                        break
                    deadlines = [
                        t
                        for t in (
                            None if self._oldest is None else self._oldest + self.flush_seconds,
                            None if self._counts is None else self._counts.due,
                        )
                        if t is not None
                    ]
                    if not deadlines:
                        self._lock.wait()
                        continue
                    wait = min(deadlines) - time.monotonic()
                    if wait <= 0:
                        break
                    self._lock.wait(wait)
                batches = self._take()
                done = self._closing and not self._batches
            if batches:
                try:
                    self._write(batches)
                except (sqlite3.Error, ValueError, KeyError, TypeError):
                    # the server keeps answering; the lost rows are counted in the log
                    log.exception("the serving store lost %d prediction(s)", sum(map(len, batches)))
            self._save_counts(force=done)
            if done:
                return

    def _take(self) -> list[PredictionBatch]:
        """The oldest buffered batches, up to :data:`MAX_WRITE_ROWS` rows (at least one batch):
        a backlog is written in bounded transactions, oldest first (with the lock held)."""
        rows = taken = 0
        while taken < len(self._batches):
            size = len(self._batches[taken])
            if taken and rows + size > MAX_WRITE_ROWS:
                break
            rows += size
            taken += 1
        batches, self._batches = self._batches[:taken], self._batches[taken:]
        self._pending -= rows
        if not self._batches:
            self._oldest = None  # else the rest is overdue: the next round writes at once
        return batches

    def _write(self, batches: list[PredictionBatch]) -> None:
        parsed = [batch.parsed() for batch in batches]
        inputs = [batch.inputs(p[0]) for batch, p in zip(batches, parsed, strict=True)]
        rows = [batch.row(p, i) for batch, p, i in zip(batches, parsed, inputs, strict=True)]
        with self._transaction():
            self._conn.executemany(
                "INSERT OR IGNORE INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        # the predictions are safe before any counting starts
        if self.references:
            try:
                self._count(batches, parsed, inputs)
            except Exception:  # the predictions are stored; only their drift counts are lost
                log.exception("drift counts of %d prediction(s) were lost", len(rows))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction that takes the write lock first (waiting up to the busy timeout
        for other writers) and is rolled back whole if anything in it fails."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _count(
        self,
        batches: list[PredictionBatch],
        parsed: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]],
        inputs: list[list[Any]],
    ) -> None:
        """Count the batches' values into their references' bins, per (reference, variant,
        minute); the counts are saved by :meth:`_save_counts`."""
        from mlwright.serve.drift_counts import BUCKET_SECONDS, count_batch

        with self._lock:
            references = dict(self.references)
        assert self._counts is not None
        groups: dict[tuple[str, str | None, int], tuple[dict[str, list[Any]], list[Any]]] = {}
        for batch, (_, answered), values in zip(batches, parsed, inputs, strict=True):
            if (batch.variant, batch.version) not in references or "~" in batch.request_id:
                continue  # no reference, or a shadow copy
            bucket = int(batch.ts // BUCKET_SECONDS) * BUCKET_SECONDS
            columns, predicted = groups.setdefault((batch.variant, batch.version, bucket), ({}, []))
            for name, column in zip(batch.features, zip(*values, strict=True), strict=False):
                columns.setdefault(name, []).extend(column)
            predicted.extend(o.get("prediction") for o in answered)
        model = batches[0].model
        for (variant, version, bucket), (columns, predicted) in groups.items():
            watched = references[(variant, version)]
            counted = count_batch(watched.reference, columns, len(predicted), predicted)
            self._counts.add(watched, model, version, variant, bucket, counted)

    def _save_counts(self, *, force: bool = False) -> None:
        """Write the pending drift counts when they are due (or ``force``)."""
        pending = self._counts
        if pending is None or pending.due is None:
            return
        if not force and time.monotonic() < pending.due:
            return
        try:
            with self._transaction():
                pending.save(self._conn, self._saved)
            self._saved.update(pending.references)
        except sqlite3.Error:  # the predictions are stored; only these counts are lost
            log.exception("drift counts of %d prediction(s) were lost", pending.rows)
        pending.clear()

    def close(self) -> None:
        """Flush what is buffered and stop the writer."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._thread.join()  # it returns once everything buffered is written
        self._conn.close()


def read_predictions(
    path: str | Path, *, model: str | None = None, since: float | None = None
) -> Iterator[dict[str, Any]]:
    """Every stored prediction, oldest first: ids, model, version, variant, entity key, the
    features as sent (``inputs``) and the answer (``output``)."""
    query = "SELECT request_id, ts, model, version, variant, entity_key, features, inputs, outputs"
    query += " FROM requests WHERE (? IS NULL OR model = ?) AND (? IS NULL OR ts >= ?) ORDER BY ts"
    if not Path(path).is_file():
        raise DataSourceError(
            f"no serving store at {path}", fix="pass the --store file of `mlwright serve`"
        )
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, timeout=30)
    try:
        for rid, ts, name, version, variant, key, features, inputs, outputs in conn.execute(
            query, (model, model, since, since)
        ):
            names = orjson.loads(features)
            for values, output in zip(orjson.loads(inputs), orjson.loads(outputs), strict=True):
                yield {
                    "prediction_id": output["prediction_id"],
                    "request_id": rid,
                    "ts": ts,
                    "model": name,
                    "version": version,
                    "variant": variant,
                    "entity_key": key,
                    "inputs": dict(zip(names, values, strict=True)),
                    "output": output,
                }
    finally:
        conn.close()
