"""Every row of a file set, a row group at a time: the pass that learns the encoders from all
the rows, and the data-parallel XGBoost fit, in this process or on Ray Train's workers.

Each worker reads its own row groups (:func:`mlwright.data.files.share_fragments`) batch by
batch, keeps the rows with a usable target that are not held out, enforces the schema, encodes
them with the encoder fitted on all rows, and hands them to an ``xgboost.QuantileDMatrix``
through a data iterator: what a worker holds is its rows' histogram bins (one byte a value),
never its raw rows. On Ray, Ray Train's XGBoost backend joins the workers into one XGBoost
collective, so they grow the same trees from histograms summed over every row; a clock and a
stop request end the boosting on every worker at the same round (an all-reduce each round).
The model comes back to the driver through Ray's object store: nothing is written to shared
storage, and the files must be readable at the same paths on every node.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.files import Fragment, read_fragment, take_rows, within
from mlwright.data.rows import infinite_as_missing, usable_target
from mlwright.data.schema import TableSchema
from mlwright.data.tasks import Task
from mlwright.errors import ConfigError, DataError, MlwrightError, SchemaViolationError, TargetError
from mlwright.package.model import encode_target
from mlwright.package.streaming import peak_mib
from mlwright.stopping import stop_requested
from mlwright.train.models.features import ColumnStats, FeatureEncoder

BATCH_ROWS = 65_536


@dataclass(frozen=True)
class RowRules:
    """How a worker turns a batch of a file into training rows."""

    schema: TableSchema
    task: Task
    classes: tuple[Any, ...] | None
    exclude: np.ndarray  # sorted global positions held out (test and early-stopping rows)
    batch_rows: int = BATCH_ROWS

    @property
    def read(self) -> list[str]:
        return [c.name for c in self.schema.columns if c.role in ("feature", "target")]


@dataclass
class Batch:
    features: pd.DataFrame
    y: np.ndarray
    raw: pd.DataFrame  # the batch's used columns as read (for the digest)


def batches(fragment: Fragment, rules: RowRules, *, held: bool = False) -> Iterator[Batch]:
    """The fragment's training rows a batch at a time (with ``held``, every labelled row,
    the held-out ones included); a value the schema refuses is named with its file and row."""
    target = rules.schema.target
    assert target is not None
    for _, frame in read_fragment(fragment, rules.read, rules.batch_rows):
        keep = usable_target(frame[target], rules.task).copy()
        if not held:
            out = within(fragment, rules.exclude)
            if len(out):
                keep &= ~np.isin(frame.index.to_numpy(), out)
        rows = frame.loc[keep].copy()
        # rows are named by their row in the file, as a reader of the file counts them
        rows.index = rows.index - fragment.start + fragment.file_row
        infinite_as_missing(rows, rules.schema)
        where = f"{fragment.path} (rows counted from 0)"
        try:
            features = rules.schema.enforce(rows)
            y = encode_target(rows[target], rules.task, rules.classes)
        except SchemaViolationError as exc:
            raise DataError(f"{where}: {exc.message}", fix=exc.fix) from None
        except TargetError as exc:
            raise DataError(
                f"{where}: {exc.message}",
                fix="these classes were not in the sample the search saw: pass a larger "
                "--sample-rows, or remove those rows",
            ) from None
        yield Batch(features, y, frame)


# --- the pass over every row -------------------------------------------------------------------


def scan_fragment(fragment: Fragment, rules: RowRules) -> dict[str, Any]:
    """What the encoders need from one fragment's training rows, its labelled rows and classes,
    and a digest of every row it holds."""
    started = time.perf_counter()
    stats = {c.name: ColumnStats(c.kind) for c in rules.schema.features}
    digest = hashlib.sha256()
    rows, held, counts = 0, 0, np.zeros(max(len(rules.classes or ()), 1), dtype=np.int64)
    out = within(fragment, rules.exclude)
    for batch in batches(fragment, rules, held=True):
        hashed = pd.util.hash_pandas_object(batch.raw, index=False).to_numpy()
        digest.update(hashed.tobytes())
        file_rows = batch.features.index.to_numpy() - fragment.file_row + fragment.start
        train = ~np.isin(file_rows, out) if len(out) else np.ones(len(file_rows), dtype=bool)
        features = batch.features.loc[train]
        for name, column in stats.items():
            column.add(features[name])
        rows += int(train.sum())
        held += int((~train).sum())
        if rules.task != "regression":
            counts += np.bincount(batch.y[train], minlength=len(counts))
    return {
        "start": fragment.start,
        "stats": stats,
        "rows": rows,
        "held": held,
        "classes": counts.tolist() if rules.task != "regression" else None,
        "digest": digest.hexdigest(),
        "seconds": time.perf_counter() - started,
        "peak_mib": peak_mib(),
    }


def sample_fragment(fragment: Fragment, positions: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """The rows at ``positions`` that fall in the fragment."""
    return take_rows(fragment, within(fragment, positions), columns)


def map_fragments(
    fn: Callable[..., Any],
    fragments: list[Fragment] | tuple[Fragment, ...],
    *args: Any,
    ray: Any = None,
    on_done: Callable[[int, int], None] | None = None,
    on_result: Callable[[Any], None] | None = None,
) -> list[Any]:
    """``fn(fragment, *args)`` for every fragment: here one after another, or as Ray tasks (one
    CPU each) when ``ray`` is given. The results in the fragments' order; with ``on_result``,
    each is handed to it as it arrives instead (and none is kept)."""
    results: dict[int, Any] = {}

    def arrived(i: int, result: Any, done: int) -> None:
        if on_result is not None:
            on_result(result)
        else:
            results[i] = result
        if on_done is not None:
            on_done(done, len(fragments))

    if ray is None:
        for i, fragment in enumerate(fragments):
            arrived(i, fn(fragment, *args), i + 1)
        return [results[i] for i in sorted(results)]
    task = ray.remote(num_cpus=1, max_retries=0)(fn)
    shared = [ray.put(a) for a in args]
    refs = {task.remote(fragment, *shared): i for i, fragment in enumerate(fragments)}
    pending, done = list(refs), 0
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        try:
            result = ray.get(ready[0])
        except ray.exceptions.RayTaskError as exc:
            for ref in pending:
                ray.cancel(ref)
            raise _unwrapped(exc) from None
        done += 1
        arrived(refs[ready[0]], result, done)
    return [results[i] for i in sorted(results)]


class ScanTotal:
    """The pass over every row, merged as each fragment's scan arrives (a driver never holds
    more than one fragment's statistics besides the total): the columns' statistics, the rows
    and classes, each fragment's training rows, and a digest of the data in position order."""

    def __init__(self) -> None:
        self.stats: dict[str, ColumnStats] | None = None
        self.rows = self.held = 0
        self.classes: np.ndarray | None = None
        self.digests: dict[int, str] = {}
        self.fragment_rows: dict[int, int] = {}  # training rows, by the fragment's start
        self.peak_mib = 0.0

    def add(self, scan: dict[str, Any]) -> None:
        if self.stats is None:
            self.stats = scan["stats"]
        else:
            for name, column in scan["stats"].items():
                self.stats[name].merge(column)
        self.rows += scan["rows"]
        self.held += scan["held"]
        if scan["classes"] is not None:
            counts = np.asarray(scan["classes"], dtype=np.int64)
            self.classes = counts if self.classes is None else self.classes + counts
        self.digests[scan["start"]] = scan["digest"]
        self.fragment_rows[scan["start"]] = scan["rows"]
        self.peak_mib = max(self.peak_mib, scan["peak_mib"] or 0.0)

    @property
    def digest(self) -> str:
        total = hashlib.sha256()
        for start in sorted(self.digests):
            total.update(bytes.fromhex(self.digests[start]))
        return f"files:v1:{total.hexdigest()}"


# --- the data-parallel fit ----------------------------------------------------------------------


@dataclass
class FitJob:
    """One worker's part of the data-parallel fit: its row groups and what to do with them."""

    shard: list[Fragment]
    rules: RowRules
    encoder: dict[str, Any]  # the encoder's state, fitted on every training row
    params: dict[str, Any]  # XGBoost's training parameters
    rounds: int
    early_stopping: int | None
    valid: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None  # encoded X, y, weights
    class_weights: list[float] | None
    deadline: float | None  # time.time() after which boosting stops (every worker together)
    feature_types: list[str]  # XGBoost's kind of each encoded column (c: category, q: number)


def fit_shard(job: FitJob) -> dict[str, Any]:
    """Build this worker's quantised matrix from its row groups and boost. In a Ray Train
    worker the XGBoost collective is already joined, so every worker grows the same trees."""
    import xgboost as xgb

    started = time.perf_counter()
    encoder = FeatureEncoder.from_state(job.encoder)
    iterator = _ShardIterator(job, encoder)
    max_bin = int(job.params.get("max_bin", 256))
    threads = int(job.params.get("nthread", 1))
    train = xgb.QuantileDMatrix(iterator, max_bin=max_bin, enable_categorical=True, nthread=threads)
    evals = []
    if job.valid is not None:
        X, y, w = job.valid
        valid = xgb.QuantileDMatrix(
            X,
            label=y,
            weight=w,
            ref=train,
            max_bin=max_bin,
            enable_categorical=True,
            feature_types=job.feature_types,
        )
        evals = [(valid, "valid")]
    built = time.perf_counter()
    until = _until(job.deadline)
    booster = xgb.train(
        job.params,
        train,
        job.rounds,
        evals=evals,
        early_stopping_rounds=job.early_stopping if evals else None,
        callbacks=[until],
        verbose_eval=False,
    )
    boosted = int(booster.num_boosted_rounds())
    best = getattr(booster, "best_iteration", None)
    rounds = int(best) + 1 if best is not None and evals else boosted
    if rounds < boosted:
        booster = booster[:rounds]
    return {
        "booster": bytes(booster.save_raw("ubj")),
        "rounds": rounds,
        "boosted": boosted,
        "stopped_by_clock": until.fired,
        "rows": int(train.num_row()),
        "row_groups": len(job.shard),
        "build_seconds": round(built - started, 3),
        "seconds": round(time.perf_counter() - started, 3),
        "peak_mib": peak_mib(),
    }


def fit_on_ray(
    ray: Any, jobs: list[FitJob], *, threads: int, on_step: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """The jobs as one Ray Train XGBoost run, one worker each (``threads`` CPUs apiece); each
    worker's record, in rank order, rank 0's with the model."""
    import ray.train
    from ray.train.xgboost import XGBoostTrainer

    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    if len(jobs) * threads > cpus:
        raise ConfigError(
            f"{len(jobs)} data-parallel worker(s) of {threads} thread(s) each need "
            f"{len(jobs) * threads} CPUs; the Ray cluster has {cpus:g}",
            fix="pass fewer --train-workers or --threads, or add nodes to the cluster",
        )
    inbox = ray.remote(num_cpus=0)(_Inbox).remote()
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("ray.train", "ray.data", "ray.tune")):
            logging.getLogger(name).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="mlwright-ray-train-") as storage:
        trainer = XGBoostTrainer(
            _ray_worker,
            train_loop_config={"jobs": ray.put(jobs), "inbox": inbox},
            scaling_config=ray.train.ScalingConfig(
                num_workers=len(jobs), resources_per_worker={"CPU": float(threads)}
            ),
            run_config=ray.train.RunConfig(
                storage_path=storage,
                name=f"mlwright-{uuid.uuid4().hex[:12]}",
                # a worker's error, or workers that cannot start, end the run (no retries)
                failure_config=ray.train.FailureConfig(max_failures=0, controller_failure_limit=0),
            ),
        )
        if on_step is not None:
            on_step(f"boosting on {len(jobs)} Ray Train worker(s)")
        try:
            with warnings.catch_warnings():  # Ray Train's notes about its own settings
                warnings.simplefilter("ignore")
                trainer.fit()
        except Exception as exc:
            records = ray.get(inbox.records.remote())
            failed = [r for r in records if "error" in r]
            if failed:
                raise DataError(failed[0]["error"], fix=failed[0]["fix"]) from None
            text = str(exc)
            if "died unexpectedly" in text or "health check failed" in text:
                raise MlwrightError(
                    "a Ray Train worker's process died during the data-parallel fit (most "
                    "often a memory limit or the kernel's OOM killer: a worker holds about "
                    "300 MiB, its reader's buffers, and 1 byte per value plus about 60 bytes "
                    "per row of its share)",
                    fix="pass more --train-workers (smaller shares), give the nodes more "
                    "memory, or see the worker's log in the Ray session's logs folder",
                ) from None
            raise MlwrightError(
                f"the data-parallel fit failed on Ray: {type(exc).__name__}: {text[:600]}",
                fix="see the workers' logs in the Ray session's logs folder",
            ) from None
        records = ray.get(inbox.records.remote())
    return sorted(records, key=lambda r: r["rank"])


class _Inbox:
    """Where Ray Train's workers leave their records (and rank 0 the model)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def put(self, record: dict[str, Any]) -> None:
        self.items.append(record)

    def records(self) -> list[dict[str, Any]]:
        return self.items


def _ray_worker(config: dict[str, Any]) -> None:
    import ray
    import ray.train

    context = ray.train.get_context()
    rank = context.get_world_rank()
    jobs = config["jobs"]
    job: FitJob = (ray.get(jobs) if isinstance(jobs, ray.ObjectRef) else jobs)[rank]
    try:
        record = fit_shard(job)
    except MlwrightError as exc:
        ray.get(config["inbox"].put.remote({"rank": rank, "error": exc.message, "fix": exc.fix}))
        raise
    if rank != 0:
        record["booster"] = None
    record.update(rank=rank, node=ray.get_runtime_context().get_node_id())
    ray.get(config["inbox"].put.remote(record))


class _ShardIterator:
    """The worker's training rows for XGBoost, encoded a batch at a time (XGBoost reads them
    twice: once to sketch the bins, once to fill them)."""

    def __new__(cls, job: FitJob, encoder: FeatureEncoder) -> Any:
        import xgboost as xgb

        class ShardIterator(xgb.DataIter):
            def __init__(self) -> None:
                self._batches: Iterator[Batch] | None = None
                self._fragment = 0
                super().__init__(release_data=True)

            def _next_batch(self) -> Batch | None:
                while True:
                    if self._batches is None:
                        if self._fragment >= len(job.shard):
                            return None
                        self._batches = batches(job.shard[self._fragment], job.rules)
                        self._fragment += 1
                    batch = next(self._batches, None)
                    if batch is None:
                        self._batches = None
                        continue
                    if len(batch.y):
                        return batch

            def next(self, input_data: Callable[..., None]) -> bool:
                batch = self._next_batch()
                if batch is None:
                    return False
                design = encoder.transform(batch.features, "tree")
                weights = None
                if job.class_weights is not None:
                    weights = np.asarray(job.class_weights, dtype="float64")[batch.y]
                types = job.feature_types
                input_data(data=design.X, label=batch.y, weight=weights, feature_types=types)
                return True

            def reset(self) -> None:
                self._batches, self._fragment = None, 0

        return ShardIterator()


def _until(deadline: float | None) -> Any:  # an object with ``fired`` after training
    """Stops boosting at ``deadline`` or on a stop request, on every worker at the same round."""
    import xgboost as xgb
    from xgboost import collective

    class Until(xgb.callback.TrainingCallback):
        fired = False

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            late = deadline is not None and time.time() >= deadline
            flag = np.array([1.0 if epoch > 0 and (late or stop_requested()) else 0.0])
            if collective.is_distributed():
                flag = collective.allreduce(flag, collective.Op.MAX)
            self.fired = bool(flag[0] > 0)
            return self.fired

    return Until()


def _unwrapped(exc: Any) -> BaseException:
    """A Ray task's own error (an mlwright error keeps its message and fix)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, MlwrightError):
        return cause
    return MlwrightError(f"a Ray task failed: {exc}", fix="see the Ray session's logs")
