"""Operations: liveness, readiness, Prometheus metrics and the model list."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from mlwright.serve.served import Server

router = APIRouter()


@router.get("/health", tags=["operations"])
async def health() -> dict[str, str]:
    """Liveness only: the process answers."""
    return {"status": "alive"}


@router.get("/ready", tags=["operations"], responses={503: {"description": "not ready"}})
async def ready(server: Server) -> JSONResponse:
    """200 once the model passed the deployment gate (and no swap failed), else 503."""
    ok, reason = server.served.status()
    if ok:
        return JSONResponse({"status": "ready", "model": server.info()})
    return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)


@router.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
async def prometheus(server: Server) -> Response:
    """Prometheus text format: requests, errors, latency, predictions per model version;
    with a store, drift and live performance over the last ``monitor_minutes``."""
    if server.gauges is not None:
        await asyncio.to_thread(server.gauges.refresh)
    content, media_type = server.metrics.render()
    return Response(content, media_type=media_type)


@router.get("/v1/models", tags=["models"])
async def models(server: Server) -> dict[str, Any]:
    """The served model: name, version, task, readiness and the gate's measurements."""
    return {"models": [server.served.describe()]}
