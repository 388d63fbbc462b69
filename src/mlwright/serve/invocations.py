"""``POST /invocations``: MLflow's scoring protocol, on the same fast path as ``/v1/predict``.

A body in any of MLflow's shapes (``dataframe_split``, ``dataframe_records``, ``instances``,
``inputs``, or a ``text/csv`` body) is read into records, and records that need no conversion
go through :func:`~mlwright.data.records.record_columns` and the model's NumPy scorer, without
pandas. Anything else takes the pandas path: the frame MLflow would build, the record model's
check of every value (a 400 naming the record and field), then the schema. Both paths give the
same predictions for the bodies the fast one takes (tested on every shape).

Answers and errors are MLflow's: ``{"predictions": [...]}``, and ``{"error_code", "message"}``
with 400 for invalid input (503 until the deployment gate passes). ``params`` are ignored, as
MLflow ignores them for a model whose signature declares none.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import uuid
from typing import Any

import numpy as np
import orjson
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from mlwright.data.records import RecordColumns, record_columns
from mlwright.data.schema import TableSchema
from mlwright.errors import MlwrightError, SchemaViolationError
from mlwright.serve.asgi import Receive, Scope, Send, read_body
from mlwright.serve.bodies import BodyError, check, parse
from mlwright.serve.limits import CSV_MEDIA
from mlwright.serve.schemas import NUMBER_TEXT, error_body, validation_items
from mlwright.serve.slot import Slot

log = logging.getLogger("mlwright.serve")
PATH = "/invocations"
SHAPES = ("dataframe_split", "dataframe_records", "instances", "inputs")
_HEADERS = [(b"content-type", b"application/json")]
# what pandas.read_csv (and so `mlflow models serve`) reads as a missing value
NA_TEXT = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"}
    | {"<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)
_BOOLEAN_TEXT = {"true": True, "false": False}


class Invocations:
    """Scores MLflow bodies for one slot (its champion, as ``mlflow models serve`` would)."""

    def __init__(self, slot: Slot, cells: TypeAdapter[Any], max_rows: int) -> None:
        self.slot = slot
        self.cells = cells  # the record model: a value of the wrong JSON type is a 400
        self.max_rows = max_rows  # as /v1/predict: more rows in one request is a 400
        self._told_params = False

    def __call__(self, raw: bytes, media: str = "application/json") -> tuple[int, bytes]:
        """The status and JSON body answering ``raw`` (a JSON body, or CSV with ``media``)."""
        active = self.slot.active  # one model for the whole request, even during a swap
        if active is None:
            return failure(503, "the model has not passed the deployment gate")
        model = active.model
        try:
            if media == CSV_MEDIA:
                # counted before any row is read: a header line, then one line per row
                too_many(raw.count(b"\n") - 1, self.max_rows)
                payload: Any = {"dataframe_records": csv_records(raw, model.schema)}
            else:
                payload = parse(raw, depth=False)  # the pandas path checks the depth
                too_many(body_rows(payload), self.max_rows)
        except BodyError as exc:
            return failure(400, exc.reason)
        self._note_params(payload)
        records = body_records(payload)
        features: RecordColumns | pd.DataFrame | None = None
        if records is not None:
            features = record_columns(model.schema, records)
        try:
            if features is None:
                features = self.frame(model.schema, payload)
            out = model.outputs(features)
        except BodyError as exc:
            return failure(400, exc.reason)
        except SchemaViolationError as exc:
            return failure(400, str(exc))
        except (MlwrightError, ValueError, TypeError, KeyError) as exc:
            return failure(400, f"invalid input: {exc}")
        return 200, answer(out)

    def frame(self, schema: TableSchema, payload: Any) -> pd.DataFrame:
        """The pandas path: MLflow's frame of ``payload``, its values checked against the
        record model, in the schema's dtypes. Raises what the answer names."""
        check(payload)
        frame = mlflow_frame(payload)
        check_cells(self.cells, frame)
        return schema.enforce(frame)

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The route as a bare ASGI app: no framework between the socket and the scorer."""
        raw = await read_body(receive)
        if raw is None:
            return
        headers = dict(scope.get("headers") or [])
        media = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        try:
            status, body = self(raw, media)
        except Exception as exc:  # answered like every other route's unexpected error
            request_id = scope.get("state", {}).get("request_id") or uuid.uuid4().hex
            log.exception("unexpected error on %s (request %s)", PATH, request_id)
            status, body = (
                500,
                orjson.dumps(
                    error_body(
                        f"internal error ({type(exc).__name__})",
                        "retry; if it persists, report it with the server log",
                    )
                ),
            )
        headers_out = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers_out})
        await send({"type": "http.response.body", "body": body})

    def _note_params(self, payload: Any) -> None:
        if self._told_params or type(payload) is not dict or payload.get("params") in (None, {}):
            return
        self._told_params = True  # once per server: MLflow warns on every request
        log.warning(
            "ignoring `params` in /invocations bodies: this model's signature declares none "
            "(as mlflow models serve does)"
        )


def failure(status: int, message: str) -> tuple[int, bytes]:
    """An answer in MLflow's error shape."""
    code = "BAD_REQUEST" if status == 400 else "TEMPORARILY_UNAVAILABLE"
    return status, orjson.dumps({"error_code": code, "message": message})


def answer(out: dict[str, np.ndarray]) -> bytes:
    """``{"predictions": [{column: value, ...}, ...]}``, MLflow's answer for a frame."""
    columns = {key: values.tolist() for key, values in out.items()}
    keys = tuple(columns)
    rows = [dict(zip(keys, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    return orjson.dumps({"predictions": rows})


def body_rows(payload: Any) -> int:
    """How many rows an MLflow body holds, read from its shape alone (0 when it has none)."""
    if type(payload) is not dict:
        return 0
    rows = 0
    for key in SHAPES:
        value = payload.get(key)
        if key == "dataframe_split" and type(value) is dict:
            value = value.get("data")
        if type(value) is dict:  # columnar: the longest column
            value = max((v for v in value.values() if type(v) is list), key=len, default=[])
        if type(value) is list:
            rows = max(rows, len(value))
    return rows


def too_many(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise BodyError(
            f"the body holds {rows} rows; at most {max_rows} are scored in one request",
            "split it into requests of at most that many rows",
        )


def body_records(payload: Any) -> list[Any] | None:
    """The records of a well-formed MLflow body, or None for anything else (the pandas path
    then reads it, or names what is wrong with it)."""
    if type(payload) is not dict:
        return None
    keys = [key for key in SHAPES if key in payload]
    if len(keys) != 1:
        return None
    value = payload[keys[0]]
    if keys[0] == "dataframe_split":
        if type(value) is not dict:
            return None
        columns, data = value.get("columns"), value.get("data")
        if type(columns) is not list or type(data) is not list or not data:
            return None
        if not all(type(c) is str for c in columns) or len(set(columns)) != len(columns):
            return None
        width = len(columns)
        if not all(type(row) is list and len(row) == width for row in data):
            return None
        return [dict(zip(columns, row, strict=True)) for row in data]
    if type(value) is dict:  # columnar: {"column": [values, ...], ...}
        lists = list(value.values())
        if not lists or not all(type(v) is list for v in lists):
            return None
        n = len(lists[0])
        if n == 0 or any(len(v) != n for v in lists):
            return None
        names = list(value)
        return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]
    if type(value) is not list or not value or not all(type(r) is dict for r in value):
        return None
    return value


def mlflow_frame(payload: Any) -> pd.DataFrame:
    """The frame in an MLflow scoring body (one of its four JSON shapes), as pandas reads it."""
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    keys = [k for k in SHAPES if k in payload]
    if len(keys) != 1:
        raise ValueError(
            "send exactly one of dataframe_split, dataframe_records, instances or inputs"
        )
    value = payload[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(value, dict) or "columns" not in value or "data" not in value:
            raise ValueError("dataframe_split needs 'columns' and 'data'")
        _check_split(value["columns"], value["data"])
        return pd.DataFrame(value["data"], columns=value["columns"])
    if isinstance(value, dict):  # columnar inputs: {"col": [values...]}
        return pd.DataFrame(value)
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ValueError(f"{keys[0]} must be a list of records (objects)")
    return pd.DataFrame.from_records(value)


def _check_split(columns: Any, data: Any) -> None:
    """Raise ValueError naming what pandas would warn about (or break on) in a split frame."""
    if isinstance(columns, list):
        seen = set()
        for name in columns:
            if not isinstance(name, (str, int, float, bool)) and name is not None:
                raise ValueError(f"dataframe_split's columns must be names, got {name!r:.40}")
            if name in seen:
                raise ValueError(f"dataframe_split names the column {name!r:.80} twice")
            seen.add(name)
        if isinstance(data, list):
            for i, row in enumerate(data):
                if isinstance(row, list) and len(row) != len(columns):
                    raise ValueError(
                        f"dataframe_split's row {i} has {len(row)} values for "
                        f"{len(columns)} columns"
                    )


def check_cells(cells: TypeAdapter[Any], frame: pd.DataFrame) -> None:
    """Raise ValueError naming the first values of ``frame`` the record model refuses. A
    missing value is null whatever pandas made of it (NaN in a text column, NaT, NA)."""
    cells_of = frame.astype(object).where(frame.notna(), None)
    try:
        cells.validate_python(cells_of.to_dict(orient="records"))
    except ValidationError as exc:
        errors = [{**e, "loc": ("records", *e["loc"])} for e in exc.errors(include_url=False)]
        raise ValueError(
            "; ".join(
                f"record {item['record']} '{item['field']}': {item['reason']}"
                for item in validation_items(errors, limit=5)
            )
        ) from None


def csv_records(raw: bytes, schema: TableSchema) -> list[dict[str, Any]]:
    """The records of a CSV body (a header line, then one line per row), each cell read as its
    column's kind: numbers in numeric columns, ``true``/``false`` in boolean ones, text in
    the others; an empty cell (or ``NA``, ``null``... as pandas reads them) is missing."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyError(
            f"the CSV body is not UTF-8 text (byte {exc.start})", "send the CSV as UTF-8"
        ) from None
    try:
        lines = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        raise BodyError(f"the CSV body cannot be read: {exc}", _CSV_FIX) from None
    if not lines:
        raise BodyError("the CSV body is empty: it needs a header line of column names", _CSV_FIX)
    header, rows = lines[0], lines[1:]
    kinds = {col.name: col.kind for col in schema.features}
    readers = [_CELL_READERS.get(kinds.get(name, "text"), _text) for name in header]
    records = []
    for i, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise BodyError(
                f"line {i} of the CSV body has {len(row)} fields; its header has {len(header)}",
                _CSV_FIX,
            )
        records.append(
            {name: read(cell) for name, read, cell in zip(header, readers, row, strict=True)}
        )
    return records


_CSV_FIX = "send a header line of column names, then one line per row (pandas' DataFrame.to_csv)"


def _text(cell: str) -> str | None:
    return None if cell in NA_TEXT else cell


def _number(cell: str) -> Any:
    if cell in NA_TEXT:
        return None
    stripped = cell.strip()
    if _NUMBER.match(stripped) or _INFINITE.fullmatch(stripped):
        return float(stripped)
    return cell  # not a number: the pandas path names it


def _boolean(cell: str) -> Any:
    if cell in NA_TEXT:
        return None
    return _BOOLEAN_TEXT.get(cell.strip().lower(), cell)


_CELL_READERS = {"numeric": _number, "integer": _number, "boolean": _boolean}


_NUMBER = re.compile(NUMBER_TEXT)
_INFINITE = re.compile(r"[+-]?inf(inity)?", re.IGNORECASE)


__all__ = [
    "CSV_MEDIA",
    "PATH",
    "Invocations",
    "answer",
    "body_records",
    "csv_records",
    "failure",
    "mlflow_frame",
]
