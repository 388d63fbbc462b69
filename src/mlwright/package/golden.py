"""Golden examples: inputs with the outputs the model must reproduce before it may serve.

Inputs are stored as JSON records (what a client would send); expected outputs are computed from
those same records, so a check compares like with like. Labels must match exactly, numbers within
``tolerance`` (1e-6 by default, CONTRACTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlwright.package.model import Model

TOLERANCE = 1e-6


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records: NaN/NaT become null, timestamps ISO strings, NumPy scalars Python."""
    records = []
    for row in frame.to_dict(orient="records"):
        clean = {}
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                value = value.isoformat()
            elif isinstance(value, np.generic):
                value = value.item()
            if (
                value is pd.NaT
                or (isinstance(value, float) and math.isnan(value))
                or value is pd.NA
            ):
                value = None
            clean[str(key)] = value
        records.append(clean)
    return records


def make_golden(model: Model, features: pd.DataFrame, n: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(features), size=min(n, len(features)), replace=False))
    inputs = to_records(features.iloc[take])
    expected = to_records(model.predict(pd.DataFrame.from_records(inputs)))
    return {"inputs": inputs, "expected": expected}


def check_golden(
    model: Model,
    tolerance: float = TOLERANCE,
    predict: Callable[[list[dict[str, Any]]], pd.DataFrame] | None = None,
) -> list[str]:
    """Mismatches between the model's outputs on its golden inputs and the recorded ones.
    ``predict`` scores the input records (default: ``model.predict``); the server passes its
    own request path."""
    if model.golden is None:
        return ["the package has no golden examples"]
    inputs = model.golden["inputs"]
    got = to_records(
        predict(inputs) if predict is not None else model.predict(pd.DataFrame.from_records(inputs))
    )
    problems = []
    for i, (want_row, got_row) in enumerate(zip(model.golden["expected"], got, strict=True)):
        for key, want in want_row.items():
            have = got_row.get(key)
            if isinstance(want, float) and isinstance(have, (int, float)):
                if not math.isclose(want, float(have), rel_tol=0.0, abs_tol=tolerance):
                    problems.append(f"row {i} {key}: expected {want!r}, got {have!r}")
            elif want != have:
                problems.append(f"row {i} {key}: expected {want!r}, got {have!r}")
    return problems
