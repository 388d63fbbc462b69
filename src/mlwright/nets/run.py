"""What every bring-your-own-model trainer shares: the user's functions found and called with
clear errors, the epoch record, early stopping's bookkeeping, the tracked run around a fit, and
the progress shown while it trains. Framework-free: nothing here imports torch, Keras or JAX.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mlwright.errors import ConfigError, MlwrightError
from mlwright.nets.config import LOWER_IS_BETTER, NetConfig

LogFn = Callable[[dict[str, float], int], None]


class NetTrainingError(MlwrightError):
    """Training your own model stopped; the message says why and what is kept."""


@dataclass
class Epoch:
    epoch: int
    train_loss: float
    val_loss: float | None
    metrics: dict[str, float]
    lr: float
    seconds: float
    # the largest total gradient norm seen before clipping this epoch (None: not measured)
    grad_norm: float | None


@dataclass
class Standing:
    """Early stopping's bookkeeping: the best epoch so far and how long ago it was."""

    epoch: int = 0  # the last finished epoch
    step: int = 0  # optimizer steps so far
    best_score: float | None = None
    best_epoch: int | None = None
    waited: int = 0  # epochs since the best one
    finished: bool = False
    stopped_early: bool = False
    history: list[Epoch] = field(default_factory=list)
    best_weights: Any = field(default=None, repr=False)  # kept by the trainer, not serialised

    def record(self, epoch: Epoch, monitor: str, validated: bool, patience: int | None) -> bool:
        """Add ``epoch``; whether it is the best so far. Sets ``finished`` when patience ran out
        (validated runs only)."""
        score = epoch.train_loss if epoch.val_loss is None else (
            epoch.val_loss if monitor == "loss" else epoch.metrics[monitor])  # fmt: skip
        better = self.best_score is None or (
            score < self.best_score if LOWER_IS_BETTER[monitor] else score > self.best_score
        )
        if better:
            self.best_score, self.best_epoch, self.waited = score, epoch.epoch, 0
        else:
            self.waited += 1
        self.history.append(epoch)
        self.epoch = epoch.epoch
        if validated and patience is not None and self.waited >= patience:
            self.finished = self.stopped_early = True
        return better

    def to_dict(self) -> dict[str, Any]:
        skip = ("history", "best_weights")
        state = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in skip}
        return {"state": state, "history": [asdict(e) for e in self.history]}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> Standing:
        standing = cls(**saved["state"])
        standing.history = [Epoch(**e) for e in saved["history"]]
        return standing


@dataclass
class NetFit:
    """A finished Keras or JAX fit: the model with the best epoch's weights (the last epoch's
    without validation) and how it got there."""

    model: Any
    history: list[Epoch]
    best_epoch: int | None
    best_score: float | None
    monitor: str
    validated: bool
    device: str
    stopped_early: bool
    checkpoint: Path | None
    config: NetConfig
    train_set: Any = field(repr=False)  # nets.arrays.Arrays
    valid_set: Any = field(repr=False)
    held_out: str = ""  # how the validation data was obtained
    steps: int = 0
    resumed_from: int | None = None  # the epoch a resumed run continued after
    run_id: str | None = None  # the MLflow run, when tracked
    parameters: int = 0
    architecture: str = ""


def epoch_scores(record: Epoch) -> dict[str, float]:
    """An epoch's scores as the tracked run's metric curves."""
    scores = {"epoch_train_loss": record.train_loss, "lr": record.lr}
    if record.val_loss is not None:
        scores["val_loss"] = record.val_loss
    scores.update({f"val_{k}": v for k, v in record.metrics.items()})
    return scores


def check_monitor(monitor: str, metrics: tuple[str, ...]) -> None:
    if monitor not in ("loss", *metrics):
        raise ConfigError(
            f"train.monitor is {monitor!r}, which is neither 'loss' nor one of the metrics",
            fix=f"use loss or one of {list(metrics)}",
        )


def resolve(reference: str, what: str) -> Callable[..., Any]:
    """``module:function`` → the function, or a clear error naming what could not be found."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"the {what} {reference!r}: module {module_name!r} cannot be imported ({exc})",
            fix="check the module path; run from the folder that holds it, or install it",
        ) from None
    target = getattr(module, attribute, None)
    if not callable(target):
        raise ConfigError(
            f"the {what} {reference!r}: {module_name!r} has no function {attribute!r}",
            fix=f"define {attribute}() in {module_name}, or fix the name in the config",
        )
    return target  # type: ignore[no-any-return]


def call_user(
    reference: str,
    given: Callable[..., Any] | None,
    what: str,
    key: str,
    *arguments: Any,
    error: type[MlwrightError] = NetTrainingError,
) -> Any:
    """The user's function (``given``, else the config's ``reference``) called with the
    config's ``key`` settings; what it raises is reported with both named."""
    function = given or resolve(reference, what)
    try:
        return function(*arguments)
    except Exception as exc:
        raise error(
            f"the {what} {reference!r} raised {type(exc).__name__}: {exc}",
            fix=f"check the {what} and the `{key}` of the config",
        ) from exc


def config_data(config: NetConfig, error: type[MlwrightError] = NetTrainingError) -> Any:
    """What the config's data function returns for its ``data_params``."""
    return call_user(config.data, None, "data function", "data_params", config.data_params,
                     error=error)  # fmt: skip


def refuse_unclipped(config: NetConfig, recurrent: list[str]) -> None:
    """A ConfigError when ``recurrent`` names layers and gradient clipping is off."""
    if recurrent and config.train.clip_grad_norm is None:
        raise ConfigError(
            f"gradient clipping is off, but the model has recurrent or attention layers "
            f"({', '.join(recurrent[:3])}), whose gradients explode without it",
            fix="set train.clip_grad_norm (1.0 is a good start)",
        )


def unreadable_checkpoint(
    path: Path, exc: Exception, error: type[MlwrightError] = NetTrainingError
) -> MlwrightError:
    reason = f"{type(exc).__name__}: {exc}"
    if "pickle" in reason:  # NumPy's own advice (to unpickle it) is not to be followed
        reason = "it holds Python objects, which are never loaded"
    return error(
        f"the checkpoint {path} cannot be read ({reason})",
        fix="delete it to start afresh, or point at another checkpoint folder",
    )


def _changed(saved: Any, now: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(now, dict):
        keys = sorted(set(saved) | set(now))
        return [c for k in keys for c in _changed(saved.get(k), now.get(k), f"{prefix}{k}.")]
    return [] if saved == now else [prefix.rstrip(".")]


def check_same_config(
    config: NetConfig, digest: object, path: Path, saved: dict[str, Any] | None = None
) -> None:
    """A ConfigError when a checkpoint's ``digest`` is not this configuration's, naming the
    settings that changed when the checkpoint holds its configuration (``saved``)."""
    if digest != config_digest(config):
        changed = _changed(saved, config.model_dump(mode="json")) if saved else []
        named = f" ({', '.join(changed[:5])} changed)" if changed else ""
        raise ConfigError(
            f"the checkpoint {path} was written by a run with another configuration{named}",
            fix="resume with the same config, or start afresh: `--no-resume` (resume=False in "
            "Python) or another checkpoint folder",
        )


def config_digest(config: NetConfig) -> str:
    """What a checkpoint must have been trained with to be resumed: the same configuration."""
    settings = config.model_dump(mode="json")
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


class Finished(Protocol):
    history: list[Epoch]
    best_score: float | None
    monitor: str
    run_id: str | None


R = TypeVar("R", bound=Finished)


def tracked(
    config: NetConfig,
    kind: str,
    train: Callable[[LogFn], R],
    *,
    log: LogFn | None = None,
    finish: Callable[[R, Any], None] | None = None,
) -> R:
    """``train(log)`` inside a tracked run (``config.tracker``, MLflow by default): the whole
    config as parameters, what ``train`` logs as metric curves, the history as
    ``history.json`` and the best score at the end; ``finish(result, tracker)`` runs before the
    run closes (packaging and registering)."""
    from mlwright.track.base import make_tracker
    from mlwright.train.runner import library_versions

    tracker = make_tracker(config.tracker)
    tags = {"mlwright.seed": str(config.train.seed), "mlwright.kind": kind}
    tags.update({f"mlwright.lib.{k}": v for k, v in library_versions().items()})
    tracker.start(
        experiment=config.experiment or config.name,
        run_name=f"train-{kind} {config.name}",
        params={"config": config.model_dump(mode="json")},
        tags=tags,
    )

    def logged(metrics: dict[str, float], step: int) -> None:
        tracker.log_step(metrics, step)
        if log is not None:
            log(metrics, step)

    try:
        result = train(logged)
        tracker.log_dict({"history": [asdict(e) for e in result.history]}, "history.json")
        if result.best_score is not None:
            tracker.log_metrics({f"best_{result.monitor}": result.best_score})
        result.run_id = getattr(tracker, "run_id", None)
        if finish is not None:
            finish(result, tracker)
    except BaseException as exc:
        with contextlib.suppress(Exception):  # the original error matters more
            tracker.finish(False, killed=isinstance(exc, KeyboardInterrupt))
        raise
    tracker.finish(True)
    return result


class Progress:
    """A progress bar per epoch on a terminal, one line per epoch otherwise; silent when not
    verbose."""

    def __init__(self, verbose: bool, name: str, epochs: int) -> None:
        from rich.console import Console

        self.console = Console(stderr=True) if verbose else None
        self.name = name
        self.epochs = epochs
        self.bar: Any = None
        self.task: Any = None

    def start(self, epoch: int, batches: int) -> None:
        if self.console is None or not self.console.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.close()
        self.bar = Progress(
            f"{self.name} epoch {epoch}/{self.epochs}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=self.console, transient=True,
        )  # fmt: skip
        self.task = self.bar.add_task("batches", total=batches)
        self.bar.start()

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def epoch(self, record: Epoch, monitor: str, state: Standing) -> None:
        self.close()
        if self.console is None:
            return
        parts = [f"train loss {record.train_loss:.4f}"]
        if record.val_loss is not None:
            parts.append(f"val loss {record.val_loss:.4f}")
        parts += [f"{k} {v:.4f}" for k, v in record.metrics.items()]
        parts += [f"lr {record.lr:.2e}", f"{record.seconds:.1f} s"]
        best = " (best)" if state.best_epoch == record.epoch else ""
        self.console.print(
            f"epoch {record.epoch}/{self.epochs}: {', '.join(parts)}{best}",
            highlight=False,
            soft_wrap=True,
        )
        if state.stopped_early:
            self.console.print(
                f"stopped early: no better {monitor} for {state.waited} epochs; best epoch "
                f"{state.best_epoch}",
                highlight=False,
                soft_wrap=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


__all__ = [
    "Epoch",
    "LogFn",
    "NetFit",
    "NetTrainingError",
    "Progress",
    "Standing",
    "call_user",
    "check_monitor",
    "check_same_config",
    "config_data",
    "config_digest",
    "epoch_scores",
    "refuse_unclipped",
    "resolve",
    "tracked",
    "unreadable_checkpoint",
]
