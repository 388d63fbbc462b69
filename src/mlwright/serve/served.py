"""What every route needs of the model a server serves, and the state handlers get.

A tabular package (:mod:`mlwright.serve.tabular`) and a tensor package
(:mod:`mlwright.serve.tensor_app`) both implement :class:`Served`, so one set of routers
(:mod:`mlwright.serve.routes`) serves either. Handlers receive the :class:`ServerState` through
``Depends`` (the ``Server`` annotation): nothing is captured in closures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends, Request

from mlwright.config import ServeSettings
from mlwright.serve.metrics import ServerMetrics

if TYPE_CHECKING:
    from mlwright.monitor.gauges import MonitorGauges
    from mlwright.serve.experiment_runtime import ExperimentRuntime
    from mlwright.serve.feedback import Outcomes
    from mlwright.serve.slot import Slot

Lane = Any  # an ASGI callable that answers a route before the framework does


class Served(Protocol):
    """A served model as the routes see it."""

    @property
    def name(self) -> str:
        """The served name (the registry's, or the package's)."""

    @property
    def task(self) -> str:
        """binary, multiclass or regression (tabular); classification or regression (tensor)."""

    @property
    def version(self) -> str | None:
        """The registry version serving now (None for a folder)."""

    @property
    def outcomes(self) -> Outcomes:
        """What feedback for this model's predictions may say."""

    def status(self) -> tuple[bool, str | None]:
        """(ready, why not): ready once the model passed its deployment gate."""

    def describe(self) -> dict[str, Any]:
        """The model's entry in ``/v1/models``."""

    async def predict(
        self, body: bytes, request_id: str, headers: dict[bytes, bytes]
    ) -> tuple[int, bytes]:
        """A ``/v1/predict`` body scored: (status, JSON answer)."""

    async def invocations(self, body: bytes, request_id: str) -> tuple[int, dict[str, Any]]:
        """An MLflow ``/invocations`` body scored: (status, answer in MLflow's shapes)."""

    def request_bodies(self, schemas: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """This model's request bodies for the OpenAPI document: path → the JSON schema of its
        POST body (components they refer to are added to ``schemas``)."""

    async def start(self) -> None:
        """Run the deployment gate, open the store's writer; the server takes traffic after."""

    def stop(self) -> None:
        """Close what ``start`` opened."""

    def lanes(self) -> dict[tuple[str, str], Lane]:
        """(method, path) → an ASGI handler that answers before the framework (hot routes)."""


@dataclass
class ServerState:
    """Everything a handler may use; ``app.state.server``."""

    served: Served
    settings: ServeSettings
    metrics: ServerMetrics
    gauges: MonitorGauges | None = None  # drift and live-performance gauges (with a store)
    # tabular servers: variant → what it serves (the champion alone without an experiment)
    variants: dict[str, Slot] = field(default_factory=dict)
    experiment: ExperimentRuntime | None = None

    def info(self) -> dict[str, Any]:
        return {"name": self.served.name, "version": self.served.version, "variant": "champion"}


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


Server = Annotated[ServerState, Depends(server_state)]
