"""Single-row latency through the server's request path: what the deployment gate measures and
what training's final choice is held to (``--latency-budget-ms``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data.records import record_columns
from mlwright.package.model import Model

LATENCY_CALLS = 200
WARM_CALLS = 20


def serving_outputs(model: Model, records: list[dict[str, Any]]) -> pd.DataFrame:
    """What the server answers for ``records``: the fast path, or the schema's general path
    for records it declines."""
    features = record_columns(model.schema, records)
    if features is None:
        return model.predict_frame(model.schema.enforce(pd.DataFrame.from_records(records)))
    return pd.DataFrame(model.outputs(features))


def single_row_p99_ms(model: Model, calls: int = LATENCY_CALLS) -> float:
    """p99 latency of scoring one golden record through the server's path, in milliseconds."""
    assert model.golden is not None
    record = model.golden["inputs"][:1]
    for _ in range(WARM_CALLS):
        serving_outputs(model, record)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        serving_outputs(model, record)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 99))


__all__ = ["LATENCY_CALLS", "serving_outputs", "single_row_p99_ms"]
