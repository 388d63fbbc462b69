"""Experiments started while the server runs (``POST /v1/admin/experiments``), in every worker.

The worker that receives the request loads the challenger from the registry, checks that it
takes the champion's columns, gates it, and writes the experiment to the serving store with the
served name. Every other worker of the same store finds that record within
:data:`ADOPT_SECONDS` and does the same (loading and gating in a thread while it keeps serving),
so that all of them route alike. A stop written to the store reaches every worker the same way
(:meth:`ExperimentRuntime.refresh`), and a later experiment replaces a stopped one. A server
started with ``--challenger`` runs its own experiment, and takes no other while it runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlwright.errors import MlwrightError
from mlwright.experiment.config import ExperimentConfig, Guardrails, Variant
from mlwright.experiment.state import split_status
from mlwright.serve.experiment_runtime import ExperimentRuntime
from mlwright.serve.gate import GateResult, run_gate
from mlwright.serve.schemas import jsonable
from mlwright.serve.slot import Active, Slot, schema_change
from mlwright.store import Watch
from mlwright.store.experiments import experiment_record, running_on, set_status, status_of
from mlwright.track.registry import parse as parse_ref

if TYPE_CHECKING:
    from mlwright.serve.tabular import TabularServed

log = logging.getLogger("mlwright.serve")

ADOPT_SECONDS = 0.5  # how often a worker looks for an experiment started by another one
CHAMPION, CHALLENGER = "champion", "challenger"  # the variants' names
_FIX = "see POST /v1/admin/experiments in /docs"


class StartExperiment(BaseModel):
    """The body of ``POST /v1/admin/experiments``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="the experiment's id: letters, digits, _ . - (at most 64)",
    )
    challenger: str = Field(description="a registry reference: NAME/VERSION or NAME@ALIAS")
    mode: Literal["shadow", "split"] = Field(
        "split",
        description="split: the challenger answers its share of the traffic; shadow: it "
        "scores a copy of every request and the champion answers",
    )
    weight: float | None = Field(
        None, ge=0.0, le=1.0, description="the challenger's share of traffic (split mode)"
    )
    guardrails: Guardrails = Guardrails()

    @field_validator("challenger")
    @classmethod
    def _registry_only(cls, value: str) -> str:
        # a request must never name a path: only what the registry verified is loaded
        if parse_ref(value) is None:
            raise ValueError("only registry references are accepted (NAME/VERSION, NAME@ALIAS)")
        return value

    def config(self, champion: str) -> ExperimentConfig:
        """The experiment between the served ``champion`` and this challenger."""
        weight = 0.0 if self.mode == "shadow" else self.weight
        return ExperimentConfig(
            id=self.id,
            mode=self.mode,
            variants=[
                Variant(name=CHAMPION, model=champion),
                Variant(name=CHALLENGER, model=self.challenger, weight=weight),
            ],
            guardrails=self.guardrails,
        )


class StopExperiment(BaseModel):
    """The body of ``POST /v1/admin/experiments/{id}/stop``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field("stopped over the admin route", min_length=1, max_length=500)


def body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """A body's validation errors as the contract's error items, each naming its field by its
    path (``guardrails.max_error_rate``)."""
    return [
        {
            "record": None,
            "field": ".".join(str(p) for p in err["loc"]) or None,
            "value": None if err["type"] == "missing" else jsonable(err.get("input")),
            "reason": err["msg"],
            "fix": _FIX,
        }
        for err in exc.errors()[:20]
    ]


def prepare(ref: str, champion: Slot, gate: bool) -> Slot:
    """The challenger ``ref`` loaded from the registry into a slot of its own and gated; when
    it cannot take traffic, the slot's ``failure`` says why (and it has no active model)."""
    from mlwright.package.loading import load, tabular
    from mlwright.track.registry import resolve

    try:
        loaded = load(ref, resolve=resolve, threads=champion.threads, registry_only=True)
        model = tabular(loaded, "an experiment")
    except MlwrightError as exc:
        return _unusable(ref, champion, f"{ref} could not be loaded: {exc.message}")
    except Exception as exc:  # whatever the registry holds, the champion keeps serving
        log.exception("loading %s failed", ref)
        why = f"{ref} could not be loaded: {type(exc).__name__}: {str(exc)[:200]}"
        return _unusable(ref, champion, why)
    registry = model.registry or {}
    version = registry.get("version")
    slot = Slot(
        name=registry.get("name") or model.name,
        candidate=model,
        version=version,
        ref=ref,
        threads=champion.threads,
    )
    baseline = champion.active.model if champion.active is not None else champion.candidate
    problem = schema_change(baseline, model)
    if problem:  # the message's advice (restart the server) is for a swap, not an experiment
        slot.failure = f"{ref} takes other input than the champion: "
        slot.failure += problem.partition("; restart")[0]
        return slot
    try:
        result = run_gate(model) if gate else GateResult(True, "gate disabled", {})
    except Exception as exc:  # a broken challenger must not take the server down
        result = GateResult(False, f"the gate raised {type(exc).__name__}: {exc}", {})
    if result.ok:
        slot.active, slot.failure = Active(model, version, result), None
    else:
        slot.failure = f"{ref} failed its deployment gate: {result.reason}"
    return slot


def _unusable(ref: str, champion: Slot, why: str) -> Slot:
    """A slot that never serves (no active model), saying ``why``."""
    parsed = parse_ref(ref)
    name, version = (parsed[0], parsed[2]) if parsed else (ref, None)
    return Slot(name=name, candidate=champion.candidate, version=version, ref=ref, failure=why)


def stored_description(exp_id: str, record: dict[str, Any], status: str) -> dict[str, Any]:
    """An experiment as the store keeps it (one this worker does not run)."""
    state, reason = split_status(status)
    config = record.get("config") or {}
    return {
        "id": exp_id,
        "mode": config.get("mode"),
        "status": state,
        "reason": reason,
        "started": record.get("started"),
        "server": record.get("server"),
        "variants": [
            {"name": v.get("name"), "model": v.get("model")} for v in config.get("variants", [])
        ],
    }


class RuntimeExperiments:
    """This worker's part in experiments started at run time: it starts and stops them when
    asked over the admin routes, and adopts those other workers started."""

    def __init__(self, served: TabularServed) -> None:
        self.served = served
        self.own = served.runtime  # the experiment the server was started with, if any
        self.lock = asyncio.Lock()  # one start, stop or adoption at a time in this worker
        # called with the new runtime when this worker starts routing through another one
        self.on_change: list[Callable[[ExperimentRuntime], None]] = []
        self.task: asyncio.Task[None] | None = None
        self._unreadable: set[str] = set()  # stored records this worker cannot run

    @property
    def store(self) -> Path | None:
        store = self.served.settings.store
        return Path(store) if store else None

    def start(self) -> None:
        """Follow the store (with several workers, each one does)."""
        if self.store is not None:
            self.task = asyncio.create_task(self._follow())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def describe(self, runtime: ExperimentRuntime) -> dict[str, Any]:
        return {**runtime.describe(), "server": runtime.server}

    # --- the admin routes -------------------------------------------------------------------
    async def begin(self, body: StartExperiment) -> tuple[int, dict[str, Any]]:
        """Start the experiment ``body`` describes: (HTTP status, answer)."""
        served, store = self.served, self.store
        config = body.config(served.slot.ref or served.name)
        wanted = {"config": json.loads(config.model_dump_json()), "server": served.name}
        async with self.lock:
            current = served.runtime
            found = None
            if store is not None:
                found = await asyncio.to_thread(experiment_record, store, config.id)
            elif current is not None and current.config.id == config.id:
                saved = {"config": current.config.model_dump(), "server": current.server}
                found = (saved, current.status)  # answered from ``current`` itself
            if found is not None:
                return await self._again(config, wanted, *found)
            busy = await self._running_other(config.id)
            if busy is not None:
                return 409, _busy(busy)
            challenger = await asyncio.to_thread(
                prepare, body.challenger, served.slot, served.settings.gate
            )
            runtime = await asyncio.to_thread(self._runtime, config, challenger)
            if challenger.failure is not None:
                await asyncio.to_thread(runtime.stop, challenger.failure)
            await self._install(runtime)
        if challenger.failure is not None:
            fix = "register a challenger trained on the champion's columns that passes its gate"
            answer = _error("challenger", challenger.failure, fix, body.challenger)
            return 409, {**answer, "experiment": self.describe(runtime)}
        return 200, self.describe(runtime)

    async def end(self, experiment_id: str, reason: str) -> tuple[int, dict[str, Any]]:
        """Stop the experiment ``experiment_id`` in every worker: (HTTP status, answer)."""
        async with self.lock:
            current = self.served.runtime
            if current is not None and current.config.id == experiment_id:
                await asyncio.to_thread(current.stop, reason)
                self._sync_variants(current)
                return 200, self.describe(current)
            store = self.store
            found = None
            if store is not None:
                found = await asyncio.to_thread(experiment_record, store, experiment_id)
            if store is None or found is None:
                return 404, _error(
                    None,
                    f"no experiment {experiment_id!r} here",
                    "GET /v1/experiments lists the experiment this server runs",
                )
            record, status = found
            if status == "running":
                await asyncio.to_thread(set_status, store, experiment_id, f"stopped: {reason}")
                status = f"stopped: {reason}"
            return 200, stored_description(experiment_id, record, status)

    async def _again(
        self, config: ExperimentConfig, wanted: dict[str, Any], record: dict[str, Any], status: str
    ) -> tuple[int, dict[str, Any]]:
        """A start of an id the store knows: its current state when the configuration is the
        same (adopting it here when it runs and this worker does not run it yet), else 409."""
        saved = {"config": record.get("config"), "server": record.get("server")}
        if saved != wanted:
            return 409, _error(
                "id",
                f"experiment {config.id!r} exists with another configuration",
                "choose a new id, or send the same configuration again",
                config.id,
            )
        current = self.served.runtime
        if current is not None and current.config.id == config.id:
            return 200, self.describe(current)
        if status != "running":
            return 200, stored_description(config.id, record, status)
        busy = await self._running_other(config.id)
        if busy is not None:
            return 409, _busy(busy)
        runtime = await self._adopt(config, record)
        return 200, self.describe(runtime)

    async def _running_other(self, experiment_id: str) -> str | None:
        """The id of another experiment running on this server, if any."""
        current, store = self.served.runtime, self.store
        if current is not None and current.config.id != experiment_id:
            status = current.status
            if store is not None:  # as stored now: another worker may have stopped it
                found = await asyncio.to_thread(status_of, store, current.config.id)
                status = status if found is None else found[0]
            if status == "running":
                return current.config.id
        if store is not None:
            running = await asyncio.to_thread(running_on, store, self.served.name)
            others = [exp_id for exp_id, _ in running if exp_id != experiment_id]
            if others:
                return others[-1]
        return None

    # --- adoption -----------------------------------------------------------------------------
    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(ADOPT_SECONDS)
            try:
                await self.check()
            except Exception:  # keep following; the champion serves meanwhile
                log.exception("following the store's experiments failed")

    async def check(self) -> None:
        """Follow the store once: drop a stopped challenger, adopt a newly started experiment."""
        store, current = self.store, self.served.runtime
        assert store is not None
        if current is not None:
            await asyncio.to_thread(current.refresh)
            self._sync_variants(current)
            if current is self.own and current.status == "running":
                return  # the server's own experiment (--challenger) takes no other
        running = await asyncio.to_thread(running_on, store, self.served.name)
        if not running:
            return
        exp_id, record = running[-1]
        if (current is not None and current.config.id == exp_id) or exp_id in self._unreadable:
            return
        try:
            config = ExperimentConfig.model_validate(record["config"])
        except (KeyError, TypeError, ValidationError) as exc:
            self._unreadable.add(exp_id)
            log.error("experiment %s in the store cannot run here: %s", exp_id, exc)
            return
        async with self.lock:
            if self.served.runtime is current:  # no start or stop came meanwhile
                await self._adopt(config, record)

    async def _adopt(self, config: ExperimentConfig, record: dict[str, Any]) -> ExperimentRuntime:
        """Run the stored experiment ``config`` here too (the caller holds the lock)."""
        served = self.served
        challenger = await asyncio.to_thread(
            prepare, config.variants[1].model, served.slot, served.settings.gate
        )
        if challenger.failure is not None:  # this worker routes everything to its champion
            log.error("experiment %s: %s", config.id, challenger.failure)
        # the stored record gives the runtime its start, canary step and status
        runtime = await asyncio.to_thread(self._runtime, config, challenger)
        await self._install(runtime)
        log.warning("experiment %s adopted: %s", config.id, runtime.status)
        return runtime

    def _runtime(self, config: ExperimentConfig, challenger: Slot) -> ExperimentRuntime:
        """The runtime of ``config`` (registered in the store, or read from it)."""
        served = self.served
        slots = {CHAMPION: served.slot, CHALLENGER: challenger}
        return ExperimentRuntime(config, slots, self.store, served.metrics, server=served.name)

    async def _install(self, runtime: ExperimentRuntime) -> None:
        """Route through ``runtime`` from now on; the challenger's drift is counted against its
        own reference."""
        served = self.served
        old = served.runtime
        served.runtime = runtime
        served.predictor.experiment = runtime
        self._sync_variants(runtime)
        challenger = runtime.slots[CHALLENGER].active
        writer = served.predictor.writer
        if writer is not None and served.settings.monitor and challenger is not None:
            reference = challenger.model.path and challenger.model.path / "reference.json"
            if reference is not None and reference.is_file():
                writer.watch(Watch(CHALLENGER, challenger.version, str(reference)))
        for hook in self.on_change:
            hook(runtime)
        if old is not None and old is not runtime:
            await asyncio.to_thread(old.close)  # the shadow copies it had taken

    def _sync_variants(self, runtime: ExperimentRuntime) -> None:
        """The served variants (what monitoring reports on) follow ``runtime``: the champion,
        and the challenger while it takes traffic. Changed in place: gauges hold the dict."""
        if runtime is self.own:
            return
        variants = self.served.variants
        challenger = runtime.slots[CHALLENGER]
        wanted = {CHAMPION: self.served.slot}
        if runtime.status == "running" and challenger.active is not None:
            wanted[CHALLENGER] = challenger
        for name in [n for n in variants if n not in wanted]:
            del variants[name]
        for name, slot in wanted.items():
            if variants.get(name) is not slot:
                variants[name] = slot


def _error(field: str | None, reason: str, fix: str, value: Any = None) -> dict[str, Any]:
    item = {"record": None, "field": field, "value": value, "reason": reason, "fix": fix}
    return {"errors": [item]}


def _busy(running: str) -> dict[str, Any]:
    return _error(
        None,
        f"experiment {running!r} is running on this server",
        f"stop it first: POST /v1/admin/experiments/{running}/stop",
    )
