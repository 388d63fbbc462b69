"""A tabular package as the server serves it: the slot that holds the model (and swaps it),
the request model generated from its schema, the fast scorer's lane, an experiment's variants,
and the store's writer with the drift references it counts against."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from mlwright.config import ServeSettings
from mlwright.monitor.counts import count_batch
from mlwright.package.model import Model
from mlwright.serve.adoption import RuntimeExperiments
from mlwright.serve.experiment_runtime import ExperimentRuntime
from mlwright.serve.feedback import Outcomes, batch_schema
from mlwright.serve.gate import GateResult, run_gate
from mlwright.serve.invocations import PATH as INVOCATIONS
from mlwright.serve.invocations import Invocations
from mlwright.serve.metrics import ServerMetrics
from mlwright.serve.predict import PATH, Predictor
from mlwright.serve.schemas import predict_request_model, records_adapter
from mlwright.serve.served import Lane
from mlwright.serve.slot import Active, Slot
from mlwright.serve.slot import poll as follow_alias
from mlwright.store import Watch
from mlwright.store.process import PredictionWriter

log = logging.getLogger("mlwright.serve")


class TabularServed:
    """Implements :class:`mlwright.serve.served.Served` for a tabular package."""

    def __init__(
        self,
        slot: Slot,
        settings: ServeSettings,
        metrics: ServerMetrics,
        runtime: ExperimentRuntime | None = None,
    ) -> None:
        model = slot.candidate
        self.slot, self.settings, self.metrics, self.runtime = slot, settings, metrics, runtime
        self.name, self.task = slot.name, model.task
        rows = settings.max_rows
        self.request_model = predict_request_model(model.schema, ident(slot.name), rows)
        # MLflow enforces its input schema: a value of the wrong JSON type is a 400 naming it
        self.cells = records_adapter(self.request_model)
        self.predictor = Predictor(slot, self.request_model, metrics, settings.max_rows)
        self.predictor.experiment = runtime
        self.invoker = Invocations(slot, self.cells, settings.max_rows)
        # variant → what it serves: the champion alone, or the experiment's variants
        self.variants: dict[str, Slot] = (
            {"champion": slot} if runtime is None else dict(runtime.slots)
        )
        # experiments started while the server runs (the admin route, or another worker)
        self.experiments = RuntimeExperiments(self)
        self.poller: asyncio.Task[None] | None = None

    @property
    def version(self) -> str | None:
        return self.slot.current_version

    @property
    def serving(self) -> Model:
        active = self.slot.active
        return active.model if active is not None else self.slot.candidate

    @property
    def outcomes(self) -> Outcomes:
        return Outcomes.of(self.serving.task, self.serving.classes)

    def status(self) -> tuple[bool, str | None]:
        return self.slot.ready, self.slot.failure

    def describe(self) -> dict[str, Any]:
        slot, active = self.slot, self.slot.active
        return {
            "name": slot.name,
            "version": slot.current_version,
            "variant": "champion",
            "task": self.task,
            "ready": slot.ready,
            "serving": active is not None,
            "reason": slot.failure,
            "follows": slot.ref,
            "features": [c.name for c in slot.candidate.schema.features],
            "gate": None if active is None else active.gate.details,
        }

    async def predict(
        self, body: bytes, request_id: str, headers: dict[bytes, bytes]
    ) -> tuple[int, bytes]:
        return self.predictor(body, request_id, headers)

    async def invocations(self, body: bytes, request_id: str) -> tuple[int, dict[str, Any]]:
        status, answer = self.invoker(body)  # served by its lane; here for the framework's route
        return status, orjson.loads(answer)

    def request_bodies(self, schemas: dict[str, Any]) -> dict[str, dict[str, Any]]:
        predict_ref = _component(schemas, self.request_model)
        item, batch = "#/components/schemas/FeedbackItem", "#/components/schemas/FeedbackBatch"
        schemas.update(FeedbackItem=self.outcomes.schema(), FeedbackBatch=batch_schema(item))
        return {
            PATH: {"$ref": predict_ref},
            "/v1/feedback": {"oneOf": [{"$ref": item}, {"$ref": batch}]},
            "/invocations": mlflow_body(f"{ident(self.name)}Record"),
        }

    async def start(self) -> None:
        self._gate_all()
        settings = self.settings
        if settings.store:  # one writer (process) per worker
            watches = [
                Watch(variant, s.version, str(Path(str(s.candidate.path)) / "reference.json"))
                for variant, s in self.variants.items()
                if settings.monitor and has_reference(s.candidate)
            ]
            writer = PredictionWriter(Path(settings.store), count=count_batch, watches=watches)
            self.predictor.writer = writer
            if settings.monitor:

                def watch_swapped(model: Model, version: str | None) -> None:
                    if has_reference(model):
                        assert model.path is not None
                        writer.watch(Watch("champion", version, str(model.path / "reference.json")))

                self.slot.on_swap.append(watch_swapped)
        if settings.poll_seconds and self.slot.ref:
            self.poller = asyncio.create_task(follow_alias(self.slot, settings, self.metrics))
        self.experiments.start()

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
        self.experiments.stop()
        if self.runtime is not None:
            self.runtime.close()
        if self.predictor.writer is not None:
            self.predictor.writer.close()
            self.predictor.writer = None

    def lanes(self) -> dict[tuple[str, str], Lane]:
        return {("POST", PATH): self.predictor.asgi, ("POST", INVOCATIONS): self.invoker.asgi}

    def _gate_all(self) -> None:
        """The champion's gate, then each challenger's: a challenger that fails (or breaks)
        takes no traffic, and the champion serves everything."""
        slot, gate_on = self.slot, self.settings.gate
        model = slot.candidate
        gate = run_gate(model) if gate_on else GateResult(True, "gate disabled", {})
        if gate.ok:
            slot.active, slot.failure = Active(model, slot.version, gate), None
        else:
            slot.failure = gate.reason
            log.error("deployment gate failed: %s", gate.reason)
        self.metrics.ready.labels(slot.name, slot.version or "").set(1 if gate.ok else 0)
        for other in list(self.variants.values())[1:]:
            try:
                checked = run_gate(other.candidate) if gate_on else GateResult(True, "off", {})
            except Exception as exc:  # a broken challenger must not take the champion down
                checked = GateResult(False, f"the gate raised {type(exc).__name__}: {exc}", {})
            if checked.ok:
                other.active, other.failure = Active(other.candidate, other.version, checked), None
            else:
                other.active, other.failure = None, checked.reason
                log.error(
                    "challenger %s failed its deployment gate: %s", other.name, checked.reason
                )


def has_reference(model: Model) -> bool:
    return model.path is not None and (model.path / "reference.json").is_file()


def ident(name: str) -> str:
    """A model name as an identifier for the generated schemas (``churn-v2`` → ``ChurnV2``)."""
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_")) or "Model"


def mlflow_body(record_model: str) -> dict[str, Any]:
    """The schema of an ``/invocations`` JSON body: MLflow's record shapes over this model's
    columns, and ``params`` (any value: ignored, as MLflow ignores them here). What JSON Schema
    cannot say exactly is left out, so that what the document allows is accepted: a
    ``dataframe_split`` body (its rows must match its columns) and a ``text/csv`` one are
    accepted too, as MLflow accepts them."""
    records = {
        "type": "array",
        "items": {"$ref": f"#/components/schemas/{record_model}"},
        "minItems": 1,
    }
    params = {"description": "ignored, as MLflow ignores them for a model that declares none"}
    shapes = [
        {
            "type": "object",
            "properties": {key: records, "params": params},
            "required": [key],
            "additionalProperties": False,
        }
        for key in ("dataframe_records", "instances", "inputs")
    ]
    return {"oneOf": shapes}


def _component(schemas: dict[str, Any], model: type[BaseModel]) -> str:
    """Add the generated request model (and the record model it refers to) to the document's
    components; the reference to it."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update({**schema.pop("$defs", {}), model.__name__: schema})
    return f"#/components/schemas/{model.__name__}"
