"""What the server serves, and how a new version takes over without a failed request.

A swap loads the new package in the background (checksums first), requires the same feature
columns and kinds (the request model was generated from them), runs the deployment gate, and
only then replaces the active model in one assignment. Requests hold the model they started with.
If anything fails, the previous model keeps serving and ``/ready`` says why it is not ready.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlwright.errors import MlwrightError
from mlwright.package.model import Model
from mlwright.serve.gate import GateResult, run_gate

if TYPE_CHECKING:
    from mlwright.serve.app import ServeSettings
    from mlwright.serve.metrics import ServerMetrics

log = logging.getLogger("mlwright.serve")


@dataclass(frozen=True)
class Active:
    """A model that passed its gate and takes traffic (replaced as a whole on a swap)."""

    model: Model
    version: str | None
    gate: GateResult


@dataclass
class Slot:
    """What is served, and why /ready would say no."""

    name: str
    candidate: Model  # the model loaded at start, before its gate ran
    version: str | None
    ref: str | None = None  # registry reference the server follows, if any
    active: Active | None = None
    failure: str | None = "the deployment gate has not run yet"
    threads: int | None = None  # what one predict call of a swapped-in model may use
    swapping: threading.Lock = field(default_factory=threading.Lock)
    # called with (model, version) after a new version passed its gate, before it takes traffic
    on_swap: list[Callable[[Model, str | None], None]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.active is not None and self.failure is None

    @property
    def current_version(self) -> str | None:
        return self.active.version if self.active else self.version


def schema_change(old: Model, new: Model) -> str | None:
    """Why ``new`` cannot take ``old``'s requests, or None."""
    before = [(c.name, c.kind) for c in old.schema.features]
    after = [(c.name, c.kind) for c in new.schema.features]
    if before != after:
        return (
            f"its features {after} differ from the served ones {before}; restart the "
            "server to serve a model with another schema"
        )
    if old.task != new.task or old.classes != new.classes:
        return "its task or classes differ from the served model's"
    return None


def swap(slot: Slot, ref: str, metrics: ServerMetrics | None = None) -> dict[str, Any]:
    """Load ``ref``, gate it, and make it the active model. Never raises."""
    from mlwright.package.loading import load, tabular
    from mlwright.track.registry import resolve

    if not slot.swapping.acquire(blocking=False):
        return {"status": "busy", "reason": "a swap is already running"}
    try:
        try:
            # registry references only: a swap is asked for over HTTP or follows an alias
            loaded = load(ref, resolve=resolve, threads=slot.threads, registry_only=True)
            model = tabular(loaded, "a swap of a tabular server")
            version = (model.registry or {}).get("version")
        except MlwrightError as exc:
            slot.failure = f"{ref} could not be loaded: {exc.message}"
            return {"status": "refused", "reason": slot.failure}
        except Exception as exc:  # a swap never takes the server down, whatever it loads
            log.exception("loading %s failed", ref)
            slot.failure = f"{ref} could not be loaded: {type(exc).__name__}: {str(exc)[:200]}"
            return {"status": "refused", "reason": slot.failure}
        active = slot.active
        if active is not None and version == active.version and slot.failure is None:
            return {"status": "unchanged", "version": version}
        baseline = active.model if active is not None else slot.candidate
        problem = schema_change(baseline, model)
        gate = None if problem else run_gate(model)
        if problem or gate is None or not gate.ok:
            reason = problem or (gate.reason if gate else "gate not run")
            slot.failure = f"version {version} was not swapped in: {reason}"
            log.error(slot.failure)
            return {"status": "refused", "reason": slot.failure}
        for hook in slot.on_swap:
            hook(model, version)
        slot.active, slot.failure = Active(model, version, gate), None
        if metrics is not None:
            metrics.ready.labels(slot.name, version or "").set(1)
        log.info("now serving %s version %s", slot.name, version)
        return {"status": "swapped", "version": version}
    finally:
        slot.swapping.release()


async def poll(slot: Slot, settings: ServeSettings, metrics: ServerMetrics) -> None:
    """Follow the registry alias: re-resolve it every ``poll_seconds``."""
    assert settings.poll_seconds and slot.ref
    while True:
        await asyncio.sleep(settings.poll_seconds)
        try:
            await asyncio.to_thread(swap, slot, slot.ref, metrics)
        except Exception:  # keep polling; the failure is logged and shown by /ready
            log.exception("polling %s failed", slot.ref)
