"""The serving store: SQLite in WAL mode, written by one background writer per worker.

Predictions are appended to an in-memory buffer on the request path and committed by the
writer thread when 512 rows are waiting or the oldest has waited 100 ms, whichever comes first.
A hard kill can therefore lose at most the rows of the last 100 ms (plus the commit in flight);
a graceful shutdown flushes everything. Feedback, experiments, assignments and alias history
have their own tables (CONTRACTS.md), read by A/B analysis and monitoring.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FLUSH_SECONDS = 0.1
FLUSH_ROWS = 512

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    ts REAL NOT NULL,
    model TEXT NOT NULL,
    version TEXT,
    variant TEXT NOT NULL,
    entity_key TEXT,
    inputs TEXT NOT NULL,
    output TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts);
CREATE INDEX IF NOT EXISTS predictions_model ON predictions (model, version, ts);
CREATE TABLE IF NOT EXISTS feedback (
    prediction_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL
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
    conn.executescript(_SCHEMA)
    return conn


class PredictionWriter:
    """Buffers prediction rows and commits them from one background thread."""

    def __init__(
        self, path: Path, *, flush_seconds: float = FLUSH_SECONDS, flush_rows: int = FLUSH_ROWS
    ) -> None:
        self.path = path
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self._conn = connect(path)
        self._rows: list[tuple[Any, ...]] = []
        self._oldest: float | None = None
        self._lock = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="mlwright-store", daemon=True)
        self._thread.start()

    def add(self, rows: Iterable[tuple[Any, ...]]) -> None:
        with self._lock:
            before = len(self._rows)
            self._rows.extend(rows)
            if self._oldest is None and len(self._rows) > before:
                self._oldest = time.monotonic()
                self._lock.notify()  # start the writer's 100 ms clock
            elif len(self._rows) >= self.flush_rows:
                self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closing:
                    if len(self._rows) >= self.flush_rows:
                        break
                    if self._oldest is not None:
                        wait = self._oldest + self.flush_seconds - time.monotonic()
                        if wait <= 0:
                            break
                        self._lock.wait(wait)
                    else:
                        self._lock.wait()
                batch, self._rows, self._oldest = self._rows, [], None
                closing = self._closing
            if batch:
                self._write(batch)
            if closing:
                return

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        self._conn.execute("BEGIN")
        self._conn.executemany(
            "INSERT OR IGNORE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch
        )
        self._conn.execute("COMMIT")

    def close(self) -> None:
        """Flush what is buffered and stop the writer."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._thread.join(timeout=30)
        self._conn.close()


def prediction_rows(
    request_id: str,
    model: str,
    version: str | None,
    variant: str,
    entity_key: str | None,
    records: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
) -> list[tuple[Any, ...]]:
    now = time.time()
    return [
        (
            out["prediction_id"],
            request_id,
            now,
            model,
            version,
            variant,
            entity_key,
            json.dumps(rec, default=str),
            json.dumps(out, default=str),
        )
        for rec, out in zip(records, outputs, strict=True)
    ]
