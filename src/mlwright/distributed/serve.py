"""``mlwright serve --backend ray-serve``: the same server app, as replicas on Ray Serve.

Each replica builds the app in its own process from the same spec a uvicorn worker reads, with
the factory it is given (:func:`mlwright.serve.app.app_from_spec`): same routes, validation,
deployment gate, store writer and metrics. Ray Serve's proxy takes HTTP on ``host:port`` and
spreads requests over the replicas; each asks for ``replica_cpus`` (fractions share a core), so
two replicas fit a 2-core machine with room for the proxy. Replicas on one node share its
serving store (SQLite, WAL) and its Prometheus directory, so ``/metrics`` merges them; on a
cluster of several nodes each node keeps its own store at the same path. The packages travel
through Ray's object store, so a replica on a node without the package folder serves an
unpacked copy (checksums verified).
"""

from __future__ import annotations

import io
import json
import os
import signal
import tarfile
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlwright.distributed.ray import connect

APP_NAME = "mlwright"
AppFactory = Callable[[Mapping[str, str]], Any]  # a server spec → the ASGI app a replica serves


def deployment(
    spec: Mapping[str, str],
    *,
    app_factory: AppFactory,
    replicas: int,
    replica_cpus: float,
    threads: int,
) -> Any:
    """The Ray Serve application: ``replicas`` copies of the server app that ``app_factory``
    (:func:`mlwright.serve.app.app_from_spec`) builds from ``spec`` in each replica."""
    import ray
    from ray import serve

    frozen = dict(spec)
    if os.environ.get("MLWRIGHT_ADMIN_TOKEN"):
        frozen["MLWRIGHT_ADMIN_TOKEN"] = os.environ["MLWRIGHT_ADMIN_TOKEN"]
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
        prefix="mlwright-metrics-"
    )
    # the packages travel with the deployment: a replica on another node unpacks its own copy
    # (and verifies its checksums when it loads it)
    shipped = {path: ray.put(pack(path)) for path in package_paths(frozen)}

    def build() -> Any:  # runs in each replica
        os.makedirs(metrics_dir, exist_ok=True)
        local = dict(frozen)
        for path, packed in shipped.items():
            if not Path(path).is_dir():
                local = relocate(local, path, unpack(ray.get(packed), Path(path).name))
        store = json.loads(local.get("MLWRIGHT_SERVE_SETTINGS", "{}")).get("store")
        if store:
            Path(store).parent.mkdir(parents=True, exist_ok=True)
        return app_factory(local)

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


def package_paths(spec: Mapping[str, str]) -> list[str]:
    """The package folders a server spec names: the model's and its challengers'."""
    paths = [spec["MLWRIGHT_SERVE_PACKAGE"]]
    if spec.get("MLWRIGHT_SERVE_EXPERIMENT"):
        challengers = json.loads(spec["MLWRIGHT_SERVE_EXPERIMENT"])["challengers"]
        paths += [c["path"] for c in challengers.values()]
    return paths


def pack(folder: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def unpack(packed: bytes, name: str) -> str:
    """A package's copy on this node, in a new temporary folder; its path."""
    target = Path(tempfile.mkdtemp(prefix="mlwright-package-")) / name
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
            tar.extractall(target, filter="data")
        else:
            tar.extractall(target)  # our own archive, made just before
    return str(target)


def relocate(spec: dict[str, str], old: str, new: str) -> dict[str, str]:
    """``spec`` with the package folder ``old`` now at ``new``."""
    out = dict(spec)
    if out["MLWRIGHT_SERVE_PACKAGE"] == old:
        out["MLWRIGHT_SERVE_PACKAGE"] = new
    if out.get("MLWRIGHT_SERVE_EXPERIMENT"):
        experiment = json.loads(out["MLWRIGHT_SERVE_EXPERIMENT"])
        for challenger in experiment["challengers"].values():
            if challenger["path"] == old:
                challenger["path"] = new
        out["MLWRIGHT_SERVE_EXPERIMENT"] = json.dumps(experiment)
    return out


def serve_on_ray(
    spec: Mapping[str, str],
    *,
    app_factory: AppFactory,
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
            deployment(
                spec,
                app_factory=app_factory,
                replicas=replicas,
                replica_cpus=replica_cpus,
                threads=threads,
            ),
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
