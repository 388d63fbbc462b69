"""The tracker interface the training run talks to, and the helpers trackers share.

A tracker receives one training run: its parameters and tags, the dataset, one child record per
trial, the final metrics and the model package. MLflow is the default (``track/mlflow.py``);
Weights & Biases can log the same run as well (``track/wandb.py``). Trackers never change what
is trained.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from mlwright.package.model import Model
    from mlwright.package.tensor import TensorModel


class Tracker:
    """Does nothing; subclasses log. Every hook may be called at most as documented here."""

    uri: str | None = None
    active = False  # True for trackers that record anything

    def start(
        self, *, experiment: str, run_name: str, params: dict[str, Any], tags: dict[str, str]
    ) -> None:
        """Open the run (once, before the search)."""

    def log_dataset(
        self, frame: pd.DataFrame, *, source: str, name: str, target: str, digest: str
    ) -> None:
        """Record the training data as the run's input."""

    def log_dict(self, value: dict[str, Any], filename: str) -> None:
        """Store a JSON artifact with the run."""

    def log_folder(self, folder: Path, artifact_path: str) -> None:
        """Store a folder's files with the run, under ``artifact_path``."""

    def log_trial(
        self, trial: dict[str, Any], metric: str, curves: list[tuple[str, float, int]]
    ) -> None:
        """One trial: hyperparameters, fold scores, and per-epoch curves (key, value, step)."""

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Final metrics of the run."""

    def log_step(self, metrics: dict[str, float], step: int) -> None:
        """Metrics of the run at a training step (curves of a PyTorch run)."""

    def log_model(self, model: Model | TensorModel, package: Path) -> dict[str, Any] | None:
        """Log (and register) the package; returns what was recorded (e.g. name, version)."""
        return None

    def finish(self, ok: bool, *, killed: bool = False) -> None:
        """Close the run as finished or failed (``killed``: stopped by a signal or Ctrl-C)."""


class Trackers(Tracker):
    """Several trackers as one; the first one's registry answer is kept."""

    active = True

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers
        self.uri = next((t.uri for t in trackers if t.uri), None)

    def start(self, **kwargs: Any) -> None:
        for t in self.trackers:
            t.start(**kwargs)

    def log_dataset(self, frame: pd.DataFrame, **kwargs: Any) -> None:
        for t in self.trackers:
            t.log_dataset(frame, **kwargs)

    def log_dict(self, value: dict[str, Any], filename: str) -> None:
        for t in self.trackers:
            t.log_dict(value, filename)

    def log_trial(
        self, trial: dict[str, Any], metric: str, curves: list[tuple[str, float, int]]
    ) -> None:
        for t in self.trackers:
            t.log_trial(trial, metric, curves)

    def log_folder(self, folder: Path, artifact_path: str) -> None:
        for t in self.trackers:
            t.log_folder(folder, artifact_path)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        for t in self.trackers:
            t.log_metrics(metrics)

    def log_step(self, metrics: dict[str, float], step: int) -> None:
        for t in self.trackers:
            t.log_step(metrics, step)

    def log_model(self, model: Model | TensorModel, package: Path) -> dict[str, Any] | None:
        answers = [t.log_model(model, package) for t in self.trackers]
        return next((a for a in answers if a), None)

    def finish(self, ok: bool, *, killed: bool = False) -> None:
        for t in self.trackers:
            t.finish(ok, killed=killed)


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested mappings as dotted keys with string values (for parameter stores)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}{key}."))
        return out
    out[prefix.rstrip(".")] = str(value)[:6000]
    return out


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit of the git repository around ``cwd``, if there is one."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def make_tracker(names: tuple[str, ...], *, experiment_hint: str | None = None) -> Tracker:
    """Trackers by name: ``mlflow`` (default), ``wandb`` (in addition), ``none``."""
    if "none" in names:
        return Tracker()
    chosen: list[Tracker] = []
    if "mlflow" in names or "wandb" in names:
        from mlwright.track.mlflow import MlflowTracker

        chosen.append(MlflowTracker())
    if "wandb" in names:
        from mlwright.track.wandb import WandbTracker

        chosen.append(WandbTracker())
    return chosen[0] if len(chosen) == 1 else Trackers(chosen)
