"""The serving store's tables, and how connections to it are opened.

One SQLite file in WAL mode (``--store``; ``./mlwright-serve.db`` by default): ``requests``, one
row per answered request, with the ``predictions`` view over it (one row per prediction);
``feedback``; ``experiments`` and ``assignments``; ``drift_references`` and ``drift_counts``;
``alias_history``; ``autopilot_rollouts`` and ``autopilot_decisions`` (the continuous-training
loop's state and its decision log). :func:`connect` opens it to write, creating or upgrading
the tables; :func:`reading` opens it read-only, and refuses a file that is missing or is not a
serving store.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlwright.errors import DataSourceError

log = logging.getLogger("mlwright.serve")

TABLES = (
    "requests",
    "feedback",
    "experiments",
    "assignments",
    "drift_references",
    "drift_counts",
    "alias_history",
    "autopilot_rollouts",
    "autopilot_decisions",
)

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
CREATE TABLE IF NOT EXISTS autopilot_rollouts (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    phase TEXT NOT NULL,
    state TEXT NOT NULL,
    started REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS autopilot_rollouts_model ON autopilot_rollouts (model, phase);
CREATE TABLE IF NOT EXISTS autopilot_decisions (
    ts REAL NOT NULL,
    model TEXT NOT NULL,
    rollout TEXT,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL,
    version TEXT,
    run_id TEXT
);
CREATE INDEX IF NOT EXISTS autopilot_decisions_model ON autopilot_decisions (model, ts);
"""

_FIX = "pass the --store file of `mlwright serve`"


def connect(path: Path) -> sqlite3.Connection:
    """A connection that writes (autocommit; see :func:`transaction`), the tables made or
    upgraded first."""
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


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the write lock first (waiting up to the busy timeout for
    other writers) and is rolled back whole if anything in it fails."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def reading(store: str | Path, tables: tuple[str, ...] = TABLES) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the serving store at ``store``, closed after use; the store
    must have ``tables`` (those the caller reads)."""
    if not Path(store).is_file():
        raise DataSourceError(f"no serving store at {store}", fix=_FIX)
    conn = sqlite3.connect(f"file:{Path(store)}?mode=ro", uri=True, timeout=30)
    try:
        try:
            found = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            raise DataSourceError(f"{store} is not a serving store ({exc})", fix=_FIX) from None
        missing = [t for t in tables if t not in found]
        if missing:
            raise DataSourceError(
                f"{store} has no {', '.join(missing)} table: it is not a serving store of this "
                "mlwright version",
                fix=f"{_FIX}, or serve once with this version to upgrade it",
            )
        yield conn
    finally:
        conn.close()
