"""Writing output tables: CSV or Parquet by extension, atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from mlwright.errors import ConfigError


def write_table(frame: pd.DataFrame, path: Path) -> None:
    suffix = path.name.lower()
    if not suffix.endswith((".csv", ".parquet", ".pq")):
        raise ConfigError(
            f"cannot tell the format of {str(path)!r} from its extension",
            fix="name the output .csv or .parquet",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if suffix.endswith(".csv"):
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
