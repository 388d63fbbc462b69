"""The model server: a FastAPI app around one verified, gated model package, built from
routers (:mod:`mlwright.serve.routes`) over one served-model interface
(:class:`mlwright.serve.served.Served`) that tabular and tensor packages both implement.

``create_app(model)`` serves a tabular package: the request models are generated from its
schema, and the deployment gate runs when the app starts: until the golden examples reproduce
and the latency budget holds, ``/ready`` answers 503 with the reason and prediction routes
refuse with 503. ``POST /v1/predict`` and MLflow's ``POST /invocations`` are served by
:mod:`mlwright.serve.predict` and :mod:`mlwright.serve.invocations` on their own ASGI lanes in
front of FastAPI (FastAPI keeps the routes for /docs); they score through the package's fast
scorer and never import mlflow or the trainer. The returned app's ``state.asgi`` is what
uvicorn serves: the guard (JSON bodies only, and CSV on ``/invocations``; size limit), then
metrics and access log, then the lanes.
"""

from __future__ import annotations

import gc
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mlwright.config import ServeSettings
from mlwright.errors import ConfigError
from mlwright.experiment.config import ExperimentConfig
from mlwright.monitor.gauges import MonitorGauges
from mlwright.package.model import Model
from mlwright.serve import routes
from mlwright.serve.asgi import Receive, Scope, Send
from mlwright.serve.docs import add_docs
from mlwright.serve.experiment_runtime import ExperimentRuntime
from mlwright.serve.invocations import PATH as INVOCATIONS
from mlwright.serve.limits import Guard
from mlwright.serve.metrics import LANE, Observe, ServerMetrics
from mlwright.serve.routes.monitoring import MAX_MINUTES, MAX_ROWS
from mlwright.serve.schemas import error, validation_items
from mlwright.serve.served import Served, ServerState
from mlwright.serve.slot import Slot, schema_change
from mlwright.serve.tabular import TabularServed, mlflow_body

log = logging.getLogger("mlwright.serve")
# the routers every server has; a tabular one adds monitoring, experiments and (with a token)
# admin
COMMON = (routes.operations, routes.prediction, routes.mlflow, routes.feedback)
TABULAR = (
    routes.operations,
    routes.prediction,
    routes.feedback,
    routes.monitoring,
    routes.experiments,
    routes.mlflow,
)


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
    metrics = ServerMetrics()
    runtime = None
    if experiment is not None:
        runtime = _experiment_runtime(experiment, slot, challengers or {}, cfg, metrics)
    served = TabularServed(slot, cfg, metrics, runtime)
    state = ServerState(served, cfg, metrics, variants=served.variants, experiment=runtime)
    if cfg.store and cfg.monitor:
        state.gauges = MonitorGauges(
            Path(cfg.store),
            _serving(served.variants),
            minutes=cfg.monitor_minutes,
            cache_seconds=cfg.monitor_cache_seconds,
        )
        metrics.add_collector(state.gauges)
    routers = [*TABULAR, *([routes.admin] if cfg.admin_token else [])]
    app = build_app(
        state,
        title=f"mlwright: {slot.name}",
        description=f"Predictions from the mlwright model {slot.name!r} ({model.task}).",
        routers=routers,
    )
    app.state.slot = slot
    app.state.settings = cfg
    app.state.experiment = runtime

    def follow(started: ExperimentRuntime) -> None:  # an experiment started at run time
        state.experiment = app.state.experiment = started

    served.experiments.on_change.append(follow)
    return app


def build_app(
    state: ServerState, *, title: str, description: str, routers: list[APIRouter]
) -> FastAPI:
    """A server of ``state.served`` from ``routers``: the gate runs when it starts; the
    returned app's ``state.asgi`` is what uvicorn serves: the guard (JSON bodies only, and CSV
    on a tabular ``/invocations``; size limit), then metrics and access log, then the served
    model's lanes and the framework."""
    app = FastAPI(
        title=title,
        description=description,
        lifespan=_lifespan,
        docs_url=None,  # served from local files by add_docs, never from a CDN
        redoc_url=None,
    )
    add_docs(app)
    app.state.server = state
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
    for router in routers:
        app.include_router(router)
    _document(app, state.served)
    served, metrics = state.served, state.metrics
    # refusals of the guard (413, 415) are counted, logged and carry a request id too
    lanes = served.lanes()
    # the tabular /invocations lane reads MLflow's CSV bodies too
    csv_paths = frozenset({INVOCATIONS} if ("POST", INVOCATIONS) in lanes else ())
    guarded = Guard(Lanes(app, lanes), state.settings.max_body_bytes, csv_paths)
    app.state.asgi = Observe(guarded, metrics, served.name, lambda: served.version or "")
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServerState = app.state.server
    await state.served.start()
    if state.settings.freeze_gc:
        # what start-up loaded lives as long as the server: keep the collector from tracing
        # it again and again (full collections were the long tail of request latency)
        gc.collect()
        gc.freeze()
    try:
        yield
    finally:
        state.served.stop()


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"errors": validation_items(list(exc.errors()))}, status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path)
    return error(
        500,
        f"internal error ({type(exc).__name__})",
        "retry; if it persists, report it with the server log",
    )


def _document(app: FastAPI, served: Served) -> None:
    """The OpenAPI document, completed with the served model's own request bodies (the routes
    read their bodies themselves, so the framework does not know them)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for path, schema in served.request_bodies(schemas).items():
                post = spec.get("paths", {}).get(path, {}).get("post")
                if post is not None:
                    content = {"application/json": {"schema": schema}}
                    post["requestBody"] = {"required": True, "content": content}
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _serving(variants: dict[str, Slot]) -> Any:
    def serving() -> list[tuple[str, str, str | None, Model]]:
        return [
            (variant, s.name, s.active.version, s.active.model)
            for variant, s in variants.items()
            if s.active is not None
        ]

    return serving


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
    settings = ServeSettings.model_validate_json(spec.get("MLWRIGHT_SERVE_SETTINGS") or "{}")
    from threadpoolctl import threadpool_limits

    from mlwright.package.store import load_any, load_package

    model = load_any(package, threads=settings.threads)
    # a worker scores one request at a time: the OpenMP and BLAS pools its libraries loaded get
    # the configured threads (a pool of every core would spin on the cores requests need)
    threadpool_limits(limits=settings.threads)
    settings = settings.model_copy(
        update={"admin_token": spec.get("MLWRIGHT_ADMIN_TOKEN") or None, "freeze_gc": True}
    )
    if not isinstance(model, Model):  # a tensor package: its own app, same contract
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


__all__ = [
    "MAX_MINUTES",
    "MAX_ROWS",
    "ServeSettings",
    "app_from_env",
    "app_from_spec",
    "build_app",
    "create_app",
    "error",
    "mlflow_body",
]
