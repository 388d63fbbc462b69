"""MLflow pyfunc loader for mlwright packages (``loader_module`` in the package's MLmodel).

MLflow calls ``_load_pyfunc(path)``; the object it returns predicts with the package's fast
scorer. No cloudpickle is involved: the package is verified and loaded like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mlwright.package.model import Model
from mlwright.package.store import MANIFEST, load_any
from mlwright.package.tensor import TensorModel


class PyFuncModel:
    def __init__(self, model: Model | TensorModel) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if isinstance(self.model, TensorModel):
            return self.model.predict(tensor_records(model_input))
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        interval = (params or {}).get("interval")
        return self.model.predict(frame, interval=interval)


def tensor_records(model_input: Any) -> list[Any]:
    """Records (one per example) from what MLflow hands a tensor model: a mapping of input
    name → batch (arrays or nested lists), a DataFrame with one column per input, or records."""
    if isinstance(model_input, pd.DataFrame):
        return list(model_input.to_dict(orient="records"))
    if isinstance(model_input, dict):
        columns = {k: list(v) for k, v in model_input.items()}
        n = len(next(iter(columns.values()), []))
        if any(len(v) != n for v in columns.values()):
            from mlwright.errors import ConfigError

            raise ConfigError(
                "the inputs' batches have different lengths",
                fix="send the same number of examples for every input",
            )
        return [{k: _plain(v[i]) for k, v in columns.items()} for i in range(n)]
    return list(model_input)


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def _load_pyfunc(path: str) -> PyFuncModel:
    root = Path(path).resolve()
    while not (root / MANIFEST).is_file() and root != root.parent:
        root = root.parent
    return PyFuncModel(load_any(root))
