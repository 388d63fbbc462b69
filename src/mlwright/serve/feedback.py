"""``POST /v1/feedback``: outcomes for served predictions, stored on their own.

An item names the ``prediction_id`` the server answered with and one outcome: the true
``label`` (classification: one of the model's classes, exactly as the predictions spell them),
the true ``value`` (regression: a finite number; a number sent as ``label`` means the same) or a
``reward`` (any finite number the business counts, e.g. 1 for a conversion). Anything else is
refused with 422 before anything is stored, so live performance only ever counts real outcomes.

Feedback is stored in the serving store keyed by ``prediction_id`` and joined to the prediction
and its variant when read, so it may arrive before the prediction is flushed, and it survives
restarts. Sending the same feedback again is harmless (200); different feedback for a prediction
that already has some is a conflict (409) and changes nothing, unless the item says
``"replace": true``: then it replaces what was stored (a correction), and every read joins the
new outcome. A batch (``{"items": [...]}``) is stored whole or not at all.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeGuard

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mlwright.serve.bodies import BodyError
from mlwright.serve.bodies import parse as parse_body
from mlwright.serve.schemas import error_body, jsonable, kind_of, validation_items
from mlwright.store.feedback import Row, writing_feedback

MAX_ITEMS = 10_000
ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}:[0-9]{1,9}$"
_ID = re.compile(ID_PATTERN)
KINDS = ("label", "value", "reward")


def _finite(value: Any) -> Any:
    """A finite JSON number (or null: not given); never a boolean or a string."""
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise PydanticCustomError(
            "number_expected",
            "expected a finite number, got {got}",
            {"got": kind_of(value), "fix": "send a JSON number"},
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise PydanticCustomError(
            "finite_number",
            "must be a finite number, got {got}",
            {"got": str(value)[:40], "fix": "send a finite JSON number"},
        )
    return number


def _scalar(value: Any) -> Any:
    """A label: a string, number or boolean (or null: not given)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise PydanticCustomError(
        "label_expected",
        "expected a label (a string, number or boolean), got {got}",
        {"got": kind_of(value), "fix": "send the true label exactly as predictions spell it"},
    )


Number = Annotated[float | None, BeforeValidator(_finite)]
Label = Annotated[str | int | float | bool | None, BeforeValidator(_scalar)]


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(
        description="`<request_id>:<row>` from a predict response",
        json_schema_extra={"pattern": ID_PATTERN, "minLength": 1},
    )
    label: Label = Field(default=None, description="the true class (classification)")
    value: Number = Field(default=None, description="the true value (regression)")
    reward: Number = Field(default=None, description="any number the business counts")
    covariate: Number = Field(
        default=None,
        description="optional pre-period value of the same entity (e.g. last month's spend): "
        "the analysis uses it for CUPED variance reduction",
    )
    replace: StrictBool = Field(
        default=False,
        description="true replaces feedback already stored for this prediction (a correction); "
        "without it, different feedback for the same prediction is a 409",
    )

    @model_validator(mode="after")
    def _one_outcome(self) -> FeedbackItem:
        if not _ID.fullmatch(self.prediction_id):
            raise ValueError(
                f"prediction_id {self.prediction_id[:80]!r} is not `<request_id>:<row>` as "
                "returned by /v1/predict"
            )
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of label, value or reward"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

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


@dataclass(frozen=True)
class Outcomes:
    """What feedback means for one model: regression takes true values, classification one
    of its classes."""

    regression: bool
    classes: tuple[Any, ...] = ()

    @classmethod
    def of(cls, task: str, classes: Any) -> Outcomes:
        return cls(task == "regression", tuple(classes or ()))

    def check(
        self, items: list[FeedbackItem], batch: bool
    ) -> tuple[list[FeedbackItem], list[dict[str, Any]]]:
        """The items as they are stored (a regression label is its true value, a class label
        the class as the model spells it), and an error item for each that is refused."""
        kept, errors = [], []
        for index, item in enumerate(items):
            checked = self._item(item)
            if isinstance(checked, FeedbackItem):
                kept.append(checked)
            else:
                errors.append({"record": index if batch else None, **checked})
        return kept, errors

    def _item(self, item: FeedbackItem) -> FeedbackItem | dict[str, Any]:
        if self.regression:
            if item.label is None:
                return item
            number = item.label
            if _is_number(number) and math.isfinite(number):
                return item.model_copy(update={"label": None, "value": float(number)})
            return _refusal(
                "label",
                item.label,
                f"{kind_of(item.label)} is not a true value: this is a regression model",
                'send the true value as a finite number, e.g. {"value": 12.5}',
            )
        if item.value is not None:
            return _refusal(
                "value",
                item.value,
                "this is a classification model: its outcome is the true class, not a value",
                f'send {{"label": ...}} with one of {self._listed()}',
            )
        if item.label is None:
            return item
        found = _class_of(item.label, self.classes)
        if found is None:
            return _refusal(
                "label",
                item.label,
                f"{item.label!r} is not one of the model's classes",
                f"send one of {self._listed()} (spelled and typed as in the predictions)",
            )
        return item.model_copy(update={"label": found})

    def _listed(self) -> str:
        shown = ", ".join(repr(c) for c in self.classes[:20])
        return shown + (f" … ({len(self.classes)} classes)" if len(self.classes) > 20 else "")

    def schema(self) -> dict[str, Any]:
        """The JSON schema of one item for this model (the body of /docs)."""
        item = FeedbackItem.model_json_schema()
        properties = item["properties"]
        kinds: tuple[str, ...] = KINDS
        if self.regression:
            properties["label"] = {
                "anyOf": [{"type": "number"}, {"type": "null"}],
                "description": "the true value (the same as `value`)",
            }
        else:
            properties["label"] = {
                "anyOf": [{"enum": list(self.classes)}, {"type": "null"}],
                "description": "the true class, one of the model's classes",
            }
            del properties["value"]
            kinds = ("label", "reward")
        # exactly one outcome that is not null
        item["oneOf"] = [
            {"required": [k], "properties": {k: {"not": {"type": "null"}}}} for k in kinds
        ]
        return item


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _class_of(label: Any, classes: tuple[Any, ...]) -> Any:
    """The class ``label`` names (same JSON type and value), or None."""
    for known in classes:
        if isinstance(label, bool) or isinstance(known, bool):
            same = type(label) is type(known) and label == known
        else:
            same = isinstance(label, str) == isinstance(known, str) and label == known
        if same:
            return known
    return None


def _refusal(field: str, value: Any, reason: str, fix: str) -> dict[str, Any]:
    return {"field": field, "value": jsonable(value), "reason": reason, "fix": fix}


def batch_schema(item_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"$ref": item_ref},
                "minItems": 1,
                "maxItems": MAX_ITEMS,
            }
        },
        "required": ["items"],
        "additionalProperties": False,
    }


async def answer(store: str | None, request: Request, outcomes: Outcomes) -> JSONResponse:
    """``POST /v1/feedback`` (both servers): parse, check against the model, then store in
    one transaction."""
    if not store:
        return JSONResponse(
            error_body("this server keeps no serving store", "start it with --store PATH"),
            status_code=503,
        )
    try:
        body = parse_body(await request.body())
        items = parse(body)
    except BodyError as exc:
        return JSONResponse({"errors": [exc.item()]}, status_code=422)
    except ValidationError as exc:
        return JSONResponse(
            {"errors": validation_items(exc.errors(include_url=False))}, status_code=422
        )
    items, refused = outcomes.check(items, isinstance(body, dict) and "items" in body)
    if refused:
        return JSONResponse({"errors": refused[:100]}, status_code=422)
    stored, repeats, conflicts = await asyncio.to_thread(record, Path(store), items)
    if conflicts:
        return JSONResponse({"errors": conflicts[:100]}, status_code=409)
    return JSONResponse({"stored": stored, "repeats": repeats})


def record(store: Path, items: list[FeedbackItem]) -> tuple[int, int, list[dict[str, Any]]]:
    """Store ``items`` in one transaction: (stored or replaced, repeats, conflicts). With any
    conflict nothing is stored and the conflicts are returned as error items."""
    now = time.time()
    with writing_feedback(store) as table:
        existing = table.get(sorted({i.prediction_id for i in items}))
        writes: dict[str, Row] = {}
        conflicts, repeats, stored = [], 0, 0
        for index, item in enumerate(items):
            pid = item.prediction_id
            row: Row = (item.kind, json.dumps(item.outcome), item.covariate)
            before = writes.get(pid) or existing.get(pid)
            if before == row:
                repeats += 1
            elif before is None or item.replace:
                writes[pid] = row
                stored += 1
            else:
                conflicts.append(_conflict(index, pid, row, before))
        if conflicts:
            return 0, repeats, conflicts  # the transaction ends having written nothing
        table.put(writes, now)
    return stored, repeats, []


def _conflict(index: int, pid: str, row: Row, before: Row) -> dict[str, Any]:
    return {
        "record": index,
        "field": row[0],
        "value": json.loads(row[1]),
        "reason": f"prediction {pid!r} already has feedback {before[0]}={json.loads(before[1])!r}",
        "fix": 'send the same feedback again, or add "replace": true to correct what is stored',
    }
