"""The A/B, shadow or canary experiment a tabular server runs, with its analysis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mlwright.experiment.analysis import analyze
from mlwright.serve.schemas import documented, error
from mlwright.serve.served import Server

router = APIRouter(tags=["experiments"])


@router.get("/v1/experiments")
async def experiments(server: Server) -> dict[str, Any]:
    """The experiment this server runs, if any."""
    runtime = server.experiment
    if runtime is None:
        return {"experiments": []}
    runtime.refresh()
    return {"experiments": [{"id": runtime.config.id, "status": runtime.status}]}


@router.get("/v1/experiments/{experiment_id}", responses=documented(404))
async def experiment_status(experiment_id: str, server: Server) -> JSONResponse:
    """The experiment's status, variants and analysis: per variant the requests and, once
    feedback arrives, each metric's difference with fixed-horizon and always-valid tests,
    the sample-ratio check and a verdict."""
    runtime = server.experiment
    if runtime is None or experiment_id != runtime.config.id:
        running = "no experiment" if runtime is None else f"experiment {runtime.config.id!r}"
        return error(404, f"no experiment {experiment_id!r} here", f"this server runs {running}")
    runtime.refresh()
    body = runtime.describe()
    store = server.settings.store
    if store and Path(store).exists():
        body["analysis"] = await asyncio.to_thread(
            analyze, Path(store), runtime.config, runtime.weights(), since=runtime.started
        )
    return JSONResponse(body)
