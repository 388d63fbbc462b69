"""The serving store: SQLite in WAL mode, the one owner of its tables, their SQL and its reads.

- :mod:`~mlwright.store.schema`: the tables; :func:`connect` to write, :func:`reading` to read;
- :mod:`~mlwright.store.batch`: what a server worker hands its writer (answered requests,
  monitoring references);
- :mod:`~mlwright.store.process` and :mod:`~mlwright.store.writer`: the writer process, one per
  worker, which commits every 100 ms or 512 predictions (a hard kill loses at most that);
- :mod:`~mlwright.store.predictions`, :mod:`~mlwright.store.feedback`,
  :mod:`~mlwright.store.experiments`, :mod:`~mlwright.store.counts`: what is stored and read back
  (predictions with their inputs, feedback joined to its predictions at read time, experiments'
  shared state, drift counts per reference and minute).

The store counts served values for drift with the binning function its caller passes in (the
monitor's); it imports no monitoring code.
"""

from mlwright.store.batch import PredictionBatch, Watch, read_json
from mlwright.store.predictions import read_predictions
from mlwright.store.process import PredictionWriter
from mlwright.store.schema import connect, reading, transaction
from mlwright.store.writer import (
    FLUSH_ROWS,
    FLUSH_SECONDS,
    MAX_WRITE_ROWS,
    CountBatch,
    StoreWriter,
)

__all__ = [
    "FLUSH_ROWS",
    "FLUSH_SECONDS",
    "MAX_WRITE_ROWS",
    "CountBatch",
    "PredictionBatch",
    "PredictionWriter",
    "StoreWriter",
    "Watch",
    "connect",
    "read_json",
    "read_predictions",
    "reading",
    "transaction",
]
