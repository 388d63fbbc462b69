"""JSON records to feature columns without pandas: the model server's hot path.

:func:`record_columns` turns a list of records (dicts parsed from a request) into the feature
columns the encoder reads, in NumPy, for the inputs that need no conversion beyond the obvious:
numbers as numbers, booleans as booleans, categories as strings (or integers), no value that the
column's policy rejects. Anything else (a string in a numeric column, a missing key, a rejected
null or category) returns ``None``, and the caller takes the general path: request validation
plus :meth:`TableSchema.check`, which converts what can be converted and names every violation.

For every input this module accepts, the general path gives the same model matrix (a property
test checks that), so the fast path changes speed, never an answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.schema import ColumnSchema, TableSchema, enforce_column

_NUMBER = frozenset({int, float, type(None)})
_BOOLEAN = frozenset({bool, type(None)})
_CATEGORY = frozenset({str, int, bool, type(None)})
_STRING = frozenset({str, type(None)})
_EXACT_INT = 2**53  # integers beyond this are not exact as float64, where the general path goes


@dataclass(frozen=True)
class RecordColumns:
    """Feature columns by name, frame-like: ``columns[name]`` and ``len(columns)`` (rows).

    Numbers and booleans are float64 arrays (NaN missing); categories are lists of strings
    (None missing); dates and text are the pandas Series the schema gives them."""

    values: dict[str, Any]
    n_rows: int

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __len__(self) -> int:
        return self.n_rows


def record_columns(schema: TableSchema, records: Sequence[Any]) -> RecordColumns | None:
    """The feature columns of ``records``, or None when any value needs the general path."""
    features = schema.features
    if not features:
        return None
    try:
        rows = list(map(itemgetter(*[col.name for col in features]), records))
    except (KeyError, TypeError, IndexError):
        return None  # a missing field or a record that is no object: the general path names it
    by_column = list(zip(*rows, strict=True)) if len(features) > 1 else [tuple(rows)]
    out: dict[str, Any] = {}
    numbers = [i for i, col in enumerate(features) if col.kind in ("numeric", "integer")]
    if numbers:  # one type check and one conversion for all numeric columns
        block = [by_column[i] for i in numbers]
        if not set(map(type, chain.from_iterable(block))) <= _NUMBER:
            return None
        try:
            matrix = np.array(block, dtype="float64")  # None reads as NaN
        except (OverflowError, TypeError, ValueError):
            return None
        for row, i in enumerate(numbers):
            converted = _numbers(features[i], matrix[row])
            if converted is None:
                return None
            out[features[i].name] = converted
    for i, col in enumerate(features):
        if col.kind not in ("numeric", "integer"):
            converted = _column(col, by_column[i])
            if converted is None:
                return None
            out[col.name] = converted
    return RecordColumns({col.name: out[col.name] for col in features}, len(records))


def _numbers(col: ColumnSchema, x: np.ndarray) -> np.ndarray | None:
    missing = np.isnan(x)
    if col.policy.nulls == "reject" and missing.any():
        return None
    infinite = np.isinf(x)
    if infinite.any():
        if col.policy.nulls == "reject":
            return None
        x[infinite] = np.nan  # like a missing value, as in training
    if col.minimum is None or col.maximum is None or col.policy.out_of_range == "allow":
        return x
    lo, hi = float(col.minimum), float(col.maximum)
    if col.policy.out_of_range == "clip":
        return np.asarray(np.clip(x, lo, hi))
    return None if bool(((x < lo) | (x > hi)).any()) else x


def _column(col: ColumnSchema, values: tuple[Any, ...]) -> Any:
    if col.policy.nulls == "reject" and None in values:
        return None
    types = set(map(type, values))
    if col.kind == "boolean":
        if not types <= _BOOLEAN:
            return None
        return np.array(values, dtype="float64")  # None reads as NaN
    if col.kind == "categorical":
        return _categories(col, values, types)
    if not types <= _STRING:
        return None
    series, _, count = enforce_column(col, pd.Series(values, dtype=object), 0)
    return None if count else series


def _categories(col: ColumnSchema, values: tuple[Any, ...], types: set[type]) -> Any:
    if not types <= _CATEGORY:
        return None
    if types <= _STRING:
        text = list(values)
    elif int in types and any(type(v) is int and abs(v) >= _EXACT_INT for v in values):
        return None
    else:
        text = [None if v is None else str(v) for v in values]
    if (
        col.categories is not None
        and col.other_count == 0
        and col.policy.unknown_category == "reject"
    ):
        known = col.categories
        if any(v is not None and v not in known for v in text):
            return None
    return text


__all__ = ["RecordColumns", "record_columns"]
