"""The model server for a tensor package (``mlwright train-torch``, ``train-keras``,
``train-jax``).

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
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI

from mlwright.config import ServeSettings
from mlwright.errors import MlwrightError, SchemaViolationError
from mlwright.package.tensor import FLOATS, TensorModel, check_tensor_golden, golden_match
from mlwright.serve.bodies import BodyError
from mlwright.serve.bodies import parse as parse_body
from mlwright.serve.feedback import Outcomes, batch_schema
from mlwright.serve.gate import GateResult
from mlwright.serve.metrics import ServerMetrics
from mlwright.serve.predict import PATH, answer_body
from mlwright.serve.routes.mlflow import mlflow_error
from mlwright.serve.schemas import error_body, violation_item
from mlwright.serve.served import Lane, ServerState
from mlwright.store import PredictionBatch
from mlwright.store.process import PredictionWriter

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


class TensorServed:
    """Implements :class:`mlwright.serve.served.Served` for a tensor package."""

    def __init__(
        self,
        model: TensorModel,
        name: str,
        version: str | None,
        settings: ServeSettings,
        metrics: ServerMetrics,
    ) -> None:
        self.model, self.name, self.task = model, name, model.task
        self._version, self.settings, self.metrics = version, settings, metrics
        self.predictor = TensorPredictor(model, name, version, metrics, settings.max_rows)
        self.gate: GateResult | None = None  # None until the gate has run

    @property
    def version(self) -> str | None:
        return self._version

    @property
    def outcomes(self) -> Outcomes:
        return Outcomes.of(self.model.task, self.model.classes)

    def status(self) -> tuple[bool, str | None]:
        gate = self.gate
        if gate is not None and gate.ok:
            return True, None
        return False, "starting" if gate is None else gate.reason

    def describe(self) -> dict[str, Any]:
        gate, model = self.gate, self.model
        return {
            "name": self.name,
            "version": self._version,
            "variant": "champion",
            "kind": model.kind,
            "task": model.task,
            "ready": self.status()[0],
            "reason": None if gate is None or gate.ok else gate.reason,
            "inputs": [s.to_dict() for s in model.inputs],
            "classes": None if model.classes is None else list(model.classes),
            "gate": None if gate is None else gate.details,
        }

    async def predict(
        self, body: bytes, request_id: str, headers: dict[bytes, bytes]
    ) -> tuple[int, bytes]:
        if not self.status()[0]:
            return 503, orjson.dumps(_not_ready(self.gate))
        return await asyncio.to_thread(self.predictor, body, request_id)

    async def invocations(self, body: bytes, request_id: str) -> tuple[int, dict[str, Any]]:
        """MLflow's scoring protocol for tensor models: ``{"inputs": {name: batch}}`` or
        ``{"instances": [records]}``; answers ``{"predictions": [...]}``."""
        if not self.status()[0]:
            return mlflow_error(503, _not_ready(self.gate)["errors"][0]["reason"])
        from mlwright.package.pyfunc import tensor_records

        try:
            payload = parse_body(body)
            value = payload["inputs"] if "inputs" in payload else payload["instances"]
            records = tensor_records(value if isinstance(value, dict) else list(value))
        except BodyError as exc:
            return mlflow_error(400, exc.reason)
        except (KeyError, TypeError) as exc:
            return mlflow_error(
                400, f"send {{'inputs': {{name: batch}}}} or {{'instances': [...]}} ({exc})"
            )
        except MlwrightError as exc:
            return mlflow_error(400, exc.message)
        scored = orjson.dumps({"records": records})
        status, answer = await asyncio.to_thread(self.predictor, scored, request_id)
        if status != 200:
            message = "; ".join(
                f"record {e['record']} {e['field']}: {e['reason']}" if e["field"] else e["reason"]
                for e in orjson.loads(answer)["errors"][:10]
            )
            return mlflow_error(400, message)
        rows = orjson.loads(answer)["predictions"]
        for row in rows:
            row.pop("prediction_id", None)
        return 200, {"predictions": rows}

    def request_bodies(self, schemas: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {
            PATH: request_schema(self.model, self.settings.max_rows),
            "/v1/feedback": feedback_schema(self.outcomes),
        }

    async def start(self) -> None:
        gate_on = self.settings.gate
        off = GateResult(True, "gate disabled", {})
        gate = tensor_gate(self.model, self.predictor) if gate_on else off
        self.gate = gate
        if not gate.ok:
            log.error("deployment gate failed: %s", gate.reason)
        self.metrics.ready.labels(self.name, self._version or "").set(1 if gate.ok else 0)
        if self.settings.store:
            self.predictor.writer = PredictionWriter(Path(self.settings.store))

    def stop(self) -> None:
        if self.predictor.writer is not None:
            self.predictor.writer.close()
            self.predictor.writer = None

    def lanes(self) -> dict[tuple[str, str], Lane]:
        return {}


def create_tensor_app(
    model: TensorModel,
    *,
    name: str | None = None,
    version: str | None = None,
    settings: ServeSettings | None = None,
) -> FastAPI:
    """The app serving a tensor package, from the same routers as a tabular one (operations,
    prediction, MLflow, feedback)."""
    from mlwright.serve.app import COMMON, build_app

    cfg = settings or ServeSettings()
    metrics = ServerMetrics()
    served = TensorServed(model, name or model.name, version, cfg, metrics)
    app = build_app(
        ServerState(served, cfg, metrics),
        title=f"mlwright: {served.name}",
        description=f"Predictions from the {model.framework} model {served.name!r} ({model.task}).",
        routers=list(COMMON),
    )
    app.state.predictor = served.predictor
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
    return body


def feedback_schema(outcomes: Outcomes) -> dict[str, Any]:
    """The /docs description of a feedback body: one item or a batch (inline schemas)."""
    item = outcomes.schema()
    batch = batch_schema("#/components/schemas/FeedbackItem")
    batch["properties"]["items"]["items"] = item
    return {"oneOf": [item, batch]}


def _not_ready(gate: GateResult | None) -> dict[str, Any]:
    reason = "the model has not passed its deployment gate yet" if gate is None else gate.reason
    return error_body(f"the model is not ready: {reason}", "wait for /ready to answer 200")


__all__ = ["TensorPredictor", "TensorServed", "create_tensor_app", "tensor_gate"]
