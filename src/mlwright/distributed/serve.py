"""``mlwright serve --backend ray-serve``: the same server app, as replicas on Ray Serve.

Each replica builds the app in its own process from the same spec a uvicorn worker reads
(:func:`mlwright.serve.app.app_from_spec`): same routes, validation, deployment gate, store
writer and metrics. Ray Serve's proxy takes HTTP on ``host:port`` and spreads requests over the
replicas; each asks for ``replica_cpus`` (fractions share a core), so two replicas fit a 2-core
machine with room for the proxy. Replicas on one node share its serving store (SQLite, WAL) and
its Prometheus directory, so ``/metrics`` merges them; on a cluster of several nodes each node
keeps its own (the store path must be writable there).
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Mapping
from typing import Any

from mlwright.distributed.ray import connect

APP_NAME = "mlwright"


def deployment(spec: Mapping[str, str], *, replicas: int, replica_cpus: float, threads: int) -> Any:
    """The Ray Serve application: ``replicas`` copies of the server app built from ``spec``."""
    from ray import serve

    frozen = dict(spec)
    if os.environ.get("MLWRIGHT_ADMIN_TOKEN"):
        frozen["MLWRIGHT_ADMIN_TOKEN"] = os.environ["MLWRIGHT_ADMIN_TOKEN"]
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
        prefix="mlwright-metrics-"
    )

    def build() -> Any:  # runs in each replica
        from mlwright.serve.app import app_from_spec

        os.makedirs(metrics_dir, exist_ok=True)
        return app_from_spec(frozen)

    env = {
        "OMP_WAIT_POLICY": "PASSIVE",
        "OMP_NUM_THREADS": str(threads),
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
    }
    replica = serve.deployment(
        name=APP_NAME,
        num_replicas=replicas,
        ray_actor_options={"num_cpus": replica_cpus, "runtime_env": {"env_vars": env}},
        max_ongoing_requests=64,
    )(serve.ingress(build)())
    return replica.bind()


def serve_on_ray(
    spec: Mapping[str, str],
    *,
    host: str,
    port: int,
    replicas: int,
    replica_cpus: float,
    address: str | None,
    threads: int,
    console: Any,
) -> None:
    """Deploy and serve until interrupted (Ctrl-C or SIGTERM); then take the application down,
    and the Ray runtime too when this command started it."""
    ray, owned = connect(address)
    stop = threading.Event()
    try:
        from ray import serve

        serve.start(http_options={"host": host, "port": port})
        serve.run(
            deployment(spec, replicas=replicas, replica_cpus=replica_cpus, threads=threads),
            name=APP_NAME,
            route_prefix="/",
            blocking=False,
        )
        console.print(
            f"ray serve: {replicas} replica(s) of {replica_cpus:g} CPU each are up; "
            "Ctrl-C stops them",
            highlight=False,
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    finally:
        try:
            from ray import serve

            serve.shutdown()  # type: ignore[no-untyped-call]
        finally:
            if owned:
                ray.shutdown()


__all__ = ["deployment", "serve_on_ray"]
