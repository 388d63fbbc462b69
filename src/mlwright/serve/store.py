"""Moved to :mod:`mlwright.store`; this StoreWriter counts drift with the monitor's binning."""

from pathlib import Path

from mlwright.monitor.counts import count_batch
from mlwright.store import (
    FLUSH_ROWS,
    FLUSH_SECONDS,
    MAX_WRITE_ROWS,
    CountBatch,
    PredictionBatch,
    Watch,
    connect,
    read_json,
    read_predictions,
)
from mlwright.store import StoreWriter as _StoreWriter


class StoreWriter(_StoreWriter):
    """:class:`mlwright.store.StoreWriter` that counts drift with
    :func:`mlwright.monitor.counts.count_batch` unless given another ``count``."""

    def __init__(
        self,
        path: Path,
        *,
        count: CountBatch | None = count_batch,
        flush_seconds: float = FLUSH_SECONDS,
        flush_rows: int = FLUSH_ROWS,
    ) -> None:
        super().__init__(path, count=count, flush_seconds=flush_seconds, flush_rows=flush_rows)


__all__ = [
    "FLUSH_ROWS",
    "FLUSH_SECONDS",
    "MAX_WRITE_ROWS",
    "PredictionBatch",
    "StoreWriter",
    "Watch",
    "connect",
    "read_json",
    "read_predictions",
]
