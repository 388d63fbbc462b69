"""Moved to :mod:`mlwright.monitor.counts` and :mod:`mlwright.store.counts`."""

from mlwright.monitor.counts import (
    PREDICTION,
    count_batch,
    drift_of,
    latest_since,
    timeline,
    total,
    window_buckets,
    window_counts,
    window_drift,
)
from mlwright.store.counts import (
    BUCKET_SECONDS,
    ROWS,
    SAVE_SECONDS,
    PendingCounts,
    Watched,
    add_counts,
    bucket_counts,
    digest_of,
    merge,
    monitored,
    save_reference,
    stored_reference,
)
from mlwright.store.schema import reading

__all__ = [
    "BUCKET_SECONDS",
    "PREDICTION",
    "ROWS",
    "SAVE_SECONDS",
    "PendingCounts",
    "Watched",
    "add_counts",
    "bucket_counts",
    "count_batch",
    "digest_of",
    "drift_of",
    "latest_since",
    "merge",
    "monitored",
    "reading",
    "save_reference",
    "stored_reference",
    "timeline",
    "total",
    "window_buckets",
    "window_counts",
    "window_drift",
]
