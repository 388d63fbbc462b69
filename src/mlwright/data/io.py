"""Reading tables: CSV, Parquet, a SQL query, or an in-memory frame.

Everything enters mlwright through :func:`read_table`, which returns a pandas DataFrame and a
:class:`SourceInfo` saying how it was read (format, encoding, delimiter, decimal mark). Every way
a source can be unusable ends in a :class:`~mlwright.errors.DataSourceError` naming the file and
the next step.

A CSV separated by semicolons, tabs or pipes may write its numbers with a decimal comma (the
European convention: ``1,5`` and ``1.234,5``). The sample read for the delimiter decides: numbers
such as ``1,5`` or ``1.234,5`` and none such as ``1.5`` make the comma the decimal mark, and a
column whose every value is then a number with dots grouping thousands (``1.234,5``,
``12.000``) is read as numbers; ``1,234`` and ``1.234`` alone decide nothing. A comma-separated
file always has the decimal point. The mark is recorded in :class:`SourceInfo`, and a file that
does not show one is read with the mark the caller passes (a model reads new files as it read
its training data).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.errors import ColumnError, DataSourceError, suggest

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
_SNIFF_BYTES = 256 * 1024
_DELIMITERS = ",;\t|"
_URL_MARKER = "://"
# numbers in the sample: what each shape says about the decimal mark
_COMMA_DECIMAL = re.compile(r"[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+")  # 1,5  1.234,5  1,234 (?)
_DOT_DECIMAL = re.compile(r"[+-]?(\d{1,3}(,\d{3})+|\d*)\.\d+([eE][+-]?\d+)?")  # 1.5  1,234.5
_GROUPED = re.compile(r"[+-]?\d{1,3}[.,]\d{3}")  # 1,234 or 1.234: either convention
_EUROPEAN_NUMBER = r"[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?"


@dataclass(frozen=True)
class SourceInfo:
    """Where a table came from and how it was decoded."""

    kind: str  # "csv" | "parquet" | "sql" | "frame"
    location: str
    encoding: str | None = None
    delimiter: str | None = None
    n_bytes: int | None = None
    decimal: str | None = None  # CSV: "." or "," (numbers such as 1.234,5)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_sql_url(data: object) -> bool:
    return isinstance(data, str) and _URL_MARKER in data and not Path(data).exists()


def read_table(
    data: Any, *, sql: str | None = None, decimal: str | None = None
) -> tuple[pd.DataFrame, SourceInfo]:
    """Read ``data`` (a path, a SQLAlchemy URL with ``sql``, a DataFrame or an Arrow-compatible
    table) into a DataFrame with unique column names and at least one row. ``decimal`` ("." or
    ",") is the decimal mark of a CSV whose sample shows none (default ".")."""
    if isinstance(data, pd.DataFrame):
        if sql is not None:
            raise DataSourceError(
                "a SQL query was given with an in-memory frame",
                fix="pass a SQLAlchemy URL as the data when you pass a query",
            )
        _check_unique_columns(list(map(str, data.columns)), "the data frame")
        _check_has_rows(data, "the data frame")
        return data, SourceInfo(kind="frame", location="<DataFrame>")
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        return _read_arrow_object(data)
    if isinstance(data, (str, Path)):
        text = str(data)
        if sql is not None or is_sql_url(text):
            return read_sql(text, sql)
        return read_file(Path(text), decimal=decimal)
    raise DataSourceError(
        f"cannot read data of type {type(data).__name__}",
        fix="pass a CSV or Parquet path, a SQLAlchemy URL with a query, a pandas DataFrame, "
        "or an Arrow-compatible table (pyarrow, polars)",
    )


def read_file(path: Path, *, decimal: str | None = None) -> tuple[pd.DataFrame, SourceInfo]:
    name = str(path)
    if not path.exists():
        raise DataSourceError(f"file {name!r} does not exist", fix="check the path and spelling")
    if path.is_dir():
        raise DataSourceError(
            f"{name!r} is a directory, not a data file", fix="pass a CSV or Parquet file"
        )
    size = path.stat().st_size
    if size == 0:
        raise DataSourceError(f"file {name!r} is empty (0 bytes)", fix="pass a file with data")
    lower = path.name.lower()
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise DataSourceError(
            f"file {name!r} cannot be read: {exc.strerror}", fix="check the file's permissions"
        ) from None
    if lower.endswith(PARQUET_SUFFIXES) or magic == b"PAR1":
        return _read_parquet(path, size)
    if lower.endswith(CSV_SUFFIXES) or not path.suffix:
        return _read_csv(path, size, decimal)
    raise DataSourceError(
        f"file {name!r} has an unsupported extension {path.suffix!r}",
        fix="use .csv, .tsv, .txt (optionally .gz) or .parquet",
    )


# --- CSV -----------------------------------------------------------------------------------------


def _read_csv(path: Path, size: int, hint: str | None) -> tuple[pd.DataFrame, SourceInfo]:
    name = str(path)
    compressed = path.name.lower().endswith(".gz")
    raw = _head_bytes(path, compressed)
    if not raw.strip():
        raise DataSourceError(f"file {name!r} holds only whitespace", fix="pass a file with data")
    encoding = _detect_encoding(raw, name)
    if b"\x00" in raw and not encoding.startswith("utf-16") and not encoding.startswith("utf-32"):
        raise DataSourceError(
            f"file {name!r} is not a text file (it contains NUL bytes); it may be corrupt "
            "or in a binary format",
            fix="export the data as CSV or Parquet",
        )
    text = _decode_prefix(raw, encoding)
    delimiter = _sniff_delimiter(text, path)
    header = _first_record(text, delimiter)
    if header is None:
        raise DataSourceError(f"file {name!r} has no header line", fix="add a header line")
    _check_unique_columns(header, f"file {name!r}")
    decimal = "." if delimiter == "," else _sniff_decimal(text, delimiter) or hint or "."
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            decimal=decimal,
            encoding=encoding,
            low_memory=False,
            compression="gzip" if compressed else None,
        )
    except UnicodeDecodeError as exc:
        raise DataSourceError(
            f"file {name!r} is not valid {encoding} at byte {exc.start} (the encoding was "
            "detected from the start of the file)",
            fix="re-save the file as UTF-8",
        ) from None
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"file {name!r} has no columns", fix="add a header line") from None
    except pd.errors.ParserError as exc:
        raise DataSourceError(
            f"file {name!r} cannot be parsed as {_delimiter_name(delimiter)}-separated text: "
            f"{str(exc).strip()}",
            fix="check that every line has the same number of fields and that fields "
            "containing the delimiter are quoted",
        ) from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataSourceError(
            f"file {name!r} cannot be read: {exc}", fix="check that the file is complete"
        ) from None
    _check_has_rows(frame, f"file {name!r}")
    if decimal == ",":
        frame = _grouped_numbers(frame)
    return frame, SourceInfo(
        kind="csv", location=name, encoding=encoding, delimiter=delimiter, n_bytes=size,
        decimal=decimal,
    )  # fmt: skip


def _head_bytes(path: Path, compressed: bool) -> bytes:
    try:
        if compressed:
            with gzip.open(path, "rb") as gz:
                return gz.read(_SNIFF_BYTES)
        with path.open("rb") as fh:
            return fh.read(_SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise DataSourceError(
            f"file {str(path)!r} cannot be read: {exc}", fix="check that the file is complete"
        ) from None


def _detect_encoding(raw: bytes, name: str) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise DataSourceError(
            f"file {name!r} is not text in any encoding mlwright recognises; it may be corrupt",
            fix="re-save the file as UTF-8 CSV",
        )
    return str(best.encoding).replace("_", "-")


def _decode_prefix(raw: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    return str(decoder.decode(raw, final=False))


def _sniff_delimiter(text: str, path: Path) -> str:
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line may be cut by the sample
    sample = "\n".join(lines[:200])
    default = "\t" if ".tsv" in path.name.lower() else ","
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        header = lines[0] if lines else ""
        counts = {d: header.count(d) for d in _DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] > 0 else default


def _sniff_decimal(text: str, delimiter: str) -> str | None:
    """ "," when the sample's numbers use a decimal comma and none a decimal point, "." for the
    reverse, None when they do not say (integers only, ``1.234`` or ``1,234`` only, or both)."""
    comma = dot = False
    records = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        for i, record in enumerate(records):
            if i > 200:
                break
            for field in record[:1000] if i else ():  # not the header
                value = field.strip()
                if not value or not value[-1].isdigit() or _GROUPED.fullmatch(value):
                    continue
                comma = comma or _COMMA_DECIMAL.fullmatch(value) is not None
                dot = dot or _DOT_DECIMAL.fullmatch(value) is not None
    except csv.Error:  # a line cut by the sample; the parse proper reports real problems
        pass
    if comma != dot:
        return "," if comma else "."
    return None


def _grouped_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every value is a number in the European convention with dots
    grouping thousands (``1.234,5``, ``12.000``), as numbers; pandas reads the others."""
    converted = {}
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        present = values.dropna()
        if present.empty or not all(isinstance(v, str) for v in present.head(1000)):
            continue
        if not present.head(1000).astype(str).str.strip().str.fullmatch(_EUROPEAN_NUMBER).all():
            continue  # text: decided by its first values, without scanning the column
        text = present.astype(str).str.strip()
        grouped = text.str.contains(".", regex=False).any()
        if not grouped or not text.str.fullmatch(_EUROPEAN_NUMBER).all():
            continue
        plain = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        converted[column] = pd.to_numeric(plain).reindex(values.index)
    if not converted:
        return frame
    frame = frame.copy()
    for column, numbers in converted.items():
        frame[column] = numbers
    return frame


def _first_record(text: str, delimiter: str) -> list[str] | None:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    for record in reader:
        if record:
            return [field.strip() for field in record]
    return None


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(
        delimiter, repr(delimiter)
    )


# --- Parquet, Arrow -----------------------------------------------------------------------------


def _read_parquet(path: Path, size: int) -> tuple[pd.DataFrame, SourceInfo]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = str(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataSourceError(
            f"file {name!r} is not a readable Parquet file ({exc}); it may be corrupt or truncated",
            fix="re-export the file, or pass a CSV",
        ) from None
    _check_unique_columns(table.column_names, f"file {name!r}")
    frame = table.to_pandas()
    _check_has_rows(frame, f"file {name!r}")
    return frame, SourceInfo(kind="parquet", location=name, n_bytes=size)


def _read_arrow_object(data: Any) -> tuple[pd.DataFrame, SourceInfo]:
    import pyarrow as pa

    try:
        table = pa.table(data)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise DataSourceError(
            f"cannot convert {type(data).__name__} to a table: {exc}",
            fix="pass a pandas DataFrame or a file path",
        ) from None
    _check_unique_columns(table.column_names, f"the {type(data).__name__}")
    frame = table.to_pandas()
    _check_has_rows(frame, f"the {type(data).__name__}")
    return frame, SourceInfo(kind="frame", location=f"<{type(data).__name__}>")


# --- SQL ----------------------------------------------------------------------------------------


def read_sql(url: str, query: str | None) -> tuple[pd.DataFrame, SourceInfo]:
    """The result of one SELECT ``query`` on the database at ``url``, read on a connection that
    cannot write (see :mod:`mlwright.data.sql`)."""
    from mlwright.data.sql import query_table

    columns, rows, shown = query_table(url, query)
    _check_unique_columns(columns, "the query result")
    frame = pd.DataFrame.from_records(rows, columns=columns)
    _check_has_rows(frame, "the query result")
    return frame, SourceInfo(kind="sql", location=shown)


# --- checks -------------------------------------------------------------------------------------


def _check_unique_columns(columns: list[str], where: str) -> None:
    counts = Counter(columns)
    dupes = [c for c, n in counts.items() if n > 1]
    if dupes:
        positions = {d: [i + 1 for i, c in enumerate(columns) if c == d] for d in dupes}
        listed = "; ".join(f"{d!r} at positions {positions[d]}" for d in dupes)
        raise ColumnError(
            f"{where} has duplicate column names: {listed}",
            fix="rename the columns so that every name is unique",
        )


def _check_has_rows(frame: pd.DataFrame, where: str) -> None:
    if frame.shape[1] == 0:
        raise DataSourceError(f"{where} has no columns", fix="pass a table with a header")
    if frame.shape[0] == 0:
        raise DataSourceError(
            f"{where} has a header but no data rows", fix="pass a table with at least one row"
        )


def check_flat(frame: pd.DataFrame, columns: list[str]) -> None:
    """Refuse nested columns (Parquet/Arrow structs, lists, maps) among ``columns``, naming
    each one: mlwright learns from flat columns of numbers, categories, text and dates."""
    nested = {c: kind for c in columns if (kind := _nested_kind(frame[c])) is not None}
    if not nested:
        return
    listed = "; ".join(f"{c!r} ({kind})" for c, kind in nested.items())
    drops = " ".join(f"--drop-col {c}" for c in nested)
    raise ColumnError(
        f"{len(nested)} column(s) hold nested values, which mlwright cannot learn from: {listed}",
        fix="flatten them into plain columns before training (pyarrow's Table.flatten() for "
        "structs, pandas.json_normalize or explode for lists), or leave them out with "
        f"{drops} (drop_cols=[...] in Python)",
    )


def _nested_kind(values: pd.Series) -> str | None:
    """'struct', 'list' or 'map' when ``values`` holds nested values, else None."""
    dtype = values.dtype
    arrow = getattr(dtype, "pyarrow_dtype", None)
    if arrow is not None:
        import pyarrow as pa

        if pa.types.is_struct(arrow):
            return "struct"
        if pa.types.is_map(arrow):
            return "map"
        return "list" if pa.types.is_nested(arrow) else None
    if not pd.api.types.is_object_dtype(dtype):
        return None
    first = values.dropna().head(1).tolist()
    if not first:
        return None
    value = first[0]
    if isinstance(value, dict):
        return "struct"
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return "list"
    return None


def require_column(frame: pd.DataFrame, column: str, what: str = "column") -> None:
    """Raise a ColumnError with close matches when ``column`` is not in ``frame``."""
    names = [str(c) for c in frame.columns]
    if column not in names:
        raise ColumnError(
            f"{what} {column!r} is not in the data; {suggest(column, names)}",
            fix=f"pass one of the data's column names as the {what}",
        )
