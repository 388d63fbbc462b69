"""Admin routes, present only when a bearer token is configured (MLWRIGHT_ADMIN_TOKEN).

Requests can name registry references only (``NAME@ALIAS``, ``NAME/VERSION``): no path from a
request ever reaches the filesystem.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mlwright.serve.bodies import BodyError
from mlwright.serve.bodies import parse as parse_body
from mlwright.serve.schemas import documented, field_error
from mlwright.serve.served import Server
from mlwright.serve.slot import swap
from mlwright.track.registry import parse

router = APIRouter(tags=["admin"])

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


@router.post(
    "/v1/admin/reload",
    responses=documented(401, 409, 413, 415, 422),
    openapi_extra=_RELOAD_BODY,
)
async def reload(request: Request, server: Server) -> JSONResponse:
    """Load a registry version (default: the alias the server follows), gate it and swap
    it in; the previous model serves until then, and keeps serving if it fails."""
    if not _authorised(request, server.settings.admin_token):
        return field_error(
            401, "authorization", "missing or wrong token", "send Authorization: Bearer <token>"
        )
    slot = next(iter(server.variants.values()))  # the champion, whatever an experiment names it
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
            return field_error(
                422,
                "model",
                "only registry references are accepted",
                'send {"model": "NAME@ALIAS"} or {"model": "NAME/VERSION"}',
            )
    if ref is None:
        return field_error(
            409, "model", "the server follows no registry alias", 'send {"model": "NAME@ALIAS"}'
        )
    result = await asyncio.to_thread(swap, slot, ref, server.metrics)
    status = {"swapped": 200, "unchanged": 200, "busy": 409}.get(result["status"], 409)
    return JSONResponse(result, status_code=status)


def _authorised(request: Request, token: str | None) -> bool:
    given = request.headers.get("authorization", "")
    expected = f"Bearer {token}"
    return token is not None and hmac.compare_digest(given.encode(), expected.encode())
