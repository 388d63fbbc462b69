"""``POST /v1/predict``: from the request's bytes to the response's bytes.

The common request (``{"records": [...]}`` with numbers, booleans and known categories) goes
through :func:`~mlwright.data.records.record_columns` and the model's NumPy scorer without
pandas or per-record validation objects. Anything else takes the general path: the request model
generated from the schema (pydantic), then :meth:`TableSchema.check`, which converts what can be
converted and names every violation (record, field, value, reason, fix). Both paths give the
same predictions for the inputs the fast one accepts.

:class:`Predictor` is served by its own ASGI lane in front of FastAPI (:meth:`Predictor.asgi`),
and by the FastAPI route that documents it, so both behave the same.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from typing import Any

import orjson
import pandas as pd
from pydantic import BaseModel, ValidationError

from mlwright.data.records import RecordColumns, record_columns
from mlwright.errors import MlwrightError
from mlwright.package.model import Model
from mlwright.serve.asgi import Receive, Scope, Send, read_body
from mlwright.serve.bodies import BodyError, check, parse
from mlwright.serve.experiment_runtime import ExperimentRuntime
from mlwright.serve.metrics import ServerMetrics
from mlwright.serve.schemas import error_body, validation_items, violation_item
from mlwright.serve.slot import Active, Slot
from mlwright.store import PredictionBatch
from mlwright.store.process import PredictionWriter

log = logging.getLogger("mlwright.serve")
PATH = "/v1/predict"
_HEADERS = [(b"content-type", b"application/json")]


class Predictor:
    """Scores request bodies for one slot; records every answered batch in the store."""

    def __init__(
        self,
        slot: Slot,
        request_model: type[BaseModel],
        metrics: ServerMetrics,
        max_rows: int,
    ) -> None:
        self.slot = slot
        self.request_model = request_model
        self.metrics = metrics
        self.max_rows = max_rows
        self.writer: PredictionWriter | None = None  # opened by the app's lifespan
        self.experiment: ExperimentRuntime | None = None  # set when serving an experiment

    def __call__(
        self, raw: bytes, request_id: str, headers: dict[bytes, bytes] | None = None
    ) -> tuple[int, bytes]:
        """The status and JSON body answering ``raw``."""
        try:
            payload = parse(raw, depth=False)  # the general path checks the depth
        except BodyError as exc:
            return 422, orjson.dumps({"errors": [exc.item()]})
        slot, variant = self.slot, "champion"
        experiment = self.experiment
        if experiment is not None:
            variant = experiment.choose(_entity_key(payload, headers, experiment))
            slot = experiment.slots[variant]
        active = slot.active  # one model for the whole request, even during a swap
        if active is None:
            return 503, _error(
                f"the model is not ready: {slot.failure}", "wait for /ready to answer 200"
            )
        current = active.model
        records = _plain_records(payload, self.max_rows)
        features: RecordColumns | pd.DataFrame | None = None
        if records is not None:
            features = record_columns(current.schema, records)
        if features is None:  # the general path: convert what converts, name every problem
            checked = self._checked(current, payload)
            if isinstance(checked, bytes):
                return 422, checked
            features = checked
        started = time.perf_counter()
        try:
            out = current.outputs(features)
        except MlwrightError as exc:
            return 422, _error(exc.message, exc.fix or "check the request")
        except Exception:
            if experiment is None or slot is self.slot or self.slot.active is None:
                raise
            # a challenger that fails never fails the request: the champion answers, and the
            # failure counts against the challenger's guardrail
            log.exception("challenger %r failed; the champion answers", variant)
            experiment.count_error(variant)
            slot, variant, active = self.slot, experiment.config.champion.name, self.slot.active
            current = active.model
            started = time.perf_counter()
            out = current.outputs(features)
        columns = {key: values.tolist() for key, values in out.items()}
        if experiment is not None:
            ms = (time.perf_counter() - started) * 1000
            experiment.observe(variant, ms, columns, current.task)
        self._count(active, columns["prediction"])
        answer = answer_body(request_id, request_id, slot.name, active.version, variant, columns)
        n = len(columns["prediction"])
        self._record(
            request_id, slot.name, active.version, variant, payload, current, raw, answer, n
        )
        if experiment is not None and experiment.config.mode == "shadow":
            experiment.submit_shadow(
                lambda: self._shadow(experiment, request_id, features, payload, raw)
            )
        return 200, answer

    def _record(
        self,
        request_id: str,
        name: str,
        version: str | None,
        variant: str,
        payload: Any,
        model: Model,
        raw: bytes,
        answer: bytes,
        n: int,
    ) -> None:
        if self.writer is None:
            return
        self.writer.add(
            PredictionBatch(
                request_id,
                time.time(),
                name,
                version,
                variant,
                payload.get("entity_key") if isinstance(payload, dict) else None,
                tuple(c.name for c in model.schema.features),
                n,
                raw,
                answer,
            )
        )

    def _shadow(
        self,
        experiment: ExperimentRuntime,
        request_id: str,
        features: RecordColumns | pd.DataFrame,
        payload: Any,
        raw: bytes,
    ) -> None:
        """Off the response path: the challenger scores the same features; its answer is
        recorded under ``<request_id>~<variant>`` for the agreement analysis."""
        variant = experiment.config.variants[1].name
        active = experiment.slots[variant].active
        if active is None or experiment.status != "running":
            return
        started = time.perf_counter()
        try:
            out = active.model.outputs(features)
        except Exception:
            log.exception("shadow %r failed on request %s", variant, request_id)
            experiment.count_error(variant)
            return
        columns = {key: values.tolist() for key, values in out.items()}
        ms = (time.perf_counter() - started) * 1000
        experiment.observe(variant, ms, columns, active.model.task)
        shadow_id = f"{request_id}~{variant}"
        name = experiment.slots[variant].name
        answer = answer_body(shadow_id, request_id, name, active.version, variant, columns)
        n = len(columns["prediction"])
        self._record(
            shadow_id, name, active.version, variant, payload, active.model, raw, answer, n
        )

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The route as a bare ASGI app: no framework between the socket and the scorer."""
        raw = await read_body(receive)
        if raw is None:
            return
        request_id = scope.get("state", {}).get("request_id") or uuid.uuid4().hex
        keyed = dict(scope.get("headers") or []) if self.experiment is not None else None
        try:
            status, body = self(raw, request_id, keyed)
        except Exception as exc:  # answered like every other route's unexpected error
            log.exception("unexpected error on %s", PATH)
            status, body = (
                500,
                _error(
                    f"internal error ({type(exc).__name__})",
                    "retry; if it persists, report it with the server log",
                ),
            )
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _checked(self, model: Model, payload: Any) -> pd.DataFrame | bytes:
        """The general path: the generated request model, then the schema. The enforced
        features, or the 422 body naming every problem."""
        try:
            check(payload)
            body = self.request_model.model_validate(payload)
        except BodyError as exc:
            return orjson.dumps({"errors": [exc.item()]})
        except ValidationError as exc:
            return orjson.dumps({"errors": validation_items(exc.errors())})
        records = [r.model_dump() for r in body.records]  # type: ignore[attr-defined]
        frame = pd.DataFrame.from_records(records, columns=[c.name for c in model.schema.features])
        enforced, violations, _ = model.schema.check(frame)
        if not violations:
            return enforced
        items = [violation_item(v) for v in violations[:100]]
        return orjson.dumps({"errors": items})

    def _count(self, active: Active, predictions: list[Any]) -> None:
        name, version = self.slot.name, active.version or ""
        if active.model.task == "regression":
            histogram = self.metrics.values.labels(name, version)
            for value in predictions[:1000]:
                histogram.observe(value)
            return
        for label, count in Counter(predictions).items():
            self.metrics.predictions.labels(name, version, str(label)).inc(count)


def _error(reason: str, fix: str) -> bytes:
    return orjson.dumps(error_body(reason, fix))


def _plain_records(payload: Any, max_rows: int) -> list[Any] | None:
    """The records of a body that is exactly ``{"records": [...], "entity_key": str | null}``
    within the row limit, else None (the general path validates it and names the problem)."""
    if type(payload) is not dict or not payload.keys() <= {"records", "entity_key"}:
        return None
    records, key = payload.get("records"), payload.get("entity_key")
    if type(records) is not list or not 1 <= len(records) <= max_rows:
        return None
    if key is not None and type(key) is not str:
        return None
    return records


__all__ = ["PATH", "Predictor", "answer_body"]


def answer_body(
    id_prefix: str,
    request_id: str,
    name: str,
    version: str | None,
    variant: str,
    columns: dict[str, list[Any]],
) -> bytes:
    keys = ("prediction_id", *columns)
    ids = [f"{id_prefix}:{i}" for i in range(len(columns["prediction"]))]
    rows = [dict(zip(keys, row, strict=True)) for row in zip(ids, *columns.values(), strict=True)]
    info = {"name": name, "version": version, "variant": variant}
    return orjson.dumps({"request_id": request_id, "model": info, "predictions": rows})


def _entity_key(
    payload: Any, headers: dict[bytes, bytes] | None, experiment: ExperimentRuntime
) -> str | None:
    """The request's entity key: the configured header, else the body's field; None without."""
    keyed = experiment.config.entity_key
    if keyed.header and headers:
        value = headers.get(keyed.header.lower().encode())
        if value:
            return value.decode("latin-1")
    if isinstance(payload, dict):
        value = payload.get(keyed.field)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return None
