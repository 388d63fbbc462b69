"""Weights & Biases: the same run, logged alongside MLflow (``--tracker wandb``).

W&B has no child runs: each trial becomes one row of a ``trials`` table and points on the
``trial/*`` charts; final metrics go to the run summary; the package is a ``model`` artifact.
``WANDB_MODE=offline`` keeps everything on disk (``wandb sync`` uploads it later).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwright.errors import MlwrightError
from mlwright.track.base import Tracker, flatten

if TYPE_CHECKING:
    import pandas as pd

    from mlwright.package.model import Model
    from mlwright.package.tensor import TensorModel


class WandbTracker(Tracker):
    active = True

    def __init__(self) -> None:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise MlwrightError(
                "--tracker wandb needs the wandb package", fix="pip install 'mlwright[wandb]'"
            ) from None
        self.run: Any = None
        self.rows: list[Any] = []

    def start(
        self, *, experiment: str, run_name: str, params: dict[str, Any], tags: dict[str, str]
    ) -> None:
        import wandb

        self.run = wandb.init(
            project=experiment,
            name=run_name,
            config=flatten(params),
            tags=[f"{k}={v}"[:64] for k, v in tags.items() if k.startswith("mlwright.")][:20],
            reinit="create_new",
        )

    def log_dataset(
        self, frame: pd.DataFrame, *, source: str, name: str, target: str, digest: str
    ) -> None:
        self.run.config.update(
            {
                "data.source": source,
                "data.name": name,
                "data.target": target,
                "data.digest": digest,
                "data.rows": len(frame),
            },
            allow_val_change=True,
        )

    def log_dict(self, value: dict[str, Any], filename: str) -> None:
        import wandb

        artifact = wandb.Artifact(filename.replace(".", "-"), type="run-file")
        with artifact.new_file(filename) as fh:
            import json

            json.dump(value, fh, default=str)
        self.run.log_artifact(artifact)

    def log_folder(self, folder: Path, artifact_path: str) -> None:
        import wandb

        artifact = wandb.Artifact(artifact_path.replace("/", "-"), type="run-folder")
        artifact.add_dir(str(folder))
        self.run.log_artifact(artifact)

    def log_trial(
        self, trial: dict[str, Any], metric: str, curves: list[tuple[str, float, int]]
    ) -> None:
        self.rows.append(
            [
                trial["number"],
                trial["family"],
                trial["status"],
                trial["mean"],
                trial["std"],
                trial["seconds"],
            ]
        )
        if trial["mean"] is not None:
            self.run.log({f"trial/mean_{metric}": trial["mean"], "trial/number": trial["number"]})

    def log_metrics(self, metrics: dict[str, float]) -> None:
        self.run.summary.update(metrics)

    def log_step(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def log_model(self, model: Model | TensorModel, package: Path) -> dict[str, Any] | None:
        import wandb

        artifact = wandb.Artifact(
            model.name,
            type="model",
            metadata={
                "family": getattr(getattr(model, "family", None), "name", "torch"),
                "task": model.task,
            },
        )
        artifact.add_dir(str(package))
        self.run.log_artifact(artifact)
        return None

    def finish(self, ok: bool, *, killed: bool = False) -> None:
        if self.run is None:
            return
        import wandb

        table = wandb.Table(
            columns=["trial", "family", "status", "mean", "std", "seconds"], data=self.rows
        )
        self.run.log({"trials": table})
        self.run.finish(exit_code=0 if ok else 1)
