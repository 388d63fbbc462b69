"""Served traffic written straight into a serving store, at chosen times (no server)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from mlwright.monitor.counts import count_batch
from mlwright.store import PredictionBatch, StoreWriter, Watch

_ids = itertools.count()


class Traffic:
    """The writer half of a server: ``watch`` a reference, ``send`` answered batches."""

    def __init__(self, store: Path, model: str = "m") -> None:
        self.writer = StoreWriter(store, count=count_batch)
        self.model = model

    def watch(self, variant: str, version: str | None, reference: dict[str, Any], at: Path) -> None:
        at.write_text(json.dumps(reference), encoding="utf-8")
        self.writer.watch(Watch(variant, version, str(at)))

    def send(
        self,
        frame: pd.DataFrame,
        predictions: list[dict[str, Any]],
        *,
        ts: float,
        variant: str = "champion",
        version: str | None = None,
    ) -> list[str]:
        """One request answering ``predictions`` for the rows of ``frame``; its prediction ids."""
        rid = f"r{next(_ids)}"
        records = json.loads(frame.to_json(orient="records"))
        ids = [f"{rid}:{i}" for i in range(len(records))]
        answer = {
            "predictions": [
                {"prediction_id": i, **p} for i, p in zip(ids, predictions, strict=True)
            ]
        }
        self.writer.add(
            PredictionBatch(
                rid,
                ts,
                self.model,
                version,
                variant,
                None,
                tuple(frame.columns),
                len(records),
                orjson.dumps({"records": records}),
                orjson.dumps(answer),
            )
        )
        return ids

    def close(self) -> None:
        self.writer.close()
