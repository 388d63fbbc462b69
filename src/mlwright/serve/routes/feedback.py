"""``POST /v1/feedback``: outcomes for served predictions, into the serving store."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mlwright.serve.feedback import answer
from mlwright.serve.schemas import documented
from mlwright.serve.served import Server

router = APIRouter()


@router.post("/v1/feedback", tags=["feedback"], responses=documented(409, 413, 415, 422, 503))
async def feedback(request: Request, server: Server) -> JSONResponse:
    """Outcomes for served predictions: `{"prediction_id", "label" | "value" | "reward"}`,
    or `{"items": [...]}`. A label must be one of the model's classes (regression: a
    finite number). A repeat is 200; different feedback for the same prediction is 409
    and stores nothing, unless the item says `"replace": true` (a correction)."""
    return await answer(server.settings.store, request, server.served.outcomes)
