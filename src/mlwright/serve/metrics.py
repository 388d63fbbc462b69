"""Prometheus metrics and the structured access log of the model server.

Requests are labelled by the route template that answered them (``/v1/experiments/{id}``),
never by the raw path: every path that matches no route shares the one label
:data:`UNMATCHED`, so no client can grow ``/metrics`` by asking for paths. Each app gets its own
collector registry (two apps in one process never share counters). With several workers, set
PROMETHEUS_MULTIPROC_DIR (``mlwright serve`` does) and ``/metrics`` merges the workers' values
through prometheus-client's multiprocess mode.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from mlwright.serve.asgi import Receive, Scope, Send

access_log = logging.getLogger("mlwright.access")
UNMATCHED = "unmatched"  # the route label of every request that matched no route
LANE = "mlwright.lane"  # scope key: the path of a route served on its own ASGI lane
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("route", "status", "model", "version")
        self.requests = Counter(
            "mlwright_requests", "HTTP requests", labels, registry=self.registry
        )
        self.latency = Histogram(
            "mlwright_request_seconds",
            "Request latency",
            ("route", "model", "version"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "mlwright_predictions",
            "Predictions by predicted label",
            ("model", "version", "label"),
            registry=self.registry,
        )
        self.values = Histogram(
            "mlwright_prediction_value",
            "Predicted values (regression)",
            ("model", "version"),
            registry=self.registry,
        )
        self.ready = Gauge(
            "mlwright_model_ready",
            "1 when the model passed the gate",
            ("model", "version"),
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.experiment_running = Gauge(
            "mlwright_experiment_running",
            "1 while the experiment routes traffic to its challengers",
            ("experiment",),
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.variant_requests = Counter(
            "mlwright_variant_requests",
            "Predict requests answered, by experiment variant",
            ("experiment", "variant"),
            registry=self.registry,
        )
        self.guardrail_trips = Counter(
            "mlwright_guardrail_trips",
            "Guardrail breaches that stopped an experiment",
            ("experiment", "variant", "guardrail"),
            registry=self.registry,
        )

        # computed when scraped (monitoring): the same in every worker, so not merged
        self.computed = CollectorRegistry()

    def add_collector(self, collector: Any) -> None:
        self.computed.register(collector)

    def render(self) -> tuple[bytes, str]:
        computed = generate_latest(self.computed)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged) + computed, CONTENT_TYPE_LATEST
        return generate_latest(self.registry) + computed, CONTENT_TYPE_LATEST


class Observe:
    """ASGI middleware: a request id, latency and status metrics, one JSON access-log line."""

    def __init__(
        self, app: Any, metrics: ServerMetrics, model: str, version: Callable[[], str]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.model = model
        self.version = version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        done = False

        def record() -> None:
            # before the last byte goes out: a client that has its answer sees it counted
            nonlocal done
            done = True
            elapsed = time.perf_counter() - started
            route = route_label(scope)
            version = self.version()
            self.metrics.requests.labels(route, str(status), self.model, version).inc()
            self.metrics.latency.labels(route, self.model, version).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    json.dumps(
                        {
                            "request_id": request_id,
                            "method": scope.get("method"),
                            "path": scope.get("path"),
                            "route": route,
                            "status": status,
                            "ms": round(elapsed * 1000, 3),
                            "model": self.model,
                            "version": version,
                        }
                    )
                )

        async def observed_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                record()
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            if not done:
                record()


def route_label(scope: Scope) -> str:
    """The template of the route that answered (set by the router as it matched), the path of
    an ASGI lane, or :data:`UNMATCHED`."""
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        return template
    lane = scope.get(LANE)
    return lane if isinstance(lane, str) else UNMATCHED
