"""The continuous-training loop's state in the serving store: its rollouts and its decisions.

A **rollout** is one pass of the loop for one model, from the trigger that started it to the
promotion, rejection or rollback that ended it: its id, the model, its phase and its state (JSON:
the challenger version, the experiment ids, when each phase began). At most one rollout per model
is open (its phase is not ``done``): the loop reads it back after a restart and goes on from its
phase, so nothing lives only in memory.

A **decision** is one thing the loop decided, with its reason and the evidence it rested on
(JSON): the timeline `mlwright monitor` shows, and the MLflow run that logs it (``run_id``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlwright.store.schema import connect, reading, transaction

DONE = "done"


@dataclass
class Rollout:
    id: str
    model: str
    phase: str
    state: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    updated: float = 0.0


@dataclass(frozen=True)
class Decision:
    model: str
    action: str  # trigger | retrain | shadow | experiment | promote | reject | rollback | ...
    reason: str
    evidence: dict[str, Any]
    rollout: str | None = None
    version: str | None = None
    run_id: str | None = None
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_rollout(store: Path, model: str) -> Rollout | None:
    """The model's open rollout (its phase is not ``done``), or None."""
    return _latest(store, model, open_only=True)


def last_rollout(store: Path, model: str) -> Rollout | None:
    """The model's latest rollout, open or done (cooldowns count from when it ended)."""
    return _latest(store, model, open_only=False)


def _latest(store: Path, model: str, *, open_only: bool) -> Rollout | None:
    conn = connect(store)
    try:
        row = conn.execute(
            "SELECT id, model, phase, state, started, updated FROM autopilot_rollouts "
            "WHERE model = ? AND (? = 0 OR phase != ?) ORDER BY started DESC LIMIT 1",
            (model, int(open_only), DONE),
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else _rollout(row)


def count_rollouts(store: Path, model: str) -> int:
    conn = connect(store)
    try:
        (n,) = conn.execute(
            "SELECT COUNT(*) FROM autopilot_rollouts WHERE model = ?", (model,)
        ).fetchone()
    finally:
        conn.close()
    return int(n)


def begin_rollout(store: Path, rollout: Rollout) -> bool:
    """Store a new open rollout; False (and nothing written) when the model has one open
    already: at most one rollout at a time, even with two loops racing."""
    conn = connect(store)
    try:
        with transaction(conn):
            busy = conn.execute(
                "SELECT 1 FROM autopilot_rollouts WHERE model = ? AND phase != ?",
                (rollout.model, DONE),
            ).fetchone()
            if busy is not None:
                return False
            now = time.time()
            rollout.started = rollout.started or now
            rollout.updated = now
            conn.execute(
                "INSERT INTO autopilot_rollouts VALUES (?, ?, ?, ?, ?, ?)",
                (
                    rollout.id,
                    rollout.model,
                    rollout.phase,
                    json.dumps(rollout.state),
                    rollout.started,
                    rollout.updated,
                ),
            )
        return True
    finally:
        conn.close()


def save_rollout(store: Path, rollout: Rollout) -> None:
    """Write the rollout's phase and state."""
    rollout.updated = time.time()
    conn = connect(store)
    try:
        conn.execute(
            "UPDATE autopilot_rollouts SET phase = ?, state = ?, updated = ? WHERE id = ?",
            (rollout.phase, json.dumps(rollout.state), rollout.updated, rollout.id),
        )
    finally:
        conn.close()


def record_decision(store: Path, decision: Decision) -> None:
    conn = connect(store)
    try:
        conn.execute(
            "INSERT INTO autopilot_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                decision.ts,
                decision.model,
                decision.rollout,
                decision.action,
                decision.reason,
                json.dumps(decision.evidence, default=str),
                decision.version,
                decision.run_id,
            ),
        )
    finally:
        conn.close()


def decisions(
    store: str | Path, *, model: str | None = None, since: float | None = None
) -> list[dict[str, Any]]:
    """Every decision recorded (of ``model``, since ``since``), oldest first; none from a store
    written before the loop existed."""
    if not Path(store).is_file():
        return []
    columns = ("ts", "model", "rollout", "action", "reason", "evidence", "version", "run_id")
    with reading(store, ()) as conn:
        known = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='autopilot_decisions'"
        ).fetchone()
        if known is None:
            return []
        rows = conn.execute(
            f"SELECT {', '.join(columns)} FROM autopilot_decisions WHERE (? IS NULL OR model = ?) "
            "AND (? IS NULL OR ts >= ?) ORDER BY ts",
            (model, model, since, since),
        ).fetchall()
    found = [dict(zip(columns, row, strict=True)) for row in rows]
    for d in found:
        d["evidence"] = json.loads(d["evidence"])
    return found


def _rollout(row: tuple[Any, ...]) -> Rollout:
    rid, model, phase, state, started, updated = row
    return Rollout(rid, model, phase, json.loads(state), float(started), float(updated))
