"""The model server: a FastAPI app around one verified, gated model package.

``create_app(package)`` loads the package (checksums first), generates the request models from
its schema, and runs the deployment gate when the app starts: until the golden examples
reproduce and the latency budget holds, ``/ready`` answers 503 with the reason and prediction
routes refuse with 503. The request path scores through the package's fast scorer and never
imports mlflow or the trainer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from mlwright.errors import MlwrightError, SchemaViolationError
from mlwright.package.model import Model
from mlwright.serve.admin import add_admin_routes
from mlwright.serve.gate import GateResult, run_gate
from mlwright.serve.metrics import Observe, ServerMetrics
from mlwright.serve.schemas import ErrorResponse, PredictResponse, predict_request_model
from mlwright.serve.slot import Active, Slot
from mlwright.serve.slot import poll as _poll
from mlwright.serve.store import PredictionWriter, prediction_rows

log = logging.getLogger("mlwright.serve")


@dataclass(frozen=True)
class ServeSettings:
    max_rows: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    gate: bool = True
    store: str | None = None  # serving store (SQLite); None keeps no record of predictions
    poll_seconds: float | None = None  # re-resolve the registry alias this often
    admin_token: str | None = None  # enables /v1/admin/* (bearer token)


def error(
    status: int,
    reason: str,
    fix: str,
    *,
    record: int | None = None,
    field: str | None = None,
    value: Any = None,
) -> JSONResponse:
    body = {
        "errors": [
            {
                "record": record,
                "field": field,
                "value": _jsonable(value),
                "reason": reason,
                "fix": fix,
            }
        ]
    }
    return JSONResponse(body, status_code=status)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)[:200]


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, before parsing."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = declared is not None and declared.isdigit() and int(declared) > self.limit
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        if not too_big:
            try:
                await self.app(scope, limited, send)
                return
            except _TooLarge:
                pass
        response = error(
            413,
            f"the request body is larger than {self.limit:,} bytes",
            "send fewer rows per request",
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(
    model: Model,
    *,
    name: str | None = None,
    version: str | None = None,
    ref: str | None = None,
    settings: ServeSettings | None = None,
) -> FastAPI:
    cfg = settings or ServeSettings()
    slot = Slot(name=name or model.name, candidate=model, version=version, ref=ref)
    request_model = predict_request_model(model.schema, _ident(slot.name), cfg.max_rows)
    metrics = ServerMetrics()
    writer: list[PredictionWriter] = []  # opened by the lifespan, one per worker process

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gate = run_gate(model) if cfg.gate else GateResult(True, "gate disabled", {})
        if gate.ok:
            slot.active, slot.failure = Active(model, version, gate), None
        else:
            slot.failure = gate.reason
            log.error("deployment gate failed: %s", gate.reason)
        metrics.ready.labels(slot.name, version or "").set(1 if gate.ok else 0)
        if cfg.store:
            writer.append(PredictionWriter(Path(cfg.store)))
        poller = None
        if cfg.poll_seconds and slot.ref:
            poller = asyncio.create_task(_poll(slot, cfg, metrics))
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
            for w in writer:
                w.close()

    app = FastAPI(
        title=f"mlwright: {slot.name}",
        description=f"Predictions from the mlwright model {slot.name!r} ({model.task}).",
        lifespan=lifespan,
    )
    app.state.slot = slot
    app.state.settings = cfg

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"errors": [_validation_item(e) for e in exc.errors()][:100]}, status_code=422
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return error(
            500,
            f"internal error ({type(exc).__name__})",
            "retry; if it persists, report it with the server log",
        )

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """Liveness only: the process answers."""
        return {"status": "alive"}

    @app.get("/ready", tags=["operations"], responses={503: {"description": "not ready"}})
    async def ready() -> JSONResponse:
        """200 once the model passed the deployment gate (and no swap failed), else 503."""
        if slot.ready:
            return JSONResponse({"status": "ready", "model": _info(slot)})
        return JSONResponse({"status": "not ready", "reason": slot.failure}, status_code=503)

    @app.get("/metrics", tags=["operations"])
    async def prometheus() -> Response:
        """Prometheus text format: requests, errors, latency, predictions per model version."""
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    @app.get("/v1/models", tags=["models"])
    async def models() -> dict[str, Any]:
        active = slot.active
        return {
            "models": [
                {
                    **_info(slot),
                    "task": model.task,
                    "ready": slot.ready,
                    "serving": active is not None,
                    "reason": slot.failure,
                    "follows": slot.ref,
                    "features": [c.name for c in model.schema.features],
                    "gate": None if active is None else active.gate.details,
                }
            ]
        }

    async def predict(body: Any, request: Request) -> Any:
        """Score records; one prediction per record, in order, each with a prediction_id."""
        active = slot.active  # one model for the whole request, even during a swap
        if active is None:
            return _not_ready(slot)
        current = active.model
        records = [r.model_dump() for r in body.records]
        columns = [c.name for c in current.schema.features]
        frame = pd.DataFrame.from_records(records, columns=columns)
        enforced, violations, _ = current.schema.check(frame)
        if violations:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "record": v.row,
                            "field": v.column,
                            "value": _jsonable(v.value),
                            "reason": v.reason,
                            "fix": f"send {v.expected}",
                        }
                        for v in violations[:100]
                    ]
                },
                status_code=422,
            )
        try:
            out = current.predict_frame(enforced)
        except MlwrightError as exc:
            return error(422, exc.message, exc.fix or "check the request")
        request_id = request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex
        _count_predictions(metrics, slot.name, active, out)
        rows: list[dict[str, Any]] = []
        for i, row in enumerate(out.to_dict(orient="records")):
            item: dict[str, Any] = {"prediction_id": f"{request_id}:{i}"}
            for key, value in row.items():
                item[str(key)] = value.item() if isinstance(value, np.generic) else value
            rows.append(item)
        if writer:
            writer[0].add(
                prediction_rows(
                    request_id,
                    slot.name,
                    active.version,
                    "champion",
                    body.entity_key,
                    records,
                    rows,
                )
            )
        info = {"name": slot.name, "version": active.version, "variant": "champion"}
        return {"request_id": request_id, "model": info, "predictions": rows}

    # the body's type is generated from the schema at run time, so it is attached here
    predict.__annotations__["body"] = request_model
    app.post(
        "/v1/predict",
        tags=["predict"],
        response_model=PredictResponse,
        responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
    )(predict)

    @app.post("/invocations", tags=["mlflow"])
    async def invocations(request: Request) -> JSONResponse:
        """What `mlflow models serve` accepts: dataframe_split, dataframe_records, instances or
        inputs; answers {"predictions": [...]}."""
        active = slot.active
        if active is None:
            return _mlflow_error(503, "the model has not passed the deployment gate")
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _mlflow_error(400, "the body is not valid JSON")
        try:
            frame = _mlflow_frame(payload)
            out = active.model.predict_frame(active.model.schema.enforce(frame))
        except SchemaViolationError as exc:
            return _mlflow_error(400, str(exc))
        except (MlwrightError, ValueError, TypeError, KeyError) as exc:
            return _mlflow_error(400, f"invalid input: {exc}")
        return JSONResponse({"predictions": json.loads(out.to_json(orient="records"))})

    token = cfg.admin_token
    if token:
        add_admin_routes(app, slot, token, metrics)

    wrapped = BodyLimit(
        Observe(app, metrics, slot.name, lambda: slot.current_version or ""), cfg.max_body_bytes
    )
    app.state.asgi = wrapped
    return app


def _count_predictions(
    metrics: ServerMetrics, name: str, active: Active, out: pd.DataFrame
) -> None:
    version = active.version or ""
    if active.model.task == "regression":
        for value in out["prediction"].to_numpy()[:1000]:
            metrics.values.labels(name, version).observe(float(value))
        return
    for label, count in out["prediction"].astype(str).value_counts().items():
        metrics.predictions.labels(name, version, str(label)).inc(int(count))


def _ident(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_")) or "Model"


def _info(slot: Slot) -> dict[str, Any]:
    return {"name": slot.name, "version": slot.current_version, "variant": "champion"}


def _not_ready(slot: Slot) -> JSONResponse:
    return error(503, f"the model is not ready: {slot.failure}", "wait for /ready to answer 200")


def _mlflow_error(status: int, message: str) -> JSONResponse:
    code = "BAD_REQUEST" if status == 400 else "TEMPORARILY_UNAVAILABLE"
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _mlflow_frame(payload: Any) -> pd.DataFrame:
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    keys = [
        k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in payload
    ]
    if len(keys) != 1:
        raise ValueError(
            "send exactly one of dataframe_split, dataframe_records, instances or inputs"
        )
    value = payload[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(value, dict) or "columns" not in value or "data" not in value:
            raise ValueError("dataframe_split needs 'columns' and 'data'")
        return pd.DataFrame(value["data"], columns=value["columns"])
    if isinstance(value, dict):  # columnar inputs: {"col": [values...]}
        return pd.DataFrame(value)
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ValueError(f"{keys[0]} must be a list of records (objects)")
    return pd.DataFrame.from_records(value)


def _validation_item(err: dict[str, Any]) -> dict[str, Any]:
    loc = [p for p in err.get("loc", ()) if p != "body"]
    record = next((p for p in loc if isinstance(p, int)), None)
    names = [p for p in loc if isinstance(p, str)]
    field = names[-1] if names else None
    kind = err.get("type", "")
    if kind == "json_invalid":
        return {
            "record": None,
            "field": None,
            "value": None,
            "reason": "the body is not valid JSON",
            "fix": "send a JSON object",
        }
    if kind == "missing":
        reason = "required field is missing"
        fix = f"send '{field}' (null is allowed)" if record is not None else f"send '{field}'"
    else:
        reason = err.get("msg", "invalid value")
        fix = "send a value of the documented type (see /docs)"
    return {
        "record": record,
        "field": field,
        "value": _jsonable(err.get("input")) if kind != "missing" else None,
        "reason": reason,
        "fix": fix,
    }


def app_from_env() -> Any:
    """Factory for ``uvicorn --factory`` (several workers): the package path comes from
    MLWRIGHT_SERVE_PACKAGE; the settings from MLWRIGHT_SERVE_SETTINGS (JSON)."""
    package = os.environ["MLWRIGHT_SERVE_PACKAGE"]
    settings = ServeSettings(**json.loads(os.environ.get("MLWRIGHT_SERVE_SETTINGS", "{}")))
    from mlwright.package.store import load_package

    model = load_package(package)
    settings = ServeSettings(
        **{**settings.__dict__, "admin_token": os.environ.get("MLWRIGHT_ADMIN_TOKEN") or None}
    )
    app = create_app(
        model,
        ref=os.environ.get("MLWRIGHT_SERVE_REF") or None,
        name=os.environ.get("MLWRIGHT_SERVE_NAME") or None,
        version=os.environ.get("MLWRIGHT_SERVE_VERSION") or None,
        settings=settings,
    )
    return app.state.asgi


__all__ = ["ServeSettings", "app_from_env", "create_app"]
