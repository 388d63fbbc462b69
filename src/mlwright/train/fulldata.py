"""Training on a file set bigger than one machine (``mlwright train DIR_OR_GLOB``).

1. **Sample.** The files' footers give every row a global position; a seeded sample of
   ``sample_rows`` positions is read (a row group at a time, as Ray tasks on Ray). Profiling,
   the plan, the leakage checks, the search, the test split and the out-of-fold evidence all
   run on the sample, as for any table: it is what fits one worker.
2. **Every row, once.** A pass over every row group (Ray tasks on Ray) learns the encoders from
   all the training rows: every category's count (the full vocabulary), every number's mean and
   spread, every date's range, every word's documents. It also counts the classes, checks every
   value against the schema (a bad one is named with its file and row) and digests the data.
3. **The data-parallel fit.** The chosen XGBoost configuration is boosted over every row but
   the held-out ones, the row groups shared among Ray Train workers
   (:mod:`mlwright.distributed.datafit`), with early stopping on rows of the sample kept out
   of it. The test split, also kept out, scores it; the decision threshold, calibration and
   intervals are learned again from its predictions on the early-stopping rows.

The rest (golden examples, the package, tracking, the report) is the runner's, as for any
table. The recipe's ``scale`` records what ran where, on how many rows.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.config import TrainOptions
from mlwright.data.files import FileSet, open_file_set, seeded_positions, share_fragments, within
from mlwright.data.io import SourceInfo
from mlwright.data.schema import TableSchema
from mlwright.data.tasks import Task
from mlwright.distributed.datafit import (
    FitJob,
    RowRules,
    ScanTotal,
    fit_on_ray,
    fit_shard,
    map_fragments,
    sample_fragment,
    scan_fragment,
)
from mlwright.errors import ConfigError, DataError
from mlwright.package.model import Model
from mlwright.train.models import FitContext
from mlwright.train.models.features import FeatureEncoder, as_float
from mlwright.train.models.xgboost import XGBoostFamily

SAMPLE_ROWS = 200_000
EARLY_STOPPING_ROWS = 50_000  # at most, of the sample's training rows
EARLY_STOPPING_SHARE = 0.1
SAMPLE_SHARE = 0.5  # of a time budget: the sample's run (profile, search, evidence); the rest
# is the pass over every row and the data-parallel fit
PARALLEL_FAMILIES = ("xgboost",)
_WORKER_KEYS = ("rank", "node", "rows", "row_groups", "peak_mib", "build_seconds", "seconds")

Event = Callable[[str, Any], None]


@dataclass
class FileTraining:
    """A file set's training, as the runner sees it: where the sample came from, the clock,
    and the data-parallel fit of the final model."""

    files: FileSet
    positions: np.ndarray  # each sample row's global position, in the sample's order
    options: TrainOptions
    emit: Event
    started: float  # time.monotonic() when the run began (the sample's reading included)
    wall_started: float  # the same instant as time.time(), for workers on other machines
    ray: Any = None
    address: str | None = None
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> SourceInfo:
        total = sum(Path(f).stat().st_size for f in self.files.files)
        return SourceInfo(kind="files", location=self.files.source, n_bytes=total)

    def plan_text(self) -> str:
        """The plan's account of what runs on the sample and what on every row, and where."""
        files = self.files
        if self.ray is None:
            where = "here, a row group at a time"
        else:
            threads = self.options.threads or 1
            workers = self._workers(len(files.fragments), threads)
            where = f"on Ray Train, {workers} worker(s) of {threads} thread(s), row groups shared"
        return (
            f"{files.rows:,} rows in {len(files.files)} Parquet file(s), {len(files.fragments)} "
            f"row group(s); profile, plan, search and test split on a seeded sample of "
            f"{len(self.positions):,} rows; the encoders learn from every training row "
            f"({'Ray tasks' if self.ray is not None else 'here'}) and the final XGBoost model "
            f"boosts over every row but the held-out ones ({where})"
        )

    def sample_budget(self, budget: float | None) -> float | None:
        """The sample's share of the run's time budget."""
        return None if budget is None else budget * SAMPLE_SHARE

    def early_rows(self, train_pos: np.ndarray, seed: int) -> np.ndarray:
        """The sample's training rows kept out of the data-parallel fit for its early
        stopping (and post-processing)."""
        size = min(EARLY_STOPPING_ROWS, max(1, round(EARLY_STOPPING_SHARE * len(train_pos))))
        rng = np.random.default_rng(seed + 2)
        return np.sort(rng.choice(train_pos, size=min(size, len(train_pos)), replace=False))

    def fit(
        self,
        *,
        schema: TableSchema,
        task: Task,
        classes: tuple[Any, ...] | None,
        params: dict[str, Any],
        ctx: FitContext,
        features: pd.DataFrame,
        y: np.ndarray,
        kept: np.ndarray,
        train_pos: np.ndarray,
        held_pos: np.ndarray,
        early_pos: np.ndarray,
        balanced: bool,
    ) -> Model:
        """The final model: the encoders learned from every training row, then ``params``
        boosted data-parallel over every row but the held-out ones (``held_pos``: positions
        in the prepared sample, whose row ``i`` is the input sample's row ``kept[i]``)."""
        options, files = self.options, self.files
        rules = RowRules(schema, task, classes, np.sort(self.positions[kept[held_pos]]))
        scan, scanned = self._scan(rules)
        encoder = FeatureEncoder(options.features).fit_stats(
            scan.stats or {}, list(schema.features), _medians(schema, features.iloc[train_pos])
        )
        weights = None
        if balanced and scan.classes is not None:
            counts = np.asarray(scan.classes, dtype="float64")
            weights = (counts.sum() / (len(counts) * np.clip(counts, 1, None))).tolist()
        family = XGBoostFamily(params, ctx)
        early = encoder.transform(features.iloc[early_pos], "tree")
        # on Ray, each worker boosts with --threads threads (default 1: more workers at once)
        threads = ctx.threads if self.ray is None else (options.threads or 1)
        job = FitJob(
            shard=[],
            rules=rules,
            encoder=encoder.state(),
            params={**family.train_params(), "nthread": threads},
            rounds=int(params["max_rounds"]),
            early_stopping=int(params["early_stopping_rounds"]),
            valid=(
                early.X,
                y[early_pos],
                None if weights is None else np.asarray(weights)[y[early_pos]],
            ),
            class_weights=weights,
            deadline=None
            if options.time_budget is None
            else self.wall_started + options.time_budget,
            feature_types=XGBoostFamily.feature_types(early),
        )
        shares = share_fragments(
            files.fragments, self._workers(len(files.fragments), threads), scan.fragment_rows
        )
        records, fitted = self._boost([replace(job, shard=share) for share in shares], scan.rows)
        rounds = int(records[0]["rounds"])
        family.booster_ = _booster(records[0]["booster"], ctx.threads)
        family.fitted_ = {"rounds": rounds}
        family.params = {**params, "rounds": rounds}
        self.record = self._describe(scan, scanned, records, fitted, threads, held_pos, early_pos)
        fit = self.record["fit"]
        self.emit(
            "decision",
            f"the final XGBoost model was boosted over {fit['rows']:,} rows on {fit['workers']} "
            f"worker(s) ({'here' if self.ray is None else 'Ray Train'}), {rounds} rounds, "
            f"early-stopped on {len(early_pos):,} rows kept out of it; its encoders were "
            f"learned from all {scan.rows:,} training rows",
        )
        return Model(name="", task=task, schema=schema, encoder=encoder, family=family)

    def _scan(self, rules: RowRules) -> tuple[ScanTotal, float]:
        """The pass over every row group (Ray tasks on Ray), merged as each arrives; and its
        seconds."""
        files, emit = self.files, self.emit
        where = "here" if self.ray is None else f"on Ray ({len(files.fragments)} tasks)"
        emit("step", f"learning the encoders from all {files.rows:,} rows {where}")
        started = time.perf_counter()
        scan = ScanTotal()
        map_fragments(
            scan_fragment,
            files.fragments,
            rules,
            ray=self.ray,
            on_done=_every_tenth(lambda done, total: emit("step", f"{done}/{total} row groups")),
            on_result=scan.add,
        )
        if not scan.rows or scan.stats is None:
            raise DataError(
                f"{files.source}: no row with a usable target value is left to train on",
                fix=f"check the target column {rules.schema.target!r}",
            )
        return scan, time.perf_counter() - started

    def _boost(self, jobs: list[FitJob], rows: int) -> tuple[list[dict[str, Any]], float]:
        """Every worker's record (rank 0's with the model), and the fit's seconds."""
        started = time.perf_counter()
        if self.ray is None:
            self.emit("step", f"boosting over {rows:,} rows here")
            records = [{**fit_shard(jobs[0]), "rank": 0, "node": "driver"}]
        else:
            records = fit_on_ray(
                self.ray,
                jobs,
                threads=int(jobs[0].params["nthread"]),
                on_step=lambda text: self.emit("step", text),
            )
        return records, time.perf_counter() - started

    def _describe(
        self,
        scan: ScanTotal,
        scanned: float,
        records: list[dict[str, Any]],
        fitted: float,
        threads: int,
        held_pos: np.ndarray,
        early_pos: np.ndarray,
    ) -> dict[str, Any]:
        """The recipe's ``scale``: each step with its rows, its time and where it ran."""
        tasks = "driver" if self.ray is None else "ray tasks"
        rows = sum(int(r["rows"]) for r in records)
        return {
            "files": self.files.describe(),
            "digest": scan.digest,
            "sample": {
                "rows": len(self.positions),
                "seed": self.options.seed,
                "used_for": "profile, plan, leakage checks, search, test split, evidence",
                "where": tasks,
            },
            "held_out": {
                "test": int(len(held_pos) - len(early_pos)),
                "early_stopping": len(early_pos),
            },
            "encoders": {
                "rows": int(scan.rows),
                "where": tasks,
                "tasks": len(self.files.fragments),
                "seconds": round(scanned, 3),
                "peak_mib": scan.peak_mib or None,
            },
            "fit": {
                "library": "xgboost",
                "where": "driver" if self.ray is None else "ray train",
                "address": self.address,
                "workers": len(records),
                "threads": threads,
                "rows": rows,
                "rounds": int(records[0]["rounds"]),
                "stopped_by_clock": bool(records[0]["stopped_by_clock"]),
                "seconds": round(fitted, 3),
                "rows_per_second": round(rows / fitted, 1) if fitted > 0 else None,
                "per_worker": [{k: r.get(k) for k in _WORKER_KEYS} for r in records],
            },
        }

    def _workers(self, fragments: int, threads: int) -> int:
        wanted = self.options.train_workers
        if self.ray is None:
            return 1
        if wanted is None:
            cpus = float(self.ray.cluster_resources().get("CPU", 1.0))
            wanted = max(1, int(cpus // threads))
        return max(1, min(wanted, fragments))


def train_files(
    data: str | Path,
    options: TrainOptions,
    *,
    on_event: Event | None = None,
    verbose: bool = False,
    default_out: Path | None = None,
) -> Model:
    """Train on the Parquet files of ``data`` (a directory or a glob): see the module."""
    from mlwright.distributed.ray import connect
    from mlwright.train.runner import run_training

    started, wall = time.monotonic(), time.time()
    emit = on_event or (lambda kind, payload: None)
    options = _parallel_options(options)
    files = open_file_set(data)
    if not files.rows:
        raise DataError(f"{data}: the Parquet files hold no rows", fix="check the files")
    if options.target not in files.columns:
        raise ConfigError(
            f"target column {options.target!r} is not in {data}",
            fix=f"use one of {', '.join(files.columns[:20])}",
        )
    ray, started_here = (None, False)
    if options.backend == "ray":
        emit("step", "connecting to Ray")
        ray, started_here = connect(options.ray_address)
    try:
        size = options.sample_rows or SAMPLE_ROWS
        positions = seeded_positions(files.rows, size, options.seed)
        emit(
            "step",
            f"sampling {len(positions):,} of {files.rows:,} rows from {len(files.files)} file(s)",
        )
        wanted = [f for f in files.fragments if len(within(f, positions))]
        parts = map_fragments(sample_fragment, wanted, positions, list(files.columns), ray=ray)
        sample = pd.concat(parts).sort_index()
        scale = FileTraining(
            files,
            sample.index.to_numpy(dtype="int64"),
            options,
            emit,
            started,
            wall,
            ray=ray,
            address=options.ray_address or ("local" if ray is not None else None),
        )
        return run_training(
            sample.reset_index(drop=True),
            options,
            on_event=on_event,
            verbose=verbose,
            default_out=default_out,
            scale=scale,
        )
    finally:
        if started_here and ray is not None:
            with contextlib.suppress(Exception):
                ray.shutdown()


def _medians(schema: TableSchema, rows: pd.DataFrame) -> dict[str, float]:
    """The numeric features' medians on the sample's training rows (only the dense view reads
    them, and XGBoost sees the tree view: a sample's median does)."""
    medians = {}
    for col in schema.features:
        if col.kind in ("numeric", "integer", "boolean"):
            values = as_float(rows[col.name])
            medians[col.name] = float(np.nanmedian(values)) if (~np.isnan(values)).any() else 0.0
    return medians


def _booster(raw: bytes, threads: int) -> Any:
    """Rank 0's model, loaded here to predict with ``threads`` threads."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    booster.set_param({"nthread": threads})
    return booster


def _every_tenth(report: Callable[[int, int], None]) -> Callable[[int, int], None]:
    """``report`` when a tenth more of the work is done (and at the end), not on every item."""
    shown = [-1]

    def on_done(done: int, total: int) -> None:
        tenth = 10 * done // max(total, 1)
        if tenth != shown[0] and (tenth > shown[0] or done == total):
            shown[0] = tenth
            report(done, total)

    return on_done


def _parallel_options(options: TrainOptions) -> TrainOptions:
    """The options with the families narrowed to those that train data-parallel."""
    asked = options.families
    if asked is not None:
        other = [f for f in asked if f not in PARALLEL_FAMILIES]
        if other:
            raise ConfigError(
                f"{', '.join(other)} cannot train data-parallel over a file set",
                fix=f"use --families {','.join(PARALLEL_FAMILIES)} (or leave --families out), "
                "or train on one file",
            )
    unsupported = [
        name
        for name, value in (
            ("latency_budget_ms", options.latency_budget_ms),
            ("max_model_mb", options.max_model_mb),
            ("group_col", options.group_col),
            ("time_col", options.time_col),
        )
        if value is not None
    ]
    if unsupported:
        raise ConfigError(
            f"{', '.join(unsupported)} is not supported when training on a file set",
            fix="leave it out, or train on one file",
        )
    return options.model_copy(update={"families": PARALLEL_FAMILIES})
