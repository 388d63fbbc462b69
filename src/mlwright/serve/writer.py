"""Moved to :mod:`mlwright.store.process`; this writer counts drift with the monitor's binning."""

from pathlib import Path

from mlwright.monitor.counts import count_batch
from mlwright.store.batch import Watch
from mlwright.store.process import PredictionWriter as _PredictionWriter
from mlwright.store.process import main
from mlwright.store.writer import FLUSH_ROWS, FLUSH_SECONDS, CountBatch


class PredictionWriter(_PredictionWriter):
    """:class:`mlwright.store.PredictionWriter` whose process counts drift with
    :func:`mlwright.monitor.counts.count_batch` unless given another ``count``."""

    def __init__(
        self,
        path: Path,
        *,
        count: CountBatch | None = count_batch,
        flush_seconds: float = FLUSH_SECONDS,
        flush_rows: int = FLUSH_ROWS,
        watches: list[Watch] | None = None,
    ) -> None:
        super().__init__(
            path, count=count, flush_seconds=flush_seconds, flush_rows=flush_rows, watches=watches
        )


__all__ = ["PredictionWriter", "main"]

if __name__ == "__main__":  # the writer process, started as before
    import sys

    sys.exit(main(sys.argv[1:]))
