"""Parquet data bigger than one process: a directory (or a glob) of Parquet files, read by row
group.

A :class:`FileSet` knows its files, their row groups and how many rows each holds from the
files' footers alone, so every row has a global position (files in name order, then rows in
file order) before anything is read. A *fragment* is one row group: the unit a cluster shares
out, and the most any reader holds at once besides its own batch.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.errors import DataSourceError

_PATTERN = ("*", "?", "[")


def is_file_set(data: Any) -> bool:
    """Whether ``data`` names a directory or a glob of files (what streams), not one table."""
    if not isinstance(data, (str, Path)):
        return False
    text = str(data)
    if "://" in text or Path(text).is_file():  # one table (a name may hold [ or *), or SQL
        return False
    return Path(text).is_dir() or any(mark in text for mark in _PATTERN)


def parquet_files(source: str | Path) -> tuple[Path, list[Path]]:
    """The Parquet files of ``source`` (a directory, searched recursively, or a glob) in name
    order, and the folder they sit under."""
    text = str(source)
    if Path(text).is_dir():
        root = Path(text)
        files = sorted(p for p in root.rglob("*") if p.is_file() and is_parquet(p))
    else:
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        root = Path(os.path.commonpath([str(p.parent) for p in files])) if files else Path(".")
        odd = [p for p in files if not is_parquet(p)]
        if odd:
            raise DataSourceError(
                f"{text} matches {len(odd)} file(s) that are not Parquet, e.g. {odd[0]}",
                fix="narrow the glob to *.parquet files",
            )
    if not files:
        raise DataSourceError(
            f"no Parquet files in {text}",
            fix="pass a directory of .parquet files, or a glob such as 'lake/**/*.parquet'",
        )
    return root, files


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq") and not path.name.startswith((".", "_"))


@dataclass(frozen=True)
class Fragment:
    """One row group of one file, with the global position of its first row."""

    path: str
    group: int
    start: int
    rows: int
    file_row: int = 0  # the group's first row, counted from 0 in its file

    @property
    def stop(self) -> int:
        return self.start + self.rows


@dataclass(frozen=True)
class FileSet:
    """The files, their columns and their row groups, read from the footers."""

    source: str
    root: str
    files: tuple[str, ...]
    columns: tuple[str, ...]
    fragments: tuple[Fragment, ...]

    @property
    def rows(self) -> int:
        return self.fragments[-1].stop if self.fragments else 0

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "files": len(self.files),
            "row_groups": len(self.fragments),
            "rows": self.rows,
            "bytes": sum(Path(f).stat().st_size for f in self.files),
        }


def open_file_set(source: str | Path) -> FileSet:
    """The file set at ``source``. Every file must have the same columns; a file that does not,
    or is not Parquet, is named."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root, files = parquet_files(source)
    fragments: list[Fragment] = []
    columns: tuple[str, ...] | None = None
    start = 0
    for path in files:
        file_row = 0
        try:
            meta = pq.ParquetFile(path).metadata
        except (OSError, pa.ArrowException) as exc:
            raise DataSourceError(
                f"{path} is not a readable Parquet file ({exc})", fix="remove or repair that file"
            ) from None
        names = tuple(meta.schema.to_arrow_schema().names)
        if columns is None:
            columns = names
        elif set(names) != set(columns):
            missing = sorted(set(columns) - set(names))
            extra = sorted(set(names) - set(columns))
            what = "; ".join(
                part
                for part in (
                    f"lacks {', '.join(map(repr, missing))}" if missing else "",
                    f"has {', '.join(map(repr, extra))} besides" if extra else "",
                )
                if part
            )
            raise DataSourceError(
                f"{path} {what} (compared with {files[0]}): every file of a training set "
                "needs the same columns",
                fix="rewrite that file with the others' columns, or leave it out of the glob",
            )
        for group in range(meta.num_row_groups):
            rows = int(meta.row_group(group).num_rows)
            if rows:
                fragments.append(Fragment(str(path.absolute()), group, start, rows, file_row))
                start += rows
                file_row += rows
    return FileSet(str(source), str(root), tuple(map(str, files)), columns or (), tuple(fragments))


def read_fragment(
    fragment: Fragment, columns: list[str] | None = None, batch_rows: int = 65_536
) -> Iterator[tuple[int, pd.DataFrame]]:
    """The fragment's rows ``batch_rows`` at a time, each with its first row's global
    position."""
    reader = _open(fragment)
    start = fragment.start
    # one thread: a worker's cores are for its model, and the reader's threads each hold
    # their own buffers
    for batch in reader.iter_batches(
        batch_size=batch_rows, row_groups=[fragment.group], columns=columns, use_threads=False
    ):
        frame = batch.to_pandas()
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield frame.index.start, frame


def take_rows(
    fragment: Fragment, positions: np.ndarray, columns: list[str] | None = None
) -> pd.DataFrame:
    """The rows at the global ``positions`` (sorted, all within the fragment), as a frame
    indexed by their positions."""
    table = _open(fragment).read_row_group(fragment.group, columns=columns)
    frame: pd.DataFrame = table.take(positions - fragment.start).to_pandas()
    frame.index = pd.Index(positions, dtype="int64")
    return frame


def _open(fragment: Fragment) -> Any:
    """The fragment's file, or an error that says a worker could not read it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(fragment.path)
    except (OSError, pa.ArrowException) as exc:
        raise DataSourceError(
            f"{fragment.path} could not be read ({exc})",
            fix="every node of a cluster must read the files at the same path (a shared file "
            "system or a mount); a file must not change while training reads it",
        ) from None


def within(fragment: Fragment, positions: np.ndarray) -> np.ndarray:
    """The sorted ``positions`` that fall in the fragment."""
    lo, hi = np.searchsorted(positions, [fragment.start, fragment.stop])
    return positions[lo:hi]


def seeded_positions(total: int, size: int, seed: int) -> np.ndarray:
    """``size`` distinct global positions of ``total``, sorted, the same for the same seed."""
    if size >= total:
        return np.arange(total, dtype="int64")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=size, replace=False).astype("int64"))


def share_fragments(
    fragments: tuple[Fragment, ...] | list[Fragment],
    workers: int,
    rows: dict[int, int] | None = None,
) -> list[list[Fragment]]:
    """The fragments shared out among ``workers`` by their rows (``rows``: the rows each will
    use, by its start; fragments without any are left out), largest first, each to the emptiest
    share; every share in position order, empty shares left out."""
    count = {f.start: f.rows if rows is None else rows.get(f.start, 0) for f in fragments}
    shares: list[list[Fragment]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for fragment in sorted(fragments, key=lambda f: (-count[f.start], f.start)):
        if not count[fragment.start]:
            continue
        i = loads.index(min(loads))
        shares[i].append(fragment)
        loads[i] += count[fragment.start]
    return [sorted(share, key=lambda f: f.start) for share in shares if share]
