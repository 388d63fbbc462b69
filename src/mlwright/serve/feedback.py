"""``POST /v1/feedback``: outcomes for served predictions, stored on their own.

An item names the ``prediction_id`` the server answered with and one outcome: the true
``label`` (classification), the true ``value`` (regression) or a ``reward`` (any number the
business counts, e.g. 1 for a conversion). Feedback is stored in the serving store keyed by
``prediction_id`` and joined to the prediction and its variant when read, so it may arrive
before the prediction is flushed, and it survives restarts. Sending the same feedback again is
harmless (200); different feedback for a prediction that already has some is a conflict (409)
and changes nothing. A batch (``{"items": [...]}``) is stored whole or not at all.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlwright.serve.store import connect

MAX_ITEMS = 10_000
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}:\d{1,9}$")


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(description="`<request_id>:<row>` from a predict response")
    label: str | int | float | bool | None = None
    value: float | None = None
    reward: float | None = None
    covariate: float | None = Field(
        default=None,
        description="optional pre-period value of the same entity (e.g. last month's spend): "
        "the analysis uses it for CUPED variance reduction",
    )

    @model_validator(mode="after")
    def _one_outcome(self) -> FeedbackItem:
        if not _ID.match(self.prediction_id):
            raise ValueError(
                f"prediction_id {self.prediction_id[:80]!r} is not `<request_id>:<row>` as "
                "returned by /v1/predict"
            )
        given = [k for k in ("label", "value", "reward") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of label, value or reward"
                + (f" (got {', '.join(given)})" if given else "")
            )
        for key in ("value", "reward", "covariate"):
            number = getattr(self, key)
            if number is not None and not math.isfinite(number):
                raise ValueError(f"{key} must be a finite number")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("label", "value", "reward") if getattr(self, k) is not None)

    @property
    def outcome(self) -> Any:
        return getattr(self, self.kind)


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[FeedbackItem] = Field(min_length=1, max_length=MAX_ITEMS)


def parse(body: Any) -> list[FeedbackItem]:
    """One item or ``{"items": [...]}``; raises pydantic's ValidationError."""
    if isinstance(body, dict) and "items" in body:
        return FeedbackBatch.model_validate(body).items
    return [FeedbackItem.model_validate(body)]


def record(store: Path, items: list[FeedbackItem]) -> tuple[int, int, list[dict[str, Any]]]:
    """Store ``items`` in one transaction: (newly stored, repeats, conflicts). With any
    conflict nothing is stored and the conflicts are returned as error items."""
    now = time.time()
    rows = [(i.prediction_id, i.kind, json.dumps(i.outcome), i.covariate) for i in items]
    conn = connect(store)
    try:
        conn.execute("BEGIN IMMEDIATE")
        ids = sorted({r[0] for r in rows})
        existing: dict[str, tuple[str, str, float | None]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for pid, kind, value, covariate in conn.execute(
                "SELECT prediction_id, kind, value, covariate FROM feedback "
                f"WHERE prediction_id IN ({marks})",
                chunk,
            ):
                existing[pid] = (kind, value, covariate)
        conflicts, fresh, repeats = [], [], 0
        seen: dict[str, tuple[str, str, float | None]] = {}
        for index, (pid, kind, value, covariate) in enumerate(rows):
            before = existing.get(pid) or seen.get(pid)
            if before is None:
                seen[pid] = (kind, value, covariate)
                fresh.append((pid, now, kind, value, covariate))
            elif before == (kind, value, covariate):
                repeats += 1
            else:
                conflicts.append(
                    {
                        "record": index,
                        "field": kind,
                        "value": json.loads(value),
                        "reason": f"prediction {pid!r} already has feedback "
                        f"{before[0]}={json.loads(before[1])!r}",
                        "fix": "feedback is written once per prediction; send the same value "
                        "again, or nothing",
                    }
                )
        if conflicts:
            conn.execute("ROLLBACK")
            return 0, repeats, conflicts
        conn.executemany(
            "INSERT INTO feedback (prediction_id, ts, kind, value, covariate) "
            "VALUES (?, ?, ?, ?, ?)",
            fresh,
        )
        conn.execute("COMMIT")
        return len(fresh), repeats, []
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
