"""Admin routes, present only when a bearer token is configured (MLWRIGHT_ADMIN_TOKEN).

Requests can name registry references only (``NAME@ALIAS``, ``NAME/VERSION``): no path from a
request ever reaches the filesystem.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from mlwright.serve.adoption import RuntimeExperiments, StartExperiment, StopExperiment, body_errors
from mlwright.serve.bodies import BodyError
from mlwright.serve.bodies import parse as parse_body
from mlwright.serve.schemas import documented, error, field_error
from mlwright.serve.served import Server, ServerState
from mlwright.serve.slot import swap
from mlwright.track.registry import parse

router = APIRouter(tags=["admin"])
Body = TypeVar("Body", bound=BaseModel)

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


def _body(model: type[BaseModel], *, required: bool) -> dict[str, Any]:
    """``model``'s JSON schema as the route's documented request body (nested models inline)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    for name, field in schema.get("properties", {}).items():
        ref = field.pop("$ref", None)
        if ref is not None:
            schema["properties"][name] = {**definitions[ref.rsplit("/", 1)[-1]], **field}
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": required, "content": content}}


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


@router.post(
    "/v1/admin/experiments",
    responses=documented(401, 409, 413, 415, 422),
    openapi_extra=_body(StartExperiment, required=True),
)
async def start_experiment(request: Request, server: Server) -> JSONResponse:
    """Start an experiment of a registry version (the challenger) against the served model:
    ``split`` gives it ``weight`` of the traffic, ``shadow`` has it score a copy of every
    request. It is loaded, checked to take the same columns and gated first (409 and stored
    stopped when it cannot serve); then every worker of the serving store routes through it.
    The same id and configuration again answers its current state."""
    experiments = _experiments(request, server)
    if isinstance(experiments, JSONResponse):
        return experiments
    parsed = await _parsed(request, StartExperiment)
    if isinstance(parsed, JSONResponse):
        return parsed
    if parsed.mode == "split" and not parsed.weight:
        return field_error(
            422,
            "weight",
            "a split experiment needs the challenger's share of the traffic, above 0",
            'send "weight": a share in (0, 1], e.g. 0.2 (or "mode": "shadow")',
        )
    status, answer = await experiments.begin(parsed)
    return JSONResponse(answer, status_code=status)


@router.post(
    "/v1/admin/experiments/{experiment_id}/stop",
    responses=documented(401, 404, 413, 415, 422),
    openapi_extra=_body(StopExperiment, required=False),
)
async def stop_experiment(experiment_id: str, request: Request, server: Server) -> JSONResponse:
    """Stop an experiment in every worker: all traffic goes to the champion; the store keeps
    it as ``stopped: <reason>``. Stopping a stopped experiment answers its state."""
    experiments = _experiments(request, server)
    if isinstance(experiments, JSONResponse):
        return experiments
    parsed = await _parsed(request, StopExperiment)
    if isinstance(parsed, JSONResponse):
        return parsed
    status, answer = await experiments.end(experiment_id, parsed.reason)
    return JSONResponse(answer, status_code=status)


def _experiments(request: Request, server: ServerState) -> RuntimeExperiments | JSONResponse:
    """What starts and stops the server's experiments; 401 without the token, 409 on a server
    that runs none (a tensor one)."""
    if not _authorised(request, server.settings.admin_token):
        return field_error(
            401, "authorization", "missing or wrong token", "send Authorization: Bearer <token>"
        )
    experiments = getattr(server.served, "experiments", None)
    if not isinstance(experiments, RuntimeExperiments):
        return error(409, "this server runs no experiments", "serve a tabular model")
    return experiments


async def _parsed(request: Request, model: type[Body]) -> Body | JSONResponse:
    """The request's body as ``model`` (an empty body: its defaults), or the 422 naming the
    field."""
    raw = await request.body()
    try:
        payload: Any = parse_body(raw) if raw.strip() else {}
        return model.model_validate(payload)
    except BodyError as exc:
        return JSONResponse({"errors": [exc.item()]}, status_code=422)
    except ValidationError as exc:
        return JSONResponse({"errors": body_errors(exc)}, status_code=422)


def _authorised(request: Request, token: str | None) -> bool:
    given = request.headers.get("authorization", "")
    expected = f"Bearer {token}"
    return token is not None and hmac.compare_digest(given.encode(), expected.encode())
