"""``POST /invocations``: MLflow's scoring protocol, answered in MLflow's shapes (errors as
``{"error_code", "message"}``, 400 for invalid input, as ``mlflow models serve`` does).

On a tabular server the request is answered by the fast lane in front of the framework
(:mod:`mlwright.serve.invocations`); the route is here for /docs and for servers without a lane
(a PyTorch package's)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mlwright.serve.routes.prediction import request_id_of
from mlwright.serve.schemas import MlflowError, documented
from mlwright.serve.served import Server

router = APIRouter()


@router.post(
    "/invocations",
    tags=["mlflow"],
    responses={
        400: {"model": MlflowError, "description": "invalid input (MLflow's error shape)"},
        503: {"model": MlflowError, "description": "the model is not ready"},
        **documented(413, 415),
    },
)
async def invocations(request: Request, server: Server) -> JSONResponse:
    """What `mlflow models serve` accepts (tabular: dataframe_split, dataframe_records,
    instances or inputs as JSON, or a text/csv body; PyTorch: inputs or instances); answers
    {"predictions": [...]}."""
    body = await request.body()
    status, answer = await server.served.invocations(body, request_id_of(request))
    return JSONResponse(answer, status_code=status)


def mlflow_error(status: int, message: str) -> tuple[int, dict[str, str]]:
    """An answer in MLflow's error shape."""
    code = "BAD_REQUEST" if status == 400 else "TEMPORARILY_UNAVAILABLE"
    return status, {"error_code": code, "message": message}
