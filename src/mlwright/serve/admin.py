"""Admin routes, present only when a bearer token is configured (MLWRIGHT_ADMIN_TOKEN).

Requests can name registry references only (``NAME@ALIAS``, ``NAME/VERSION``): no path from a
request ever reaches the filesystem.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mlwright.serve.bodies import BodyError
from mlwright.serve.bodies import parse as parse_body
from mlwright.serve.metrics import ServerMetrics
from mlwright.serve.schemas import documented
from mlwright.serve.slot import Slot, swap
from mlwright.track.registry import parse


def add_admin_routes(app: FastAPI, slot: Slot, token: str, metrics: ServerMetrics) -> None:
    def authorised(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token}"
        return hmac.compare_digest(given.encode(), expected.encode())

    @app.post(
        "/v1/admin/reload",
        tags=["admin"],
        responses=documented(401, 409, 413, 415, 422),
        openapi_extra=_RELOAD_BODY,
    )
    async def reload(request: Request) -> JSONResponse:
        """Load a registry version (default: the alias the server follows), gate it and swap
        it in; the previous model serves until then, and keeps serving if it fails."""
        if not authorised(request):
            return JSONResponse(
                {
                    "errors": [
                        {
                            "record": None,
                            "field": "authorization",
                            "value": None,
                            "reason": "missing or wrong token",
                            "fix": "send Authorization: Bearer <token>",
                        }
                    ]
                },
                status_code=401,
            )
        ref: Any = slot.ref
        body = await request.body()
        if body.strip():
            try:
                payload: Any = parse_body(body)
            except BodyError as exc:
                return JSONResponse({"errors": [exc.item()]}, status_code=422)
            if not isinstance(payload, dict):
                ref = None
            elif "model" in payload:
                ref = payload["model"]
            if not isinstance(ref, str) or parse(ref) is None:
                return JSONResponse(
                    {
                        "errors": [
                            {
                                "record": None,
                                "field": "model",
                                "value": None,
                                "reason": "only registry references are accepted",
                                "fix": 'send {"model": "NAME@ALIAS"} or {"model": "NAME/VERSION"}',
                            }
                        ]
                    },
                    status_code=422,
                )
        if ref is None:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "record": None,
                            "field": "model",
                            "value": None,
                            "reason": "the server follows no registry alias",
                            "fix": 'send {"model": "NAME@ALIAS"}',
                        }
                    ]
                },
                status_code=409,
            )
        result = await asyncio.to_thread(swap, slot, ref, metrics)
        status = {"swapped": 200, "unchanged": 200, "busy": 409}.get(result["status"], 409)
        return JSONResponse(result, status_code=status)


_RELOAD_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "model": {
                            "type": "string",
                            "description": "a registry reference: NAME@ALIAS or NAME/VERSION "
                            "(default: the alias the server follows)",
                        }
                    },
                    "additionalProperties": False,
                }
            }
        },
    }
}
