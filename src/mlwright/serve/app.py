"""The model server: a FastAPI app around one verified, gated model package.

``create_app(package)`` loads the package (checksums first), generates the request models from
its schema, and runs the deployment gate when the app starts: until the golden examples
reproduce and the latency budget holds, ``/ready`` answers 503 with the reason and prediction
routes refuse with 503. ``POST /v1/predict`` is served by :mod:`mlwright.serve.predict` on its
own ASGI lane in front of FastAPI (FastAPI keeps the route for /docs); it scores through the
package's fast scorer and never imports mlflow or the trainer. The returned app's
``state.asgi`` is what uvicorn serves: the guard (JSON bodies only, size limit), then metrics
and access log, then the lanes.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, TypeAdapter, ValidationError

from mlwright.errors import ConfigError, MlwrightError, SchemaViolationError
from mlwright.package.model import Model
from mlwright.serve.ab import ExperimentRuntime
from mlwright.serve.admin import add_admin_routes
from mlwright.serve.asgi import Receive, Scope, Send
from mlwright.serve.bodies import BodyError
from mlwright.serve.bodies import parse as parse_body
from mlwright.serve.docs import add_docs
from mlwright.serve.drift_counts import Watched, window_drift
from mlwright.serve.drift_settings import Settings as DriftSettings
from mlwright.serve.experiment import ExperimentConfig
from mlwright.serve.experiment_analysis import analyze, json_safe
from mlwright.serve.feedback import Outcomes, batch_schema
from mlwright.serve.feedback import answer as answer_feedback
from mlwright.serve.gate import GateResult, run_gate
from mlwright.serve.limits import Guard
from mlwright.serve.metrics import LANE, Observe, ServerMetrics
from mlwright.serve.monitor import MonitorGauges
from mlwright.serve.performance import live_performance
from mlwright.serve.predict import PATH, Predictor
from mlwright.serve.schemas import (
    MlflowError,
    PredictResponse,
    documented,
    error_body,
    predict_request_model,
    records_adapter,
    validation_items,
)
from mlwright.serve.slot import Active, Slot, schema_change
from mlwright.serve.slot import poll as _poll
from mlwright.serve.store import Watch
from mlwright.serve.writer import PredictionWriter

log = logging.getLogger("mlwright.serve")
MAX_MINUTES = 10 * 366 * 24 * 60  # windows of up to ten years
MAX_ROWS = 10**12


@dataclass(frozen=True)
class ServeSettings:
    max_rows: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    gate: bool = True
    store: str | None = None  # serving store (SQLite); None keeps no record of predictions
    poll_seconds: float | None = None  # re-resolve the registry alias this often
    admin_token: str | None = None  # enables /v1/admin/* (bearer token)
    threads: int = 1  # per predict call: a worker scores one request at a time
    freeze_gc: bool = False  # a server process of its own (`mlwright serve`) sets it
    monitor: bool = True  # count served values against the reference (needs a store)
    monitor_minutes: float = 60.0  # the window of the drift and live-performance gauges
    monitor_cache_seconds: float = 15.0  # the gauges are recomputed at most this often


def error(status: int, reason: str, fix: str) -> JSONResponse:
    return JSONResponse(error_body(reason, fix), status_code=status)


class Lanes:
    """ASGI: the hot routes go straight to their handler; everything else to the framework."""

    def __init__(self, app: Any, routes: dict[tuple[str, str], Any]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = None
        if scope["type"] == "http":
            handler = self.routes.get((scope["method"], scope["path"]))
            if handler is not None:
                scope[LANE] = scope["path"]  # the route's label in the metrics
        await (handler or self.app)(scope, receive, send)


def create_app(
    model: Model,
    *,
    name: str | None = None,
    version: str | None = None,
    ref: str | None = None,
    settings: ServeSettings | None = None,
    experiment: ExperimentConfig | None = None,
    challengers: dict[str, tuple[Model, str | None]] | None = None,
) -> FastAPI:
    """The app serving ``model``; with ``experiment``, its challengers (variant name →
    (model, registry version)) take their share of the traffic once they pass their gates."""
    cfg = settings or ServeSettings()
    slot = Slot(
        name=name or model.name, candidate=model, version=version, ref=ref, threads=cfg.threads
    )
    request_model = predict_request_model(model.schema, _ident(slot.name), cfg.max_rows)
    metrics = ServerMetrics()
    predictor = Predictor(slot, request_model, metrics, cfg.max_rows)
    runtime = None
    if experiment is not None:
        runtime = _experiment_runtime(experiment, slot, challengers or {}, cfg, metrics)
        predictor.experiment = runtime
    # variant → what it serves: the champion alone, or the experiment's variants
    variants: dict[str, Slot] = {"champion": slot} if runtime is None else runtime.slots

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gate = run_gate(model) if cfg.gate else GateResult(True, "gate disabled", {})
        if gate.ok:
            slot.active, slot.failure = Active(model, version, gate), None
        else:
            slot.failure = gate.reason
            log.error("deployment gate failed: %s", gate.reason)
        metrics.ready.labels(slot.name, version or "").set(1 if gate.ok else 0)
        for other in [] if runtime is None else list(runtime.slots.values())[1:]:
            try:
                checked = run_gate(other.candidate) if cfg.gate else GateResult(True, "off", {})
            except Exception as exc:  # a broken challenger must not take the champion down
                checked = GateResult(False, f"the gate raised {type(exc).__name__}: {exc}", {})
            if checked.ok:
                other.active, other.failure = Active(other.candidate, other.version, checked), None
            else:  # the champion serves everything until the challenger passes its gate
                other.active, other.failure = None, checked.reason
                log.error(
                    "challenger %s failed its deployment gate: %s", other.name, checked.reason
                )
        if cfg.store:  # one writer (process) per worker
            watches = [
                Watch(variant, s.version, str(Path(str(s.candidate.path)) / "reference.json"))
                for variant, s in variants.items()
                if cfg.monitor and _has_reference(s.candidate)
            ]
            predictor.writer = writer = PredictionWriter(Path(cfg.store), watches=watches)
            if cfg.monitor:

                def watch_swapped(model: Model, version: str | None) -> None:
                    if _has_reference(model):
                        assert model.path is not None
                        writer.watch(Watch("champion", version, str(model.path / "reference.json")))

                slot.on_swap.append(watch_swapped)
        if cfg.freeze_gc:
            # what start-up loaded lives as long as the server: keep the collector from tracing
            # it again and again (full collections were the long tail of request latency)
            gc.collect()
            gc.freeze()
        poller = None
        if cfg.poll_seconds and slot.ref:
            poller = asyncio.create_task(_poll(slot, cfg, metrics))
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
            if runtime is not None:
                runtime.close()
            if predictor.writer is not None:
                predictor.writer.close()
                predictor.writer = None

    app = FastAPI(
        title=f"mlwright: {slot.name}",
        description=f"Predictions from the mlwright model {slot.name!r} ({model.task}).",
        lifespan=lifespan,
        docs_url=None,  # served from local files by add_docs, never from a CDN
        redoc_url=None,
    )
    add_docs(app)
    app.state.slot = slot
    app.state.settings = cfg
    app.state.experiment = runtime

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"errors": validation_items(list(exc.errors()))}, status_code=422)

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

    def serving() -> list[tuple[str, str, str | None, Model]]:
        return [
            (variant, s.name, s.active.version, s.active.model)
            for variant, s in variants.items()
            if s.active is not None
        ]

    gauges = None
    if cfg.store and cfg.monitor:
        gauges = MonitorGauges(
            Path(cfg.store),
            serving,
            minutes=cfg.monitor_minutes,
            cache_seconds=cfg.monitor_cache_seconds,
        )
        metrics.add_collector(gauges)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def prometheus() -> Response:
        """Prometheus text format: requests, errors, latency, predictions per model version;
        with a store, drift and live performance over the last ``monitor_minutes``."""
        if gauges is not None:
            await asyncio.to_thread(gauges.refresh)
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

    async def predict(request: Request) -> Response:
        """Score records; one prediction per record, in order, each with a prediction_id."""
        request_id = request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex
        keyed = dict(request.scope.get("headers") or [])
        status, body = predictor(await request.body(), request_id, keyed)
        return Response(body, status_code=status, media_type="application/json")

    app.post(
        PATH,
        tags=["predict"],
        response_model=PredictResponse,
        responses=documented(413, 415, 422, 503),
        openapi_extra=_request_body(app, request_model),
    )(predict)

    async def feedback(request: Request) -> JSONResponse:
        """Outcomes for served predictions: `{"prediction_id", "label" | "value" | "reward"}`,
        or `{"items": [...]}`. A label must be one of the model's classes (regression: a
        finite number). A repeat is 200; different feedback for the same prediction is 409
        and stores nothing, unless the item says `"replace": true` (a correction)."""
        served = slot.active.model if slot.active is not None else slot.candidate
        return await answer_feedback(cfg.store, request, Outcomes.of(served.task, served.classes))

    app.post(
        "/v1/feedback",
        tags=["feedback"],
        responses=documented(409, 413, 415, 422, 503),
        openapi_extra=feedback_body(app, Outcomes.of(model.task, model.classes)),
    )(feedback)

    @app.get("/v1/monitor/drift", tags=["monitoring"], responses=documented(404, 503))
    async def drift(
        variant: str = "champion",
        minutes: Annotated[float | None, Query(gt=0, le=MAX_MINUTES)] = None,
        last: Annotated[int | None, Query(gt=0, le=MAX_ROWS)] = None,
        small_window: Annotated[int | None, Query(ge=0, le=MAX_ROWS)] = None,
        p_value: Annotated[float | None, Query(gt=0, lt=1)] = None,
        wasserstein: Annotated[float | None, Query(gt=0, le=1e6)] = None,
        jensen_shannon: Annotated[float | None, Query(gt=0, le=1)] = None,
        dataset_share: Annotated[float | None, Query(gt=0, le=1)] = None,
    ) -> JSONResponse:
        """Drift of the served traffic against the training reference of the version that
        serves now: per feature, for the predictions and for the dataset, over the last
        ``minutes``, or the latest minutes holding ``last`` rows (default: everything
        recorded). The drift thresholds default to Evidently's (see docs/monitoring.md)."""
        given: dict[str, Any] = {
            "small_window": small_window,
            "p_value": p_value,
            "wasserstein": wasserstein,
            "jensen_shannon": jensen_shannon,
            "dataset_share": dataset_share,
        }
        drift_settings = DriftSettings(**{k: v for k, v in given.items() if v is not None})
        chosen = variants.get(variant)
        if chosen is None:
            return error(404, f"no variant {variant!r} here", f"variants: {', '.join(variants)}")
        model, version = (
            (chosen.active.model, chosen.active.version)
            if chosen.active is not None
            else (chosen.candidate, chosen.version)
        )
        if not _has_reference(model):
            return error(
                404, "the model's package has no monitoring reference", "retrain it to add one"
            )
        if not cfg.store or not Path(cfg.store).exists():
            return error(503, "this server keeps no serving store", "start it with --store PATH")
        if not cfg.monitor:
            return error(503, "monitoring is off on this server", "start it without --no-monitor")
        assert model.path is not None
        reference = model.path / "reference.json"
        since = None if minutes is None else time.time() - 60 * minutes

        def compute() -> dict[str, Any]:
            watched = Watched.cached(str(reference))
            return window_drift(
                Path(str(cfg.store)),
                watched.reference,
                watched.digest,
                variant=variant,
                since=since,
                last=last,
                settings=drift_settings,
            )

        result = await asyncio.to_thread(compute)
        return JSONResponse(json_safe({"model": slot.name, "version": version, **result}))

    @app.get("/v1/monitor/performance", tags=["monitoring"], responses=documented(503))
    async def performance(
        minutes: Annotated[float | None, Query(gt=0, le=MAX_MINUTES)] = None,
        step_minutes: Annotated[float, Query(ge=1, le=MAX_MINUTES)] = 60,
    ) -> JSONResponse:
        """Live performance from feedback, per model version and variant: each metric over
        the last ``minutes`` (default: everything recorded) and per step of ``step_minutes``."""
        if not cfg.store or not Path(cfg.store).exists():
            return error(503, "this server keeps no serving store", "start it with --store PATH")
        since = None if minutes is None else time.time() - 60 * minutes
        found = await asyncio.to_thread(
            live_performance,
            Path(cfg.store),
            model=slot.name,
            since=since,
            step_seconds=int(step_minutes * 60),
        )
        return JSONResponse(json_safe({"model": slot.name, "performance": found}))

    @app.get("/v1/experiments", tags=["experiments"])
    async def experiments() -> dict[str, Any]:
        """The experiment this server runs, if any."""
        if runtime is None:
            return {"experiments": []}
        runtime.refresh()
        return {"experiments": [{"id": runtime.config.id, "status": runtime.status}]}

    @app.get("/v1/experiments/{experiment_id}", tags=["experiments"], responses=documented(404))
    async def experiment_status(experiment_id: str) -> JSONResponse:
        """The experiment's status, variants and analysis: per variant the requests and, once
        feedback arrives, each metric's difference with fixed-horizon and always-valid tests,
        the sample-ratio check and a verdict."""
        if runtime is None or experiment_id != runtime.config.id:
            running = "no experiment" if runtime is None else f"experiment {runtime.config.id!r}"
            return error(
                404, f"no experiment {experiment_id!r} here", f"this server runs {running}"
            )
        runtime.refresh()
        body = runtime.describe()
        if cfg.store and Path(cfg.store).exists():
            body["analysis"] = await asyncio.to_thread(
                analyze, Path(cfg.store), runtime.config, runtime.weights(), since=runtime.started
            )
        return JSONResponse(body)

    # MLflow enforces its input schema: a value of the wrong JSON type is a 400 naming it
    cells = records_adapter(request_model)

    @app.post(
        "/invocations",
        tags=["mlflow"],
        responses={
            400: {"model": MlflowError, "description": "invalid input (MLflow's error shape)"},
            503: {"model": MlflowError, "description": "the model is not ready"},
            **documented(413, 415),
        },
        openapi_extra=mlflow_body(f"{_ident(slot.name)}Record"),
    )
    async def invocations(request: Request) -> JSONResponse:
        """What `mlflow models serve` accepts as JSON: dataframe_split, dataframe_records,
        instances or inputs; answers {"predictions": [...]}."""
        active = slot.active
        if active is None:
            return _mlflow_error(503, "the model has not passed the deployment gate")
        try:
            payload = parse_body(await request.body())
        except BodyError as exc:
            return _mlflow_error(400, exc.reason)
        try:
            frame = _mlflow_frame(payload)
            _check_cells(cells, frame)
            out = active.model.predict_frame(active.model.schema.enforce(frame))
        except SchemaViolationError as exc:
            return _mlflow_error(400, str(exc))
        except (MlwrightError, ValueError, TypeError, KeyError) as exc:
            return _mlflow_error(400, f"invalid input: {exc}")
        return JSONResponse({"predictions": json.loads(out.to_json(orient="records"))})

    token = cfg.admin_token
    if token:
        add_admin_routes(app, slot, token, metrics)

    lanes = Lanes(app, {("POST", PATH): predictor.asgi})
    # refusals of the guard (413, 415) are counted, logged and carry a request id too
    guarded = Guard(lanes, cfg.max_body_bytes)
    wrapped = Observe(guarded, metrics, slot.name, lambda: slot.current_version or "")
    app.state.asgi = wrapped
    return app


def _has_reference(model: Model) -> bool:
    return model.path is not None and (model.path / "reference.json").is_file()


def _experiment_runtime(
    config: ExperimentConfig,
    champion: Slot,
    challengers: dict[str, tuple[Model, str | None]],
    cfg: ServeSettings,
    metrics: ServerMetrics,
) -> ExperimentRuntime:
    slots = {config.champion.name: champion}
    for variant in config.variants[1:]:
        if variant.name not in challengers:
            raise ConfigError(
                f"experiment {config.id!r}: no model loaded for variant {variant.name!r}",
                fix="load every variant's model",
            )
        model, version = challengers[variant.name]
        change = schema_change(champion.candidate, model)
        if change:
            raise ConfigError(
                f"challenger {variant.name!r} takes different input than the champion ({change})",
                fix="A/B test models trained on the same columns",
            )
        slots[variant.name] = Slot(
            name=model.name, candidate=model, version=version, threads=cfg.threads
        )
    return ExperimentRuntime(config, slots, Path(cfg.store) if cfg.store else None, metrics)


def _request_body(app: FastAPI, model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body the route reads itself: the generated request model, so /docs shows
    the real columns and types."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components = {**schema.pop("$defs", {}), model.__name__: schema}
    return _documented_body(app, components, {"$ref": f"#/components/schemas/{model.__name__}"})


def feedback_body(app: FastAPI, outcomes: Outcomes) -> dict[str, Any]:
    """OpenAPI for ``/v1/feedback``: one item or a batch, with this model's labels."""
    ref = "#/components/schemas/FeedbackItem"
    components = {"FeedbackItem": outcomes.schema(), "FeedbackBatch": batch_schema(ref)}
    body = {"oneOf": [{"$ref": ref}, {"$ref": "#/components/schemas/FeedbackBatch"}]}
    return _documented_body(app, components, body)


def _documented_body(
    app: FastAPI, components: dict[str, Any], schema: dict[str, Any]
) -> dict[str, Any]:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            spec.setdefault("components", {}).setdefault("schemas", {}).update(components)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    return _json_body(schema)


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def mlflow_body(record_model: str) -> dict[str, Any]:
    """OpenAPI for ``/invocations``: MLflow's record shapes over this model's columns
    (``dataframe_split`` is accepted too, as MLflow does)."""
    records = {
        "type": "array",
        "items": {"$ref": f"#/components/schemas/{record_model}"},
        "minItems": 1,
    }
    shapes = [
        {
            "type": "object",
            "properties": {key: records},
            "required": [key],
            "additionalProperties": False,
        }
        for key in ("dataframe_records", "instances", "inputs")
    ]
    return _json_body({"oneOf": shapes})


def _ident(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_")) or "Model"


def _info(slot: Slot) -> dict[str, Any]:
    return {"name": slot.name, "version": slot.current_version, "variant": "champion"}


def _mlflow_error(status: int, message: str) -> JSONResponse:
    code = "BAD_REQUEST" if status == 400 else "TEMPORARILY_UNAVAILABLE"
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _check_cells(cells: TypeAdapter[Any], frame: pd.DataFrame) -> None:
    """Raise ValueError naming the first values of ``frame`` the record model refuses."""
    try:
        cells.validate_python(frame.to_dict(orient="records"))
    except ValidationError as exc:
        errors = [{**e, "loc": ("records", *e["loc"])} for e in exc.errors(include_url=False)]
        raise ValueError(
            "; ".join(
                f"record {item['record']} '{item['field']}': {item['reason']}"
                for item in validation_items(errors, limit=5)
            )
        ) from None


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


def app_from_env() -> Any:
    """Factory for ``uvicorn --factory`` (several workers): :func:`app_from_spec` of the
    environment."""
    return app_from_spec(os.environ)


def app_from_spec(spec: Mapping[str, str]) -> Any:
    """The server's ASGI app, built in the process that serves it: the package path comes from
    MLWRIGHT_SERVE_PACKAGE; the settings from MLWRIGHT_SERVE_SETTINGS (JSON); the registry
    name, version and reference from MLWRIGHT_SERVE_NAME, _VERSION and _REF; an experiment
    from MLWRIGHT_SERVE_EXPERIMENT; the admin token from MLWRIGHT_ADMIN_TOKEN."""
    package = spec["MLWRIGHT_SERVE_PACKAGE"]
    settings = ServeSettings(**json.loads(spec.get("MLWRIGHT_SERVE_SETTINGS", "{}")))
    from threadpoolctl import threadpool_limits

    from mlwright.package.store import load_any, load_package

    model = load_any(package, threads=settings.threads)
    # a worker scores one request at a time: the OpenMP and BLAS pools its libraries loaded get
    # the configured threads (a pool of every core would spin on the cores requests need)
    threadpool_limits(limits=settings.threads)
    settings = ServeSettings(
        **{
            **settings.__dict__,
            "admin_token": spec.get("MLWRIGHT_ADMIN_TOKEN") or None,
            "freeze_gc": True,
        }
    )
    if not isinstance(model, Model):  # a PyTorch package: its own app, same contract
        from mlwright.serve.tensor_app import create_tensor_app

        tensor_app = create_tensor_app(
            model,
            name=spec.get("MLWRIGHT_SERVE_NAME") or None,
            version=spec.get("MLWRIGHT_SERVE_VERSION") or None,
            settings=settings,
        )
        return tensor_app.state.asgi
    experiment, challengers = None, {}
    if spec.get("MLWRIGHT_SERVE_EXPERIMENT"):
        chosen = json.loads(spec["MLWRIGHT_SERVE_EXPERIMENT"])
        experiment = ExperimentConfig.model_validate(chosen["config"])
        challengers = {
            name: (load_package(c["path"], threads=settings.threads), c["version"])
            for name, c in chosen["challengers"].items()
        }
    app = create_app(
        model,
        ref=spec.get("MLWRIGHT_SERVE_REF") or None,
        name=spec.get("MLWRIGHT_SERVE_NAME") or None,
        version=spec.get("MLWRIGHT_SERVE_VERSION") or None,
        settings=settings,
        experiment=experiment,
        challengers=challengers,
    )
    return app.state.asgi


__all__ = ["ServeSettings", "app_from_env", "app_from_spec", "create_app"]
