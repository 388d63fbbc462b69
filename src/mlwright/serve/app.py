"""The model server: a FastAPI app around one verified, gated model package.

``create_app(package)`` loads the package (checksums first), generates the request models from
its schema, and runs the deployment gate when the app starts: until the golden examples
reproduce and the latency budget holds, ``/ready`` answers 503 with the reason and prediction
routes refuse with 503. The request path scores through the package's fast scorer and never
imports mlflow or the trainer.
"""

from __future__ import annotations

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
from mlwright.serve.gate import GateResult, run_gate
from mlwright.serve.metrics import Observe, ServerMetrics
from mlwright.serve.schemas import ErrorResponse, PredictResponse, predict_request_model
from mlwright.serve.store import PredictionWriter, prediction_rows

log = logging.getLogger("mlwright.serve")


@dataclass(frozen=True)
class ServeSettings:
    max_rows: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    gate: bool = True
    store: str | None = None  # serving store (SQLite); None keeps no record of predictions


@dataclass
class Slot:
    """The model being served and whether it passed the gate."""

    model: Model
    name: str
    version: str | None
    gate: GateResult | None = None

    @property
    def ready(self) -> bool:
        return self.gate is not None and self.gate.ok


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
    settings: ServeSettings | None = None,
) -> FastAPI:
    cfg = settings or ServeSettings()
    slot = Slot(model=model, name=name or model.name, version=version)
    request_model = predict_request_model(model.schema, _ident(slot.name), cfg.max_rows)
    metrics = ServerMetrics()
    version_label = slot.version or ""
    writer: list[PredictionWriter] = []  # opened by the lifespan, one per worker process

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        slot.gate = run_gate(model) if cfg.gate else GateResult(True, "gate disabled", {})
        metrics.ready.labels(slot.name, version_label).set(1 if slot.gate.ok else 0)
        if not slot.gate.ok:
            log.error("deployment gate failed: %s", slot.gate.reason)
        if cfg.store:
            writer.append(PredictionWriter(Path(cfg.store)))
        try:
            yield
        finally:
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
        """200 once the model passed the deployment gate, else 503 with the reason."""
        if slot.ready:
            return JSONResponse({"status": "ready", "model": _info(slot)})
        reason = slot.gate.reason if slot.gate else "the deployment gate has not run yet"
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)

    @app.get("/metrics", tags=["operations"])
    async def prometheus() -> Response:
        """Prometheus text format: requests, errors, latency, predictions per model version."""
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    @app.get("/v1/models", tags=["models"])
    async def models() -> dict[str, Any]:
        return {
            "models": [
                {
                    **_info(slot),
                    "task": model.task,
                    "ready": slot.ready,
                    "features": [c.name for c in model.schema.features],
                    "gate": None if slot.gate is None else slot.gate.details,
                }
            ]
        }

    async def predict(body: Any, request: Request) -> Any:
        """Score records; one prediction per record, in order, each with a prediction_id."""
        if not slot.ready:
            return _not_ready(slot)
        records = [r.model_dump() for r in body.records]
        frame = pd.DataFrame.from_records(records, columns=[c.name for c in model.schema.features])
        enforced, violations, _ = model.schema.check(frame)
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
            out = model.predict_frame(enforced)
        except MlwrightError as exc:
            return error(422, exc.message, exc.fix or "check the request")
        request_id = request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex
        _count_predictions(metrics, slot, out)
        rows: list[dict[str, Any]] = []
        for i, row in enumerate(out.to_dict(orient="records")):
            item: dict[str, Any] = {"prediction_id": f"{request_id}:{i}"}
            for key, value in row.items():
                item[str(key)] = value.item() if isinstance(value, np.generic) else value
            rows.append(item)
        if writer:
            writer[0].add(
                prediction_rows(
                    request_id, slot.name, slot.version, "champion", body.entity_key, records, rows
                )
            )
        return {"request_id": request_id, "model": _info(slot), "predictions": rows}

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
        if not slot.ready:
            return _mlflow_error(503, "the model has not passed the deployment gate")
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _mlflow_error(400, "the body is not valid JSON")
        try:
            frame = _mlflow_frame(payload)
            out = model.predict_frame(model.schema.enforce(frame))
        except SchemaViolationError as exc:
            return _mlflow_error(400, str(exc))
        except (MlwrightError, ValueError, TypeError, KeyError) as exc:
            return _mlflow_error(400, f"invalid input: {exc}")
        return JSONResponse({"predictions": json.loads(out.to_json(orient="records"))})

    wrapped = BodyLimit(Observe(app, metrics, slot.name, lambda: version_label), cfg.max_body_bytes)
    app.state.asgi = wrapped
    return app


def _count_predictions(metrics: ServerMetrics, slot: Slot, out: pd.DataFrame) -> None:
    version = slot.version or ""
    if slot.model.task == "regression":
        for value in out["prediction"].to_numpy()[:1000]:
            metrics.values.labels(slot.name, version).observe(float(value))
        return
    for label, count in out["prediction"].astype(str).value_counts().items():
        metrics.predictions.labels(slot.name, version, str(label)).inc(int(count))


def _ident(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_")) or "Model"


def _info(slot: Slot) -> dict[str, Any]:
    return {"name": slot.name, "version": slot.version, "variant": "champion"}


def _not_ready(slot: Slot) -> JSONResponse:
    reason = slot.gate.reason if slot.gate else "the deployment gate has not run yet"
    return error(503, f"the model is not ready: {reason}", "wait for /ready to answer 200")


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


def load_for_serving(ref: str | Path) -> tuple[Model, str | None, str | None]:
    """The package behind ``ref`` (folder, NAME@ALIAS, NAME/VERSION), verified."""
    from mlwright.package.store import load_package

    path = Path(ref)
    if path.exists():
        return load_package(path), None, None
    from mlwright.track.registry import resolve

    resolved = resolve(ref)
    return load_package(resolved.path), resolved.name, resolved.version


def app_from_env() -> Any:
    """Factory for ``uvicorn --factory`` (several workers): the package path comes from
    MLWRIGHT_SERVE_PACKAGE; the settings from MLWRIGHT_SERVE_SETTINGS (JSON)."""
    package = os.environ["MLWRIGHT_SERVE_PACKAGE"]
    settings = ServeSettings(**json.loads(os.environ.get("MLWRIGHT_SERVE_SETTINGS", "{}")))
    from mlwright.package.store import load_package

    model = load_package(package)
    app = create_app(
        model,
        name=os.environ.get("MLWRIGHT_SERVE_NAME") or None,
        version=os.environ.get("MLWRIGHT_SERVE_VERSION") or None,
        settings=settings,
    )
    return app.state.asgi


__all__ = ["ServeSettings", "app_from_env", "create_app", "load_for_serving"]
