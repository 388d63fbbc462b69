"""``POST /v1/predict``. On a tabular server the request is answered by the fast lane in front
of the framework (:mod:`mlwright.serve.predict`); the route is here for /docs and for servers
without a lane. The request body in /docs is the model's own (``Served.document``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mlwright.serve.predict import PATH
from mlwright.serve.schemas import PredictResponse, documented
from mlwright.serve.served import Server

router = APIRouter()


@router.post(
    PATH,
    tags=["predict"],
    response_model=PredictResponse,
    responses=documented(413, 415, 422, 503),
)
async def predict(request: Request, server: Server) -> Response:
    """Score records; one prediction per record, in order, each with a prediction_id."""
    request_id = request_id_of(request)
    headers = dict(request.scope.get("headers") or [])
    status, body = await server.served.predict(await request.body(), request_id, headers)
    return Response(body, status_code=status, media_type="application/json")


def request_id_of(request: Request) -> str:
    """The id the access log gave the request (a new one when it runs without it)."""
    return str(request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex)
