"""The server's routes, one router per concern; handlers get the server's state through
``Depends`` (:data:`mlwright.serve.served.Server`)."""

from mlwright.serve.routes.admin import router as admin
from mlwright.serve.routes.experiments import router as experiments
from mlwright.serve.routes.feedback import router as feedback
from mlwright.serve.routes.mlflow import router as mlflow
from mlwright.serve.routes.monitoring import router as monitoring
from mlwright.serve.routes.operations import router as operations
from mlwright.serve.routes.prediction import router as prediction

__all__ = ["admin", "experiments", "feedback", "mlflow", "monitoring", "operations", "prediction"]
