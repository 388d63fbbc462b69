"""An experiment running in the server: the variants' slots, routing, and the shared state.

The champion's slot is the server's own; each challenger gets a slot of its own that must pass
its deployment gate before it takes traffic (until then, and whenever the experiment is not
running, every request goes to the champion). The experiment's status lives in the serving
store (:mod:`mlwright.store.experiments`), so every worker sees a stop, and a restart resumes
where it was. What needs no server (config, assignment, statistics, guardrails) is in
:mod:`mlwright.experiment`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwright.experiment.assignment import Router
from mlwright.experiment.config import ExperimentConfig
from mlwright.experiment.guardrails import VariantWindow, breaches, scores_of
from mlwright.experiment.state import split_status, stored_experiments
from mlwright.serve.metrics import ServerMetrics
from mlwright.serve.slot import Slot
from mlwright.store.experiments import load_or_register, set_status, set_step, status_of

log = logging.getLogger("mlwright.serve")

STATUS_SECONDS = 1.0  # how often a worker re-reads the experiment's status from the store
SHADOW_QUEUE = 256  # shadow copies waiting at most; more are dropped (and counted)


@dataclass
class ExperimentRuntime:
    config: ExperimentConfig
    slots: dict[str, Slot]  # variant name → slot; the champion's is the server's slot
    store: Path | None = None
    metrics: ServerMetrics | None = None
    server: str | None = None  # the served name, for an experiment started over the admin route
    router: Router = field(init=False)
    status: str = "running"  # running | stopped
    reason: str | None = None
    started: float = field(default_factory=time.time)
    step: int = 0  # the canary's step
    windows: dict[str, VariantWindow] = field(default_factory=dict)  # this worker's traffic
    _step_requests: int = 0  # challenger requests this worker saw at the current step
    shadow_dropped: int = 0  # copies not scored because the shadow thread was behind
    _shadow_pending: int = 0
    _executor: ThreadPoolExecutor | None = None
    _checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.router = Router(self.config)
        self.windows = {v.name: VariantWindow() for v in self.config.variants}
        if self.store is not None:
            self._load_or_register()
        self._set_gauge()

    # --- shadow -------------------------------------------------------------------------------
    def submit_shadow(self, job: Callable[[], None]) -> None:
        """Run ``job`` (the challenger scoring a copy) on the shadow thread; when it is
        :data:`SHADOW_QUEUE` requests behind, drop the copy and count it."""
        with self._lock:
            if self._shadow_pending >= SHADOW_QUEUE:
                self.shadow_dropped += 1
                return
            self._shadow_pending += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="mlwright-shadow")
            executor = self._executor

        def run() -> None:
            try:
                job()
            finally:
                with self._lock:
                    self._shadow_pending -= 1

        executor.submit(run)

    def close(self) -> None:
        """Finish the shadow copies already taken (the app's shutdown, before the writer)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # --- state shared through the store -------------------------------------------------------
    def _load_or_register(self) -> None:
        assert self.store is not None
        record = {"config": self.config.model_dump(), "started": self.started, "step": 0}
        if self.server is not None:  # the workers serving this name adopt it
            record["server"] = self.server
        found = load_or_register(self.store, self.config.id, record)
        if found is not None:
            saved, status = found
            self.started = float(saved.get("started", self.started))
            self.step = int(saved.get("step", 0))
            self.status, self.reason = split_status(status)

    def refresh(self) -> None:
        """Re-read the status (another worker or `mlwright experiment stop` may have changed it)."""
        if self.store is None or time.monotonic() - self._checked < STATUS_SECONDS:
            return
        self._checked = time.monotonic()
        found = status_of(self.store, self.config.id)
        if found is not None:
            status, step = found
            self.status, self.reason = split_status(status)
            if step is not None and step != self.step:
                self.step, self._step_requests = step, 0
            self._set_gauge()

    def stop(self, reason: str) -> None:
        """Route everything to the champion from now on, in every worker."""
        with self._lock:
            if self.status == "stopped":
                return
            self.status, self.reason = "stopped", reason
        log.warning(
            "experiment %s stopped: %s; all traffic goes to the champion", self.config.id, reason
        )
        if self.store is not None:
            set_status(self.store, self.config.id, f"stopped: {reason}")
        self._set_gauge()

    def _set_gauge(self) -> None:
        if self.metrics is not None:
            running = 1 if self.status == "running" else 0
            self.metrics.experiment_running.labels(self.config.id).set(running)

    # --- guardrails and the canary ------------------------------------------------------------
    def observe(self, variant: str, ms: float, columns: dict[str, Any], task: str) -> None:
        """A request ``variant`` answered in ``ms`` milliseconds with ``columns``."""
        with self._lock:
            self.windows[variant].observe(ms, scores_of(columns, task))
            challenger = variant != self.config.champion.name
            if challenger:
                self._step_requests += 1
        if self.metrics is not None:
            self.metrics.variant_requests.labels(self.config.id, variant).inc()
        if challenger and self.status == "running":
            self._judge(variant)

    def count_error(self, variant: str) -> None:
        """A request meant for ``variant`` on which it raised (the champion answered it)."""
        with self._lock:
            window = self.windows[variant]
            window.requests += 1
            window.errors += 1
        if self.status == "running":
            self._judge(variant)

    def _judge(self, variant: str) -> None:
        champion = self.windows[self.config.champion.name]
        found = breaches(self.config.guardrails, champion, self.windows[variant])
        if found:
            for guardrail, _ in found:
                if self.metrics is not None:
                    self.metrics.guardrail_trips.labels(self.config.id, variant, guardrail).inc()
            self.stop(f"guardrail: challenger {variant!r}: " + "; ".join(m for _, m in found))
            return
        canary = self.config.canary
        if (
            canary is not None
            and self.step < len(canary.steps) - 1
            and self._step_requests >= canary.min_requests
            and self.windows[variant].requests >= self.config.guardrails.min_requests
        ):
            with self._lock:
                self.step, self._step_requests = self.step + 1, 0
            log.warning(
                "experiment %s: guardrails hold; the canary moves to %.0f%% of the traffic",
                self.config.id,
                100 * canary.steps[self.step],
            )
            if self.store is not None:
                set_step(self.store, self.config.id, self.step)

    # --- routing ------------------------------------------------------------------------------
    def weights(self) -> dict[str, float]:
        return self.config.weights(self.step if self.config.canary is not None else None)

    def choose(self, key: str | None) -> str:
        """The variant that serves a request with entity ``key``."""
        self.refresh()
        champion = self.config.champion.name
        if self.status != "running":
            return champion
        name = self.router.assign(key, self.weights())
        slot = self.slots.get(name)
        return name if slot is not None and slot.ready else champion

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
            "weights": self.weights(),
            "canary": None
            if self.config.canary is None
            else {"step": self.step, "steps": self.config.canary.steps},
            "shadow_dropped_this_worker": self.shadow_dropped,
            "this_worker": {
                name: {
                    "requests": w.requests,
                    "errors": w.errors,
                    "p99_ms": w.p99_ms(),
                }
                for name, w in self.windows.items()
            },
        }


# set_status, set_step (mlwright.store.experiments) and stored_experiments
# (mlwright.experiment.state) are importable from here as well
__all__ = [
    "SHADOW_QUEUE",
    "STATUS_SECONDS",
    "ExperimentRuntime",
    "set_status",
    "set_step",
    "stored_experiments",
]
