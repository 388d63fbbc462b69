"""Experiments in the serving store: the state every worker shares (status, canary step).

One row per experiment: its record (the config, when it started, the canary's step) as JSON,
and its status (``running``, or ``stopped: <reason>``), so that a stop reaches every worker and a
restart resumes where the experiment was.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mlwright.store.schema import connect, reading


def load_or_register(
    store: Path, experiment_id: str, record: dict[str, Any]
) -> tuple[dict[str, Any], str] | None:
    """The experiment's stored record and status; None when the store did not know it and
    now keeps ``record`` for it, running."""
    conn = connect(store)
    try:
        row = conn.execute(
            "SELECT config, status FROM experiments WHERE id = ?", (experiment_id,)
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT OR IGNORE INTO experiments VALUES (?, ?, 'running', ?)",
                (experiment_id, json.dumps(record, allow_nan=False), time.time()),
            )
            return None
        return json.loads(row[0]), row[1]
    finally:
        conn.close()


def status_of(store: Path, experiment_id: str) -> tuple[str, int | None] | None:
    """The experiment's status and canary step as stored; None when the store does not know
    it."""
    conn = connect(store)
    try:
        row = conn.execute(
            "SELECT status, json_extract(config, '$.step') FROM experiments WHERE id = ?",
            (experiment_id,),
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else (row[0], None if row[1] is None else int(row[1]))


def set_status(store: Path, experiment_id: str, status: str) -> bool:
    """Write an experiment's status; False when the store does not know the experiment."""
    conn = connect(store)
    try:
        done = conn.execute(
            "UPDATE experiments SET status = ?, updated = ? WHERE id = ?",
            (status, time.time(), experiment_id),
        )
        return done.rowcount > 0
    finally:
        conn.close()


def set_step(store: Path, experiment_id: str, step: int) -> None:
    """Write the canary's step."""
    conn = connect(store)
    try:
        conn.execute(
            "UPDATE experiments SET config = json_set(config, '$.step', ?), updated = ? "
            "WHERE id = ?",
            (step, time.time(), experiment_id),
        )
    finally:
        conn.close()


def experiment_rows(store: Path) -> list[tuple[str, dict[str, Any], str, float]]:
    """Every experiment the store knows: (id, record, status, last updated)."""
    with reading(store, ("experiments",)) as conn:
        rows = conn.execute("SELECT id, config, status, updated FROM experiments").fetchall()
    return [(exp_id, json.loads(record), status, ts) for exp_id, record, status, ts in rows]


def experiment_record(store: Path, experiment_id: str) -> tuple[dict[str, Any], str] | None:
    """The experiment's stored record and status; None when the store does not know it (or
    does not exist yet)."""
    if not Path(store).is_file():
        return None
    with reading(store, ("experiments",)) as conn:
        row = conn.execute(
            "SELECT config, status FROM experiments WHERE id = ?", (experiment_id,)
        ).fetchone()
    return None if row is None else (json.loads(row[0]), row[1])


def running_on(store: Path, server: str) -> list[tuple[str, dict[str, Any]]]:
    """The running experiments whose record names ``server`` (experiments started over the
    admin route), the most recently started last: (id, record). Read-only: every worker polls
    it twice a second."""
    if not Path(store).is_file():
        return []
    with reading(store, ("experiments",)) as conn:
        rows = conn.execute(
            "SELECT id, config FROM experiments WHERE status = 'running' "
            "AND json_extract(config, '$.server') = ? "
            "ORDER BY json_extract(config, '$.started')",
            (server,),
        ).fetchall()
    return [(exp_id, json.loads(record)) for exp_id, record in rows]
