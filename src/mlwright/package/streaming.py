"""Scoring Parquet data of any size: a directory (or a glob) of Parquet files read and scored in
batches, written out partitioned like the input.

Each input file becomes the output file at the same relative path, with one row per input row
in input order (``prediction``, ``proba_<class>`` or ``lower``/``upper``). A file is read
``batch_rows`` rows at a time, scored by the package's fast scorer and appended to a hidden
file beside its destination; only once every row of the file is scored, and the counts agree,
is it renamed into place. Memory is bounded by the batch, whatever the input's size; a failure
leaves the partitions already finished and nothing half-written. A value the model cannot take
is reported with its file and its row in that file.

:func:`score_file` is one file's work, so that a cluster can take the files in parallel
(:mod:`mlwright.distributed.scoring`); :func:`score_files` runs them here, one after another.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlwright.data.files import parquet_files
from mlwright.errors import ConfigError, DataError, DataSourceError, SchemaViolationError
from mlwright.package.model import Model

BATCH_ROWS = 65_536  # rows scored at once: the memory bound of a scoring process


@dataclass(frozen=True)
class Partition:
    """One input file and where its predictions go."""

    source: Path
    target: Path  # the output file, at the input's relative path


@dataclass
class Scored:
    """What scoring a set of files did: files and rows, and the seconds it took."""

    # source, target, rows, and the peak memory of the process that scored it (and its node)
    files: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(int(f["rows"]) for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "rows": self.rows, "seconds": round(self.seconds, 3)}


def partitions(source: str | Path, output: Path) -> list[Partition]:
    """The Parquet files of ``source`` (a directory, searched recursively, or a glob), in name
    order, each with its output path under ``output``."""
    text = str(source)
    root, files = parquet_files(source)
    output = Path(output)
    if output.suffix.lower() in (".csv", ".parquet", ".pq"):
        raise ConfigError(
            f"--output {output} names a file, but the input is {len(files)} file(s)",
            fix="name a directory: the predictions are written partitioned like the input",
        )
    found = [Partition(p, output / p.relative_to(root)) for p in files]
    base = root.resolve()
    if Path(text).is_dir():
        inside = output.resolve() == base or base in output.resolve().parents
    else:  # a glob: would it match what is written?
        inside = any(fnmatch.fnmatch(str(part.target), text) for part in found)
    if inside:
        raise ConfigError(
            f"--output {output} is inside the input ({text}): the next run would read the "
            "predictions as input",
            fix="write the predictions to a directory outside the input",
        )
    return found


def score_file(
    model: Model,
    part: Partition,
    *,
    batch_rows: int = BATCH_ROWS,
    interval: float | None = None,
) -> dict[str, Any]:
    """Score one file batch by batch into a hidden file, then rename it into place; returns
    the file's record (source, target, rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(part.source)
    except (OSError, pa.ArrowException) as exc:
        raise DataSourceError(
            f"{part.source} is not a readable Parquet file ({exc})",
            fix="remove or repair that file",
        ) from None
    expected = int(reader.metadata.num_rows)
    part.target.parent.mkdir(parents=True, exist_ok=True)
    hidden = part.target.with_name(f".{part.target.name}.{os.getpid()}.partial")
    written = 0
    writer = None
    try:
        for frame in _batches(reader, batch_rows):
            out = _score(model, frame, part.source, interval)
            table = pa.Table.from_pandas(out, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(hidden, table.schema)
            writer.write_table(table)
            written += len(out)
        if writer is None:  # a file without rows: its output has none either, with the columns
            empty = _no_predictions(model, interval)
            pq.write_table(pa.Table.from_pandas(empty, preserve_index=False), hidden)
        else:
            writer.close()
            writer = None
        if written != expected:
            raise DataError(
                f"{part.source}: {written:,} predictions for {expected:,} rows",
                fix="the file changed while it was read; score it again",
            )
        os.replace(hidden, part.target)
    except BaseException:
        if writer is not None:
            writer.close()
        hidden.unlink(missing_ok=True)
        raise
    return {
        "source": str(part.source),
        "target": str(part.target),
        "rows": written,
        "peak_mib": peak_mib(),
    }


def score_files(
    model: Model,
    parts: list[Partition],
    *,
    batch_rows: int = BATCH_ROWS,
    interval: float | None = None,
    on_file: Callable[[dict[str, Any]], None] | None = None,
) -> Scored:
    """Score every file here, one after another."""
    started = time.perf_counter()
    done = Scored()
    for part in parts:
        record = score_file(model, part, batch_rows=batch_rows, interval=interval)
        done.files.append(record)
        if on_file is not None:
            on_file(record)
    done.seconds = time.perf_counter() - started
    return done


def peak_mib() -> float | None:
    """This process's peak resident memory so far (``VmHWM``), in MiB; None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _batches(reader: Any, batch_rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows, ``batch_rows`` at a time, indexed by their row in the file."""
    start = 0
    for batch in reader.iter_batches(batch_size=batch_rows):
        frame = batch.to_pandas()
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield frame


def _score(model: Model, frame: pd.DataFrame, source: Path, interval: float | None) -> pd.DataFrame:
    try:
        features, _ = model.prepare(frame)
    except SchemaViolationError as exc:  # rows are counted from 0 in the file
        raise DataError(f"{source} (rows counted from 0): {exc.message}", fix=exc.fix) from None
    return model.predict_frame(features, interval=interval)


def _no_predictions(model: Model, interval: float | None) -> pd.DataFrame:
    """The output columns, without rows."""
    names = ["prediction"]
    if model.task == "regression":
        names += ["lower", "upper"] if interval is not None else []
        return pd.DataFrame({n: pd.Series(dtype="float64") for n in names})
    columns: dict[str, pd.Series] = {"prediction": pd.Series(dtype=object)}
    columns.update({f"proba_{c}": pd.Series(dtype="float64") for c in model.classes or ()})
    return pd.DataFrame(columns)
