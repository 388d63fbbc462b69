"""Request and response models generated from a package's TableSchema.

The generated ``Record`` model has one field per feature column, typed by the column's kind, so
``/docs`` shows the real columns. Validation errors are turned into the contract's 422 shape
(record index, field, value, reason, fix) by the app.
"""

from __future__ import annotations

import math
import re
import reprlib
from typing import Annotated, Any

from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from mlwright.data.schema import ColumnSchema, TableSchema
from mlwright.serve.bodies import locate

# a number written as a JSON string ("1.5", "-2e3"): converted, as the schema converts it
NUMBER_TEXT = r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$"
_NUMBER_TEXT = re.compile(NUMBER_TEXT)


def kind_of(value: Any) -> str:
    """How a JSON value reads in a message: "a boolean", "the string 'x'", "a list"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return "an object" if isinstance(value, dict) else "a list"


def _number(value: Any) -> Any:
    """A numeric column's value: a number, a number written as a string, or null; never a
    boolean (``false`` is not 0 here)."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and _NUMBER_TEXT.match(value):
        return float(value)
    raise PydanticCustomError(
        "number_expected",
        "expected a number or null, got {got}",
        {"got": kind_of(value), "fix": "send a JSON number (or null)"},
    )


def _scalar(value: Any) -> Any:
    """A category: a string, number or boolean, or null; never an object or a list."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise PydanticCustomError(
        "scalar_expected",
        "expected a string, number, boolean or null, got {got}",
        {"got": kind_of(value), "fix": "send a string, number, boolean or null"},
    )


NUMBER = Annotated[
    float | None,
    BeforeValidator(_number),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": NUMBER_TEXT},
                {"type": "null"},
            ]
        }
    ),
]
SCALAR = Annotated[str | int | float | bool | None, BeforeValidator(_scalar)]

_JSON_TYPES: dict[str, Any] = {
    "numeric": NUMBER,
    "integer": NUMBER,
    "boolean": bool | None,
    "categorical": SCALAR,
    "text": str | None,
    "datetime": str | None,
}


def _field(col: ColumnSchema) -> tuple[Any, Any]:
    extra: dict[str, Any] = {}
    if col.kind == "categorical" and col.categories:
        extra["examples"] = list(col.categories)[:5]
    if col.kind == "datetime":
        extra["json_schema_extra"] = {"format": "date-time"}
    if col.kind in ("numeric", "integer") and col.minimum is not None:
        extra["examples"] = [col.minimum]
    return _JSON_TYPES[col.kind], Field(..., description=f"{col.kind} feature", **extra)


def record_model(schema: TableSchema, name: str) -> type[BaseModel]:
    """A pydantic model of one input row: every feature is required, and may be null."""
    fields = {col.name: _field(col) for col in schema.features}
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{name}Record",
        __config__=ConfigDict(extra="ignore"),
        **fields,
    )


def predict_request_model(schema: TableSchema, name: str, max_rows: int) -> type[BaseModel]:
    record = record_model(schema, name)
    return create_model(
        f"{name}PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        records=(list[record], Field(..., min_length=1, max_length=max_rows)),  # type: ignore[valid-type]
        entity_key=(str | None, None),
    )


def records_adapter(request_model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    """Validates records with ``request_model``'s record model, with no row limit."""
    records: Any = request_model.model_fields["records"].annotation
    return TypeAdapter(records)


class ModelInfo(BaseModel):
    name: str
    version: str | None
    variant: str


class PredictResponse(BaseModel):
    request_id: str
    model: ModelInfo
    predictions: list[dict[str, Any]]


class ErrorItem(BaseModel):
    record: int | None
    field: str | None
    value: Any = None
    reason: str
    fix: str


class ErrorResponse(BaseModel):
    errors: list[ErrorItem]


class MlflowError(BaseModel):
    """The error body of ``/invocations``, as ``mlflow models serve`` answers."""

    error_code: str
    message: str


_STATUS = {
    401: "missing or wrong bearer token",
    404: "no such resource",
    409: "a conflict with what is stored or running",
    413: "the request body is over the size limit",
    415: "the body is not application/json",
    422: "invalid input: each error names the record, field and value, and the fix",
    503: "not ready, or not configured for this (the reason says which)",
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for error statuses, all in the contract's error shape."""
    return {s: {"model": ErrorResponse, "description": _STATUS[s]} for s in statuses}


def error_body(reason: str, fix: str) -> dict[str, Any]:
    """The contract's error shape for a problem with no record or field."""
    return {
        "errors": [{"record": None, "field": None, "value": None, "reason": reason, "fix": fix}]
    }


def error(status: int, reason: str, fix: str) -> JSONResponse:
    """A response in the contract's error shape."""
    return JSONResponse(error_body(reason, fix), status_code=status)


def field_error(status: int, field: str, reason: str, fix: str) -> JSONResponse:
    """A response in the contract's error shape, about one field of the body or request."""
    item = {"record": None, "field": field, "value": None, "reason": reason, "fix": fix}
    return JSONResponse({"errors": [item]}, status_code=status)


_SHORT = reprlib.Repr()  # bounded in depth and length, whatever it is given
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 80, 80


def jsonable(value: Any) -> Any:
    """``value`` as an error item shows it: JSON scalars as they are, anything else (and text
    that is not valid Unicode) as a short, escaped string."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str) and not value.isascii():
        return value[:200].encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return _SHORT.repr(value)[:200]


def violation_item(v: Any) -> dict[str, Any]:
    """A schema or input-spec :class:`~mlwright.errors.Violation` as the contract's error item."""
    return {
        "record": v.row,
        "field": v.column,
        "value": jsonable(v.value),
        "reason": v.reason,
        "fix": f"send {v.expected}",
    }


_EXPECTED = {
    "string_type": "a string",
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
}


def validation_items(errors: list[Any], limit: int = 100) -> list[dict[str, Any]]:
    """Pydantic's errors as the contract's error items, one per record and field (the
    members of a union each report the same field: it is named once)."""
    items: dict[tuple[Any, Any], dict[str, Any]] = {}
    for err in errors:
        item = validation_item(err)
        items.setdefault((item["record"], item["field"]), item)
        if len(items) >= limit:
            break
    return list(items.values())


def validation_item(err: Any) -> dict[str, Any]:
    """A pydantic error as the contract's error item: record index, field, value, reason."""
    loc = tuple(p for p in err.get("loc", ()) if p != "body")
    record, field = locate(loc)
    if field is None and record is None and loc:
        field = str(loc[0])
    kind = err.get("type", "")
    value = err.get("input")
    if kind == "json_invalid":
        return {
            "record": None,
            "field": None,
            "value": None,
            "reason": "the body is not valid JSON",
            "fix": "send a JSON object",
        }
    if kind == "missing":
        reason = "required field is missing"
        fix = f"send '{field}' (null is allowed)" if record is not None else f"send '{field}'"
    elif kind in _EXPECTED:
        reason = f"expected {_EXPECTED[kind]}, got {kind_of(value)}"
        fix = f"send {_EXPECTED[kind]} as '{field}' (see /docs)"
    else:
        reason = err.get("msg", "invalid value")
        fix = (err.get("ctx") or {}).get("fix") or "send a value of the documented type (see /docs)"
    return {
        "record": record,
        "field": field,
        "value": jsonable(value) if kind != "missing" else None,
        "reason": reason,
        "fix": fix,
    }
