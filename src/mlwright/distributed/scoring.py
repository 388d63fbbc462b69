"""Scoring Parquet files on a Ray cluster (``mlwright predict --backend ray``): Ray Data hands the
files to a pool of scoring actors, each of which loads the model once and streams its files batch
by batch (:func:`mlwright.package.streaming.score_file`), so every worker's memory is bounded by
the batch and every output partition appears whole or not at all.

The actors load the model by the reference the driver resolved (a registry ``NAME/VERSION``, or
a package folder every node can read) and check it as any load does; the files must be readable
at the same paths from every node (a shared file system or object store mount).
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from typing import Any

from mlwright.distributed.ray import connect
from mlwright.package.streaming import BATCH_ROWS, Partition, Scored


class _Scorer:
    """One scoring actor: the model, loaded once, and the files it is handed."""

    def __init__(self, model: str, batch_rows: int, interval: float | None, threads: int) -> None:
        from mlwright.package.loading import load, tabular
        from mlwright.track.registry import resolve

        self.model = tabular(load(model, resolve=resolve, threads=threads), "batch scoring")
        self.batch_rows, self.interval = batch_rows, interval

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from pathlib import Path

        import ray

        from mlwright.package.streaming import score_file

        part = Partition(Path(row["source"]), Path(row["target"]))
        done = score_file(self.model, part, batch_rows=self.batch_rows, interval=self.interval)
        return {**done, "node": ray.get_runtime_context().get_node_id()}


def score_on_ray(
    model: str,
    parts: list[Partition],
    *,
    address: str | None = None,
    workers: int | None = None,
    batch_rows: int = BATCH_ROWS,
    interval: float | None = None,
    threads: int = 1,
) -> Scored:
    """Score ``parts`` on Ray: ``workers`` actors (default: the cluster's CPUs / ``threads``,
    at most one per file), each on ``threads`` CPUs."""
    ray, started_here = connect(address)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():  # Ray Data's own deprecations, about its own settings
            warnings.simplefilter("ignore", DeprecationWarning)
            records = _run(ray, model, parts, workers, batch_rows, interval, threads)
    finally:
        if started_here:
            with contextlib.suppress(Exception):
                ray.shutdown()
    order = {str(p.source): i for i, p in enumerate(parts)}
    keys = ("source", "target", "rows", "peak_mib", "node")
    files = [{k: r.get(k) for k in keys} for r in sorted(records, key=lambda r: order[r["source"]])]
    return Scored(files, time.perf_counter() - started)


def _run(
    ray: Any,
    model: str,
    parts: list[Partition],
    workers: int | None,
    batch_rows: int,
    interval: float | None,
    threads: int,
) -> list[dict[str, Any]]:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the command prints each file as it is done
    for name in list(logging.root.manager.loggerDict):  # and Ray Data's plan, at INFO, is noise
        if name.startswith("ray.data"):
            logging.getLogger(name).setLevel(logging.WARNING)
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    pool = max(1, min(len(parts), workers or int(cpus // threads) or 1))
    items = [{"source": str(p.source), "target": str(p.target)} for p in parts]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    records: list[dict[str, Any]] = dataset.map(
        _Scorer,
        fn_constructor_kwargs={
            "model": model,
            "batch_rows": batch_rows,
            "interval": interval,
            "threads": threads,
        },
        compute=ray.data.ActorPoolStrategy(size=pool),
        num_cpus=threads,
    ).take_all()
    return records
