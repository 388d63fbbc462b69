"""The model server for a PyTorch package (``mlwright train-torch``).

The same contract as the tabular server (CONTRACTS.md, HTTP) where it applies:
``POST /v1/predict`` takes ``{"records": [{input: nested lists, ...}, ...]}`` (one record per
example) and answers ``prediction`` (and ``proba_<class>``) with a ``prediction_id`` per record;
every record is checked against the package's input spec first, and a wrong shape, dtype or name
is a 422 naming the record and the input. The deployment gate (golden examples through the
request path) runs at start-up; ``/ready``, ``/health``, ``/metrics``, ``/v1/models``,
``/v1/feedback`` and ``/invocations`` (MLflow's tensor input) are served, and every answered
batch is recorded in the serving store. The exported program runs without the user's code.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from mlwright.errors import MlwrightError, SchemaViolationError
from mlwright.package.tensor import FLOATS, TensorModel, check_tensor_golden, golden_match
from mlwright.serve.app import ServeSettings, error
from mlwright.serve.bodies import BodyError
from mlwright.serve.bodies import parse as parse_body
from mlwright.serve.docs import add_docs
from mlwright.serve.feedback import Outcomes, batch_schema
from mlwright.serve.feedback import answer as answer_feedback
from mlwright.serve.gate import GateResult
from mlwright.serve.limits import Guard
from mlwright.serve.metrics import Observe, ServerMetrics
from mlwright.serve.predict import PATH, answer_body
from mlwright.serve.schemas import MlflowError, documented, error_body, violation_item
from mlwright.serve.store import PredictionBatch
from mlwright.serve.writer import PredictionWriter

log = logging.getLogger("mlwright.serve")
GATE = "gate"  # the request id of the gate's request-path check


def tensor_gate(model: TensorModel, score: Any) -> GateResult:
    """Golden examples must reproduce through ``model.predict`` and through the request path
    (``score(body) -> (status, answer)``)."""
    mismatches = check_tensor_golden(model)
    if not mismatches and model.golden:
        body = orjson.dumps({"records": model.golden["inputs"]})
        status, answer = score(body, GATE)
        if status != 200:
            mismatches = [f"the request path answered {status}: {answer[:200]!r}"]
        else:
            served = orjson.loads(answer)["predictions"]
            for i, (want, got) in enumerate(zip(model.golden["expected"], served, strict=True)):
                wrong = [k for k in want if not golden_match(want[k], got.get(k))]
                mismatches += [
                    f"row {i} {k}: expected {want[k]!r}, got {got.get(k)!r}" for k in wrong
                ]
    if mismatches:
        return GateResult(
            False,
            "golden examples do not reproduce: " + "; ".join(mismatches[:3]),
            {"golden_mismatches": len(mismatches)},
        )
    rows = len(model.golden["inputs"]) if model.golden else 0
    return GateResult(True, "golden examples reproduce", {"golden_rows": rows})


class TensorPredictor:
    """Scores request bodies with the package's program and records them in the store."""

    def __init__(
        self,
        model: TensorModel,
        name: str,
        version: str | None,
        metrics: ServerMetrics,
        max_rows: int,
    ) -> None:
        self.model, self.name, self.version = model, name, version
        self.metrics, self.max_rows = metrics, max_rows
        self.writer: PredictionWriter | None = None

    def __call__(self, raw: bytes, request_id: str) -> tuple[int, bytes]:
        try:
            payload = parse_body(raw)
        except BodyError as exc:
            return 422, orjson.dumps({"errors": [exc.item()]})
        records = payload.get("records") if isinstance(payload, dict) else None
        if not isinstance(records, list) or not records:
            return 422, _error(
                "the body needs a non-empty list under 'records'",
                'send {"records": [{"' + self.model.inputs[0].name + '": [...]}, ...]}',
            )
        unknown = sorted(set(payload) - {"records", "entity_key"})
        if unknown:
            return 422, _error(f"unknown field(s) {unknown}", "send records and entity_key only")
        if len(records) > self.max_rows:
            return 422, _error(
                f"{len(records):,} records is more than the limit of {self.max_rows:,}",
                "send fewer records per request",
            )
        try:
            encoded = self.model.encode(records)
        except SchemaViolationError as exc:
            return 422, orjson.dumps({"errors": [violation_item(v) for v in exc.violations]})
        except MlwrightError as exc:
            return 422, _error(exc.message, exc.fix or "check the request")
        try:
            out = self.model.outputs(encoded)
        except Exception as exc:  # inputs the spec allows but the program refuses (a length
            # its guards exclude, a token id past an embedding table): the request's problem
            log.warning("the program refused a request: %s", exc)
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
            return 422, _error(
                f"the model cannot score these inputs: {reason}",
                "send inputs like the training examples (see /v1/models)",
            )
        columns = {k: v.tolist() for k, v in out.items()}
        if request_id != GATE:  # the gate's own requests are not traffic
            self._count(columns["prediction"])
        answer = answer_body(request_id, request_id, self.name, self.version, "champion", columns)
        if self.writer is not None and request_id != GATE:
            key = payload.get("entity_key")
            self.writer.add(
                PredictionBatch(
                    request_id, time.time(), self.name, self.version, "champion",
                    key if isinstance(key, str) else None,
                    tuple(s.name for s in self.model.inputs), len(records), raw, answer,
                )
            )  # fmt: skip
        return 200, answer

    def _count(self, predictions: list[Any]) -> None:
        version = self.version or ""
        if self.model.task == "regression":
            histogram = self.metrics.values.labels(self.name, version)
            for value in predictions[:1000]:
                if isinstance(value, (int, float)):
                    histogram.observe(value)
            return
        for label, count in Counter(predictions).items():
            self.metrics.predictions.labels(self.name, version, str(label)).inc(count)


def _error(reason: str, fix: str) -> bytes:
    return orjson.dumps(error_body(reason, fix))


def create_tensor_app(
    model: TensorModel,
    *,
    name: str | None = None,
    version: str | None = None,
    settings: ServeSettings | None = None,
) -> FastAPI:
    cfg = settings or ServeSettings()
    served = name or model.name
    metrics = ServerMetrics()
    predictor = TensorPredictor(model, served, version, metrics, cfg.max_rows)
    state: dict[str, Any] = {"gate": None}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gate = tensor_gate(model, predictor) if cfg.gate else GateResult(True, "gate disabled", {})
        state["gate"] = gate
        if not gate.ok:
            log.error("deployment gate failed: %s", gate.reason)
        metrics.ready.labels(served, version or "").set(1 if gate.ok else 0)
        if cfg.store:
            predictor.writer = PredictionWriter(Path(cfg.store))
        if cfg.freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if predictor.writer is not None:
                predictor.writer.close()
                predictor.writer = None

    app = FastAPI(
        title=f"mlwright: {served}",
        description=f"Predictions from the PyTorch model {served!r} ({model.task}).",
        lifespan=lifespan,
        docs_url=None,  # served from local files by add_docs, never from a CDN
        redoc_url=None,
    )
    add_docs(app)

    def ready() -> GateResult | None:
        gate: GateResult | None = state["gate"]
        return gate if gate is not None and gate.ok else None

    def info() -> dict[str, Any]:
        return {"name": served, "version": version, "variant": "champion"}

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return error(
            500, f"internal error ({type(exc).__name__})", "retry; report it if it persists"
        )

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """Liveness only: the process answers."""
        return {"status": "alive"}

    @app.get("/ready", tags=["operations"], responses={503: {"description": "not ready"}})
    async def is_ready() -> JSONResponse:
        """200 once the model passed the deployment gate, else 503 with the reason."""
        if ready() is not None:
            return JSONResponse({"status": "ready", "model": info()})
        gate = state["gate"]
        reason = "starting" if gate is None else gate.reason
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def prometheus() -> Response:
        """Prometheus text format: requests, latency, predictions per label."""
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    @app.get("/v1/models", tags=["models"])
    async def models() -> dict[str, Any]:
        gate = state["gate"]
        return {
            "models": [
                {
                    **info(),
                    "kind": "torch",
                    "task": model.task,
                    "ready": ready() is not None,
                    "reason": None if gate is None or gate.ok else gate.reason,
                    "inputs": [s.to_dict() for s in model.inputs],
                    "classes": None if model.classes is None else list(model.classes),
                    "gate": None if gate is None else gate.details,
                }
            ]
        }

    @app.post(
        PATH,
        tags=["predict"],
        responses=documented(413, 415, 422, 503),
        openapi_extra=request_schema(model, cfg.max_rows),
    )
    async def predict(request: Request) -> Response:
        """Score records (one per example, one nested list per input)."""
        if ready() is None:
            return _not_ready(state["gate"])
        request_id = request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex
        status, body = await asyncio.to_thread(predictor, await request.body(), request_id)
        return Response(body, status_code=status, media_type="application/json")

    @app.post(
        "/invocations",
        tags=["predict"],
        responses={
            400: {"model": MlflowError, "description": "invalid input (MLflow's error shape)"},
            **documented(413, 415, 503),
        },
    )
    async def invocations(request: Request) -> Response:
        """MLflow's scoring protocol for tensor models: ``{"inputs": {name: batch}}`` or
        ``{"instances": [records]}``; answers ``{"predictions": [...]}``."""
        if ready() is None:
            return _not_ready(state["gate"])
        from mlwright.package.pyfunc import tensor_records

        try:
            payload = parse_body(await request.body())
            value = payload["inputs"] if "inputs" in payload else payload["instances"]
            records = tensor_records(value if isinstance(value, dict) else list(value))
        except BodyError as exc:
            return JSONResponse({"error_code": "BAD_REQUEST", "message": exc.reason}, 400)
        except (KeyError, TypeError) as exc:
            message = f"send {{'inputs': {{name: batch}}}} or {{'instances': [...]}} ({exc})"
            return JSONResponse({"error_code": "BAD_REQUEST", "message": message}, 400)
        except MlwrightError as exc:
            return JSONResponse({"error_code": "BAD_REQUEST", "message": exc.message}, 400)
        body = orjson.dumps({"records": records})
        request_id = request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex
        status, answer = await asyncio.to_thread(predictor, body, request_id)
        if status != 200:
            message = "; ".join(
                f"record {e['record']} {e['field']}: {e['reason']}" if e["field"] else e["reason"]
                for e in orjson.loads(answer)["errors"][:10]
            )
            return JSONResponse({"error_code": "BAD_REQUEST", "message": message}, 400)
        rows = orjson.loads(answer)["predictions"]
        for row in rows:
            row.pop("prediction_id", None)
        return JSONResponse({"predictions": rows})

    outcomes = Outcomes.of(model.task, model.classes)

    @app.post(
        "/v1/feedback",
        tags=["feedback"],
        responses=documented(409, 413, 415, 422, 503),
        openapi_extra=feedback_schema(outcomes),
    )
    async def feedback(request: Request) -> JSONResponse:
        """Outcomes for served predictions, as for tabular models: a label must be one of the
        model's classes (regression: a finite number); `"replace": true` corrects one."""
        return await answer_feedback(cfg.store, request, outcomes)

    app.state.predictor = predictor
    app.state.asgi = Observe(Guard(app, cfg.max_body_bytes), metrics, served, lambda: version or "")
    return app


def request_schema(model: TensorModel, max_rows: int) -> dict[str, Any]:
    """The /docs description of a predict request: one nested array per input, its depth,
    fixed lengths and number type from the spec."""
    properties = {}
    for spec in model.inputs:
        kind = "number" if spec.dtype in FLOATS else "integer"
        node: dict[str, Any] = {"type": "boolean" if spec.dtype == "bool" else kind}
        for length in reversed(spec.shape):
            node = {"type": "array", "items": node}
            if length is not None:
                node.update(minItems=length, maxItems=length)
        properties[spec.name] = {**node, "description": spec.describe()}
    record = {"type": "object", "properties": properties, "required": list(properties),
              "additionalProperties": False}  # fmt: skip
    body = {
        "type": "object",
        "properties": {
            "records": {"type": "array", "items": record, "minItems": 1, "maxItems": max_rows},
            "entity_key": {"type": "string"},
        },
        "required": ["records"],
    }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}


def feedback_schema(outcomes: Outcomes) -> dict[str, Any]:
    """The /docs description of a feedback body: one item or a batch (inline schemas)."""
    item = outcomes.schema()
    batch = batch_schema("#/components/schemas/FeedbackItem")
    batch["properties"]["items"]["items"] = item
    body = {"oneOf": [item, batch]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}


def _not_ready(gate: GateResult | None) -> JSONResponse:
    reason = "the model has not passed its deployment gate yet" if gate is None else gate.reason
    return error(503, f"the model is not ready: {reason}", "wait for /ready to answer 200")


__all__ = ["TensorPredictor", "create_tensor_app", "tensor_gate"]
