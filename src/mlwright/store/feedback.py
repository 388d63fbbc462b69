"""Feedback in the serving store: written on its own, keyed by ``prediction_id``, and joined to
its prediction when read (it may arrive before the prediction is flushed).

Each prediction with feedback has one or more outcomes (:func:`outcomes`): for a ``label``,
whether the predicted label was right (accuracy) and the log loss of the probability given to
the true label; for a ``value``, the squared error; for a ``reward``, the reward.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlwright.store.schema import connect, reading, transaction

Row = tuple[str, str, float | None]  # kind, the outcome as JSON, covariate


class FeedbackTable:
    """The feedback table inside one write transaction (see :func:`writing_feedback`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get(self, ids: list[str]) -> dict[str, Row]:
        """The feedback stored for ``ids``, by prediction id."""
        found: dict[str, Row] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for pid, kind, value, covariate in self._conn.execute(
                "SELECT prediction_id, kind, value, covariate FROM feedback "
                f"WHERE prediction_id IN ({marks})",
                chunk,
            ):
                found[pid] = (kind, value, covariate)
        return found

    def put(self, rows: dict[str, Row], ts: float) -> None:
        """Store ``rows`` (prediction id → row) received at ``ts``, replacing what was there."""
        self._conn.executemany(
            "INSERT INTO feedback (prediction_id, ts, kind, value, covariate) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (prediction_id) DO UPDATE SET "
            "ts = excluded.ts, kind = excluded.kind, value = excluded.value, "
            "covariate = excluded.covariate",
            [(pid, ts, *row) for pid, row in rows.items()],
        )


@contextmanager
def writing_feedback(store: Path) -> Iterator[FeedbackTable]:
    """The feedback table in one write transaction: committed when the block ends, rolled back
    whole when it raises."""
    conn = connect(store)
    try:
        with transaction(conn):
            yield FeedbackTable(conn)
    finally:
        conn.close()


def outcomes(output: dict[str, Any], kind: str, value: Any) -> list[tuple[str, float]]:
    """(metric, outcome) of one prediction (``output``, as answered) given its feedback."""
    if kind == "reward":
        return [("reward", float(value))]
    if kind == "value":
        return [("squared_error", (float(output["prediction"]) - float(value)) ** 2)]
    found = [("accuracy", float(str(output.get("prediction")) == str(value)))]
    proba = output.get(f"proba_{value}")
    if isinstance(proba, (int, float)):
        found.append(("log_loss", -math.log(min(max(float(proba), 1e-15), 1.0))))
    return found


def feedback_of_variants(
    store: Path,
    variants: list[str],
    since: float | None = None,
    models: list[str] | None = None,
) -> Iterator[tuple[str, dict[str, Any], str, Any, float, float | None]]:
    """(variant, answer, kind, outcome, feedback time, covariate) of every prediction of
    ``variants`` (made since ``since``; of ``models`` only, when given) that has feedback."""
    marks = ",".join("?" * len(variants))
    query = (
        "SELECT p.variant, p.output, f.kind, f.value, f.ts, f.covariate FROM predictions AS p "
        f"JOIN feedback AS f USING (prediction_id) WHERE p.variant IN ({marks})"
        + (" AND p.ts >= ?" if since is not None else "")
    )
    params: list[Any] = [*variants, *([since] if since is not None else [])]
    if models:
        query += f" AND p.model IN ({','.join('?' * len(models))})"
        params += models
    with reading(store, ("requests", "feedback")) as conn:
        for variant, output, kind, value, ts, covariate in conn.execute(query, params):
            yield variant, json.loads(output), kind, json.loads(value), ts, covariate


def feedback_of_model(
    store: Path, *, model: str | None = None, since: float | None = None
) -> Iterator[tuple[str, str | None, str, float, dict[str, Any] | None, str, Any]]:
    """(model, version, variant, prediction time, answer, kind, outcome) of every feedback row
    (for ``model``'s predictions made since ``since``), oldest prediction first. Each row looks
    its prediction up by the request's primary key, so reading costs the feedback received,
    not the predictions served; the answer is None when the request had no such row."""
    query = (
        "SELECT r.model, r.version, r.variant, r.ts, "
        "json_extract(r.outputs, '$[' || CAST(substr(f.prediction_id, "
        "instr(f.prediction_id, ':') + 1) AS INTEGER) || ']'), f.kind, f.value "
        "FROM feedback AS f JOIN requests AS r "
        "ON r.request_id = substr(f.prediction_id, 1, instr(f.prediction_id, ':') - 1) "
        "WHERE (? IS NULL OR r.model = ?) AND (? IS NULL OR r.ts >= ?) ORDER BY r.ts"
    )
    with reading(store, ("requests", "feedback")) as conn:
        for name, version, variant, ts, output, kind, value in conn.execute(
            query, (model, model, since, since)
        ):
            answer = None if output is None else json.loads(output)
            yield name, version, variant, ts, answer, kind, json.loads(value)


def labelled_inputs(
    store: Path,
    *,
    model: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> tuple[int, list[tuple[str, float, dict[str, Any], str, Any]]]:
    """The predictions (of ``model``, made in [``since``, ``until``)) that received a ``label``
    or ``value`` as feedback, oldest first: (prediction id, prediction time, the features as
    sent, kind, the true label or value); and how many predictions that window holds in all.
    Each row's features are read from its request (``features`` names the columns of its
    ``inputs`` rows); rewards are not labels and are left out."""
    window = "(? IS NULL OR r.model = ?) AND (? IS NULL OR r.ts >= ?) AND (? IS NULL OR r.ts < ?)"
    params = (model, model, since, since, until, until)
    query = (
        "SELECT f.prediction_id, r.ts, r.features, json_extract(r.inputs, '$[' || CAST(substr("
        "f.prediction_id, instr(f.prediction_id, ':') + 1) AS INTEGER) || ']'), f.kind, f.value "
        "FROM feedback AS f JOIN requests AS r "
        "ON r.request_id = substr(f.prediction_id, 1, instr(f.prediction_id, ':') - 1) "
        f"WHERE f.kind IN ('label', 'value') AND {window} ORDER BY r.ts, f.prediction_id"
    )
    rows = []
    with reading(store, ("requests", "feedback")) as conn:
        (served,) = conn.execute(
            f"SELECT COALESCE(SUM(r.n), 0) FROM requests AS r WHERE {window} "
            "AND instr(r.request_id, '~') = 0",
            params,
        ).fetchone()
        for pid, ts, features, values, kind, value in conn.execute(query, params):
            if values is None:  # feedback naming a row its request did not have
                continue
            names = json.loads(features)
            inputs = dict(zip(names, json.loads(values), strict=True))
            rows.append((pid, float(ts), inputs, kind, json.loads(value)))
    return int(served), rows
