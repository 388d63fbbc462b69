"""Reading the stored predictions: each one with its inputs, counts per variant, shadow pairs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from mlwright.store.schema import reading


def read_predictions(
    path: str | Path, *, model: str | None = None, since: float | None = None
) -> Iterator[dict[str, Any]]:
    """Every stored prediction, oldest first: ids, model, version, variant, entity key, the
    features as sent (``inputs``) and the answer (``output``)."""
    query = "SELECT request_id, ts, model, version, variant, entity_key, features, inputs, outputs"
    query += " FROM requests WHERE (? IS NULL OR model = ?) AND (? IS NULL OR ts >= ?) ORDER BY ts"
    with reading(path, ("requests",)) as conn:
        for rid, ts, name, version, variant, key, features, inputs, outputs in conn.execute(
            query, (model, model, since, since)
        ):
            names = orjson.loads(features)
            for values, output in zip(orjson.loads(inputs), orjson.loads(outputs), strict=True):
                yield {
                    "prediction_id": output["prediction_id"],
                    "request_id": rid,
                    "ts": ts,
                    "model": name,
                    "version": version,
                    "variant": variant,
                    "entity_key": key,
                    "inputs": dict(zip(names, values, strict=True)),
                    "output": output,
                }


def request_counts(
    store: Path,
    variants: list[str],
    since: float | None = None,
    models: list[str] | None = None,
) -> dict[str, int]:
    """Requests answered per variant (since ``since``, epoch seconds; of ``models`` only, when
    given: the store may hold other models' traffic under the same variant names)."""
    marks = ",".join("?" * len(variants))
    query = f"SELECT variant, COUNT(*) FROM requests WHERE variant IN ({marks})" + (
        " AND ts >= ?" if since is not None else ""
    )
    params: list[Any] = [*variants, *([since] if since is not None else [])]
    if models:
        query += f" AND model IN ({','.join('?' * len(models))})"
        params += models
    with reading(store, ("requests",)) as conn:
        rows = conn.execute(query + " GROUP BY variant", params)
        return {v: int(n) for v, n in rows}


def shadow_pairs(
    store: Path,
    champion: str,
    shadow: str,
    since: float | None = None,
    models: list[str] | None = None,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The champion's and the shadow's answers to the same request rows (a shadow copy's
    request id is the champion's with ``~SHADOW`` appended)."""
    query = (
        "SELECT c.output, s.output FROM predictions AS c JOIN predictions AS s "
        "ON s.request_id = c.request_id || '~' || ? AND s.row = c.row WHERE c.variant = ?"
        + (" AND c.ts >= ?" if since is not None else "")
    )
    params: list[Any] = [shadow, champion, *([since] if since is not None else [])]
    if models:
        query += f" AND c.model IN ({','.join('?' * len(models))})"
        params += models
    with reading(store, ("requests",)) as conn:
        return [(json.loads(a), json.loads(b)) for a, b in conn.execute(query, params)]
