"""The writer: commits answered requests to the serving store from one background thread.

It runs inside the writer process (:mod:`mlwright.store.process`), one per server worker, and
commits when 512 predictions are waiting or the oldest has waited 100 ms, whichever comes first;
a backlog is written in bounded transactions, oldest first. Once told which reference a
variant's version is counted against (:class:`~mlwright.store.batch.Watch`), it also counts the
served values into that reference's bins, with the binning function it was given
(:data:`CountBatch`), and saves the counts about once a second (:mod:`mlwright.store.counts`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwright.store.batch import PredictionBatch, Watch
from mlwright.store.schema import connect, transaction

if TYPE_CHECKING:
    from mlwright.store.counts import PendingCounts, Watched

log = logging.getLogger("mlwright.serve")

FLUSH_SECONDS = 0.1
FLUSH_ROWS = 512
MAX_WRITE_ROWS = 8 * FLUSH_ROWS  # one transaction's most rows, when a backlog builds up

# (reference, feature name → the values as served, rows, predictions) → column → counts: one
# batch's values counted into the reference's bins (the monitor's
# :func:`mlwright.monitor.counts.count_batch`); the store adds the counts up and keeps them
CountBatch = Callable[
    [dict[str, Any], Mapping[str, Sequence[Any]], int, Sequence[Any]],
    dict[str, dict[str, Any]],
]


class StoreWriter:
    """Buffers prediction batches and commits them from one background thread: the writer
    process's half of the serving store. Without ``count``, nothing is counted for drift."""

    def __init__(
        self,
        path: Path,
        *,
        count: CountBatch | None = None,
        flush_seconds: float = FLUSH_SECONDS,
        flush_rows: int = FLUSH_ROWS,
    ) -> None:
        self.path = path
        self.count = count
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
        if self.count is None:
            log.error("cannot monitor %s: this writer has no binning function", watch.variant)
            return
        from mlwright.store.counts import Watched

        try:
            watched = Watched.load(Path(watch.reference))
        except (OSError, ValueError) as exc:
            log.error("cannot monitor %s: its reference is unreadable (%s)", watch.variant, exc)
            return
        with self._lock:
            self.references[(watch.variant, watch.version)] = watched
            if self._counts is None:
                from mlwright.store.counts import PendingCounts

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
        with transaction(self._conn):
            self._conn.executemany(
                "INSERT OR IGNORE INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        # the predictions are safe before any counting starts
        if self.references:
            try:
                self._count(batches, parsed, inputs)
            except Exception:  # the predictions are stored; only their drift counts are lost
                log.exception("drift counts of %d prediction(s) were lost", len(rows))

    def _count(
        self,
        batches: list[PredictionBatch],
        parsed: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]],
        inputs: list[list[Any]],
    ) -> None:
        """Count the batches' values into their references' bins, per (reference, variant,
        minute); the counts are saved by :meth:`_save_counts`."""
        from mlwright.store.counts import BUCKET_SECONDS

        with self._lock:
            references = dict(self.references)
        assert self._counts is not None and self.count is not None
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
            counted = self.count(watched.reference, columns, len(predicted), predicted)
            self._counts.add(watched, model, version, variant, bucket, counted)

    def _save_counts(self, *, force: bool = False) -> None:
        """Write the pending drift counts when they are due (or ``force``)."""
        pending = self._counts
        if pending is None or pending.due is None:
            return
        if not force and time.monotonic() < pending.due:
            return
        try:
            with transaction(self._conn):
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
