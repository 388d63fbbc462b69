"""The rows a model learns from: those with a usable target, with infinite numbers read as
missing. One rule for a table in memory and for a file set read a batch at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlwright.data.schema import TableSchema
from mlwright.data.tasks import Task


def usable_target(values: pd.Series, task: Task) -> np.ndarray:
    """Which rows have a target to learn from: present, and a finite number for regression."""
    keep = values.notna().to_numpy()
    if task == "regression":
        number = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        keep = keep & np.isfinite(number)
    return np.asarray(keep, dtype=bool)


def infinite_as_missing(frame: pd.DataFrame, schema: TableSchema) -> dict[str, int]:
    """Infinite values of the numeric features set to missing, in place; the count per column
    where there were any."""
    found = {}
    for col in schema.features:
        if col.kind in ("numeric", "integer"):
            # only the infinities are replaced: a value that does not parse stays as it is
            # mlwright: ignore[MLW107] for the schema to refuse by name
            values = pd.to_numeric(frame[col.name], errors="coerce")
            infinite = np.isinf(values.to_numpy(dtype="float64"))
            if infinite.any():
                frame[col.name] = frame[col.name].mask(infinite)
                found[col.name] = int(infinite.sum())
    return found
