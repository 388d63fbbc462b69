"""Monitoring from the serving store: drift against the training reference and live
performance from feedback (tabular servers)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from mlwright.experiment.analysis import json_safe
from mlwright.monitor.counts import window_drift
from mlwright.monitor.performance import live_performance
from mlwright.monitor.settings import DriftSettings
from mlwright.serve.schemas import documented, error
from mlwright.serve.served import Server, ServerState
from mlwright.store.counts import Watched

router = APIRouter(tags=["monitoring"])
MAX_MINUTES = 10 * 366 * 24 * 60  # windows of up to ten years
MAX_ROWS = 10**12


@router.get("/v1/monitor/drift", responses=documented(404, 503))
async def drift(
    server: Server,
    variant: str = "champion",
    minutes: Annotated[float | None, Query(gt=0, le=MAX_MINUTES)] = None,
    last: Annotated[int | None, Query(gt=0, le=MAX_ROWS)] = None,
    small_window: Annotated[int | None, Query(ge=0, le=MAX_ROWS)] = None,
    p_value: Annotated[float | None, Query(gt=0, lt=1)] = None,
    wasserstein: Annotated[float | None, Query(gt=0, le=1e6)] = None,
    jensen_shannon: Annotated[float | None, Query(gt=0, le=1)] = None,
    dataset_share: Annotated[float | None, Query(gt=0, le=1)] = None,
) -> JSONResponse:
    """Drift of the served traffic against the training reference of the version that
    serves now: per feature, for the predictions and for the dataset, over the last
    ``minutes``, or the latest minutes holding ``last`` rows (default: everything
    recorded). The drift thresholds default to Evidently's (see docs/monitoring.md)."""
    given: dict[str, Any] = {
        "small_window": small_window,
        "p_value": p_value,
        "wasserstein": wasserstein,
        "jensen_shannon": jensen_shannon,
        "dataset_share": dataset_share,
    }
    thresholds = DriftSettings(**{k: v for k, v in given.items() if v is not None})
    chosen = server.variants.get(variant)
    if chosen is None:
        variants = ", ".join(server.variants)
        return error(404, f"no variant {variant!r} here", f"variants: {variants}")
    active = chosen.active
    model, version = (
        (active.model, active.version) if active else (chosen.candidate, chosen.version)
    )
    if model.path is None or not (model.path / "reference.json").is_file():
        return error(
            404, "the model's package has no monitoring reference", "retrain it to add one"
        )
    store = _store(server)
    if isinstance(store, JSONResponse):
        return store
    if not server.settings.monitor:
        return error(503, "monitoring is off on this server", "start it without --no-monitor")
    reference = model.path / "reference.json"
    since = None if minutes is None else time.time() - 60 * minutes

    def compute() -> dict[str, Any]:
        watched = Watched.cached(str(reference))
        return window_drift(
            store,
            watched.reference,
            watched.digest,
            variant=variant,
            since=since,
            last=last,
            settings=thresholds,
        )

    result = await asyncio.to_thread(compute)
    return JSONResponse(json_safe({"model": server.served.name, "version": version, **result}))


@router.get("/v1/monitor/performance", responses=documented(503))
async def performance(
    server: Server,
    minutes: Annotated[float | None, Query(gt=0, le=MAX_MINUTES)] = None,
    step_minutes: Annotated[float, Query(ge=1, le=MAX_MINUTES)] = 60,
) -> JSONResponse:
    """Live performance from feedback, per model version and variant: each metric over
    the last ``minutes`` (default: everything recorded) and per step of ``step_minutes``."""
    store = _store(server)
    if isinstance(store, JSONResponse):
        return store
    since = None if minutes is None else time.time() - 60 * minutes
    name = server.served.name
    found = await asyncio.to_thread(
        live_performance, store, model=name, since=since, step_seconds=int(step_minutes * 60)
    )
    return JSONResponse(json_safe({"model": name, "performance": found}))


def _store(server: ServerState) -> Path | JSONResponse:
    """The serving store's path, or the 503 saying the server keeps none."""
    store = server.settings.store
    if not store or not Path(store).exists():
        return error(503, "this server keeps no serving store", "start it with --store PATH")
    return Path(store)
