"""An experiment running in the server: the variants' slots, routing, and the shared state.

The champion's slot is the server's own; each challenger gets a slot of its own that must pass
its deployment gate before it takes traffic (until then, and whenever the experiment is not
running, every request goes to the champion). The experiment's status lives in the serving
store, so every worker sees a stop, and a restart resumes where it was.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwright.serve.experiment import ExperimentConfig, Router
from mlwright.serve.slot import Slot
from mlwright.serve.store import connect

log = logging.getLogger("mlwright.serve")

STATUS_SECONDS = 1.0  # how often a worker re-reads the experiment's status from the store


@dataclass
class ExperimentRuntime:
    config: ExperimentConfig
    slots: dict[str, Slot]  # variant name → slot; the champion's is the server's slot
    store: Path | None = None
    router: Router = field(init=False)
    status: str = "running"  # running | stopped
    reason: str | None = None
    started: float = field(default_factory=time.time)
    errors: dict[str, int] = field(default_factory=dict)  # challenger raised; champion served
    _checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.check_supported(self.config)
        self.router = Router(self.config)
        if self.store is not None:
            self._load_or_register()

    @staticmethod
    def check_supported(config: ExperimentConfig) -> None:
        """Refuse what this server cannot run yet, rather than run it wrongly."""
        unsupported = []
        if config.mode == "shadow":
            unsupported.append("shadow mode")
        if config.canary is not None:
            unsupported.append("a canary ramp")
        if unsupported:
            from mlwright.errors import ConfigError

            raise ConfigError(
                f"this version of the server cannot run {' or '.join(unsupported)} yet",
                fix="run a split experiment (--challenger X --split F)",
            )

    # --- state shared through the store -------------------------------------------------------
    def _load_or_register(self) -> None:
        assert self.store is not None
        conn = connect(self.store)
        try:
            row = conn.execute(
                "SELECT config, status FROM experiments WHERE id = ?", (self.config.id,)
            ).fetchone()
            if row is None:
                record = {"config": self.config.model_dump(), "started": self.started}
                conn.execute(
                    "INSERT OR IGNORE INTO experiments VALUES (?, ?, 'running', ?)",
                    (self.config.id, json.dumps(record), time.time()),
                )
            else:
                saved = json.loads(row[0])
                self.started = float(saved.get("started", self.started))
                self.status, self.reason = _split_status(row[1])
        finally:
            conn.close()

    def refresh(self) -> None:
        """Re-read the status (another worker or `mlwright ab stop` may have changed it)."""
        if self.store is None or time.monotonic() - self._checked < STATUS_SECONDS:
            return
        self._checked = time.monotonic()
        conn = connect(self.store)
        try:
            row = conn.execute(
                "SELECT status FROM experiments WHERE id = ?", (self.config.id,)
            ).fetchone()
        finally:
            conn.close()
        if row is not None:
            self.status, self.reason = _split_status(row[0])

    def stop(self, reason: str) -> None:
        """Route everything to the champion from now on, in every worker."""
        with self._lock:
            if self.status == "stopped":
                return
            self.status, self.reason = "stopped", reason
        log.warning("experiment %s stopped: %s", self.config.id, reason)
        if self.store is not None:
            set_status(self.store, self.config.id, f"stopped: {reason}")

    # --- routing ------------------------------------------------------------------------------
    def weights(self) -> dict[str, float]:
        return self.config.weights()

    def choose(self, key: str | None) -> str:
        """The variant that serves a request with entity ``key``."""
        self.refresh()
        champion = self.config.champion.name
        if self.status != "running":
            return champion
        name = self.router.assign(key, self.weights())
        slot = self.slots.get(name)
        return name if slot is not None and slot.ready else champion

    def count_error(self, variant: str) -> None:
        with self._lock:
            self.errors[variant] = self.errors.get(variant, 0) + 1

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.config.id,
            "mode": self.config.mode,
            "status": self.status,
            "reason": self.reason,
            "started": self.started,
            "variants": [
                {
                    "name": v.name,
                    "model": v.model,
                    "version": self.slots[v.name].current_version,
                    "ready": self.slots[v.name].ready,
                    "failure": self.slots[v.name].failure,
                }
                for v in self.config.variants
            ],
            "challenger_errors_this_worker": dict(self.errors),
        }


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


def _split_status(text: str) -> tuple[str, str | None]:
    status, _, reason = text.partition(": ")
    return status, reason or None
