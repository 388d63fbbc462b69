"""Request and response models generated from a package's TableSchema.

The generated ``Record`` model has one field per feature column, typed by the column's kind, so
``/docs`` shows the real columns. Validation errors are turned into the contract's 422 shape
(record index, field, value, reason, fix) by the app.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from mlwright.data.schema import ColumnSchema, TableSchema

_JSON_TYPES: dict[str, Any] = {
    "numeric": float | None,
    "integer": float | None,
    "boolean": bool | None,
    "categorical": str | int | float | bool | None,
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


def error_body(reason: str, fix: str) -> dict[str, Any]:
    """The contract's error shape for a problem with no record or field."""
    return {
        "errors": [{"record": None, "field": None, "value": None, "reason": reason, "fix": fix}]
    }


def jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)[:200]


def violation_item(v: Any) -> dict[str, Any]:
    """A schema or input-spec :class:`~mlwright.errors.Violation` as the contract's error item."""
    return {
        "record": v.row,
        "field": v.column,
        "value": jsonable(v.value),
        "reason": v.reason,
        "fix": f"send {v.expected}",
    }


def validation_item(err: Any) -> dict[str, Any]:
    """A pydantic error as the contract's error item: record index, field, value, reason."""
    loc = [p for p in err.get("loc", ()) if p != "body"]
    record = next((p for p in loc if isinstance(p, int)), None)
    names = [p for p in loc if isinstance(p, str)]
    field = names[-1] if names else None
    kind = err.get("type", "")
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
    else:
        reason = err.get("msg", "invalid value")
        fix = "send a value of the documented type (see /docs)"
    return {
        "record": record,
        "field": field,
        "value": jsonable(err.get("input")) if kind != "missing" else None,
        "reason": reason,
        "fix": fix,
    }
