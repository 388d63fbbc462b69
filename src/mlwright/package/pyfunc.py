"""MLflow pyfunc loader for mlwright packages (``loader_module`` in the package's MLmodel).

MLflow calls ``_load_pyfunc(path)``; the object it returns predicts with the package's fast
scorer. No cloudpickle is involved: the package is verified and loaded like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mlwright.package.model import Model
from mlwright.package.store import MANIFEST, load_package


class PyFuncModel:
    def __init__(self, model: Model) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        interval = (params or {}).get("interval")
        return self.model.predict(frame, interval=interval)


def _load_pyfunc(path: str) -> PyFuncModel:
    root = Path(path).resolve()
    while not (root / MANIFEST).is_file() and root != root.parent:
        root = root.parent
    return PyFuncModel(load_package(root))
