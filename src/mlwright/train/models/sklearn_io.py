"""Saving scikit-learn estimators with skops, and loading them without trusting pickle.

Loading lists the types a file would create and refuses anything outside scikit-learn, NumPy and
SciPy before a single object is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlwright.errors import MlwrightError

_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.")
# skops rebuilds a partial from its parts, each of which is checked against the prefixes too
_TRUSTED_NAMES = frozenset({"functools.partial"})


def dump(estimator: Any, path: Path) -> None:
    import skops.io as sio

    sio.dump(estimator, path)


def load(path: Path) -> Any:
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    refused = [
        t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES) and t not in _TRUSTED_NAMES
    ]
    if refused:
        raise MlwrightError(
            f"{path} would create objects of untrusted types {refused}; refusing to load it",
            fix="retrain the model with mlwright; never load model files from unknown sources",
        )
    return sio.load(path, trusted=untrusted)
