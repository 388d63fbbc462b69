"""The Ray backend: each fold of each trial is a Ray task; the search stays in this process.

The searched rows go into Ray's object store once (``ray.put``); each worker process reads them
once and keeps them, with the fold designs it encoded, for as long as the search lasts. A task
asks for ``threads`` CPUs, so a cluster runs as many folds at once as its CPUs allow. The search
(order, proposals, pruning, budget) and all tracking stay in the driver: workers never reach the
MLflow store. Before the search, every node is asked for its library versions: a node whose
mlwright, Python or model libraries differ from the driver's would train different models, so
the run stops there with the difference named. The fold function and the function that lists
library versions come from whoever makes the executor; Ray sends them to the workers by name.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from mlwright.distributed.backend import EpochHook, FoldJob, FoldResult, LibraryVersions, RunFold
from mlwright.errors import ConfigError

# what must match between the driver and every worker for trials to mean the same thing
CHECKED = (
    "python",
    "mlwright",
    "numpy",
    "pandas",
    "scikit-learn",
    "lightgbm",
    "xgboost",
    "catboost",
    "torch",
)
CONNECT_SECONDS = 5.0
_DATA: dict[str, Any] = {}  # in a worker: the latest search's rows, by object id


def ray_module() -> Any:
    """``ray``, or a clear error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the Ray backend needs Ray, which is not installed",
            fix="pip install 'mlwright[ray]' (on the driver and on every node of the cluster)",
        ) from None
    return ray


def connect(address: str | None) -> tuple[Any, bool]:
    """``ray``, connected: to ``address``, to the runtime this process already joined, or to a
    new local one bound to 127.0.0.1. The flag says whether this call started the connection
    (and so should close it)."""
    ray = ray_module()
    if ray.is_initialized():
        return ray, False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    quiet: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,  # workers' output stays in Ray's logs, not on the console
        "logging_level": logging.WARNING,
    }
    try:
        if address is None:
            ray.init(address="local", _node_ip_address="127.0.0.1", **quiet)
        else:
            host = reachable(address)
            local = {"_node_ip_address": "127.0.0.1"} if host in ("127.0.0.1", "localhost") else {}
            ray.init(address=address, **local, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "a local Ray runtime" if address is None else f"the Ray cluster at {address}"
        raise ConfigError(
            f"could not connect to {where}: {exc}",
            fix="start the cluster (`ray start --head`) and pass its address with "
            "--ray-address HOST:PORT, or leave --ray-address out to start a local runtime",
        ) from None
    return ray, True


def reachable(address: str, timeout: float = CONNECT_SECONDS) -> str | None:
    """The host of a ``HOST:PORT`` (or ``ray://HOST:PORT``) address, once something answers
    there: Ray itself retries an unreachable address for minutes. Other forms (``auto``)
    are left to Ray."""
    import socket

    host, sep, port = address.split("://")[-1].rpartition(":")
    if not sep or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"nothing answers at the Ray address {address} ({exc.strerror or exc})",
            fix="start the cluster's head (`ray start --head --port PORT`) and pass its "
            "HOST:PORT, or leave --ray-address out to start a local Ray runtime",
        ) from None
    return host


class RayExecutor:
    """Runs fold jobs as Ray tasks, ``slots`` at a time."""

    def __init__(
        self,
        data: Any,
        run: RunFold,
        *,
        address: str | None,
        workers: int | None,
        threads: int,
        versions: LibraryVersions,
    ) -> None:
        self.ray, self._owned = connect(address)
        self.address = address
        self._run = run
        try:
            cpus = float(self.ray.cluster_resources().get("CPU", 0))
            if cpus < threads:
                raise ConfigError(
                    f"the Ray cluster has {cpus:g} CPU(s); a trial asks for {threads}",
                    fix=f"pass --threads {max(int(cpus), 1)} or fewer, or add nodes",
                )
            self.nodes = check_nodes(self.ray, versions)
            self.slots = workers or max(1, int(cpus // threads))
            self.cpus = cpus
            self._data = self.ray.put(data)  # once; every task gets a reference to it
            self._task = self.ray.remote(_fold_task).options(num_cpus=threads, max_retries=0)
        except BaseException:
            self.close()
            raise
        self._pending: dict[Any, FoldJob] = {}

    def submit(self, job: FoldJob, on_epoch: EpochHook | None = None) -> None:
        # the reference travels inside a list so that the worker gets it unresolved: it reads
        # the rows once per process, not once per task
        self._pending[self._task.remote([self._data], job, self._run)] = job

    def next(self) -> FoldResult:
        done, _ = self.ray.wait(list(self._pending), num_returns=1)
        job = self._pending.pop(done[0])
        try:
            result: FoldResult = self.ray.get(done[0])
        except self.ray.exceptions.RayError as exc:  # the worker died, or the cluster did
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            return FoldResult(job.number, job.fold, error=f"Ray: {type(exc).__name__}: {message}")
        return result

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "ray",
            "address": self.address or "local",
            "workers": self.slots,
            "cluster_cpus": self.cpus,
            "nodes": self.nodes,
            "ray": self.ray.__version__,
        }

    def close(self) -> None:
        for ref in list(getattr(self, "_pending", {})):
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        self._pending = {}
        if self._owned and self.ray.is_initialized():
            self.ray.shutdown()
            self._owned = False


def _fold_task(data: list[Any], job: FoldJob, run: RunFold) -> FoldResult:
    """In a worker: the rows (read once per process), then the fold."""
    import ray

    ref = data[0]
    key = ref.hex()
    if key not in _DATA:
        _DATA.clear()  # a new search: drop the previous one's rows and fold designs
        _DATA[key] = ray.get(ref)
    return run(_DATA[key], job)


def _versions(versions: LibraryVersions) -> dict[str, str]:
    import socket

    return {**versions(), "host": socket.gethostname()}


def check_nodes(ray: Any, versions: LibraryVersions) -> int:
    """Ask every live node with CPUs for its library versions (``versions``, called there);
    refuse a cluster where one differs from this process. Returns the number of nodes."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
    task = ray.remote(_versions)
    refs = [
        task.options(
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
        ).remote(versions)
        for n in nodes
    ]
    mine = versions()
    for node, theirs in zip(nodes, ray.get(refs), strict=True):
        differ = [
            f"{k} {theirs.get(k, 'missing')} (here {mine.get(k, 'missing')})"
            for k in CHECKED
            if theirs.get(k) != mine.get(k)
        ]
        if differ:
            raise ConfigError(
                f"node {node.get('NodeManagerAddress')} ({theirs.get('host')}) has other "
                f"versions than this machine: {', '.join(differ)}",
                fix="install the same mlwright and libraries on every node "
                "(pip install 'mlwright[ray]==VERSION'), so that trials train the same models",
            )
    return len(nodes)


__all__ = ["RayExecutor", "check_nodes", "connect", "ray_module"]
