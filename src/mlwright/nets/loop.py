"""The epoch loop the Keras and JAX trainers share: seeded order, validation, early stopping,
checkpoints that resume exactly, progress and tracking; each framework gives a
:class:`Trainer` that knows how to take one epoch's steps and save its own state.

One epoch: the training examples in the order the seed and the epoch give
(:func:`~mlwright.nets.arrays.epoch_order`), the framework's steps (AdamW, the gradients'
total norm clipped, ``accumulate`` batches per step, the schedule), then the validation data
scored in inference mode, the monitored score, early stopping and a checkpoint written
atomically: weights, optimizer state, random state, the best weights and this loop's record. A
run started again over its checkpoint folder resumes after the last epoch it finished and ends
with the weights an uninterrupted run would have.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlwright.errors import ConfigError, MlwrightError
from mlwright.nets.arrays import Arrays, epoch_order, metric, split
from mlwright.nets.config import NetConfig
from mlwright.nets.run import (
    Epoch,
    LogFn,
    NetFit,
    NetTrainingError,
    Progress,
    Standing,
    check_monitor,
    check_same_config,
    config_data,
    config_digest,
    epoch_scores,
    tracked,
)

StepFn = Callable[[float, float | None], None]  # (the batch's loss, its gradient norm)


class Trainer(Protocol):
    """One framework's side of the loop, for one model and one training set."""

    device: str
    parameters: int
    architecture: str

    def train_epoch(self, data: Arrays, batch_size: int, on_step: StepFn) -> float:
        """Train on ``data`` in its order, calling ``on_step`` after every batch; the epoch's
        mean training loss."""
        ...

    def predict(self, data: Arrays) -> np.ndarray:
        """Raw outputs in inference mode."""
        ...

    def loss(self, out: np.ndarray, target: np.ndarray) -> float: ...

    def lr(self) -> float: ...

    def steps(self) -> int:
        """Optimizer steps taken so far."""
        ...

    def weights(self) -> Any:
        """A copy of the model's weights."""
        ...

    def set_weights(self, weights: Any) -> None: ...

    def save(self, path: Path, record: dict[str, Any], best: Any) -> None:
        """Write a checkpoint (everything an exact resume needs) atomically to ``path``."""
        ...

    def load(
        self, path: Path, check: Callable[[dict[str, Any]], None]
    ) -> tuple[dict[str, Any], Any]:
        """Restore the checkpoint at ``path`` once ``check`` accepted its record (before any
        state is touched); (the loop's record, the best weights)."""
        ...


def fit_arrays(
    config: NetConfig,
    kind: str,
    make_trainer: Callable[[Arrays], Trainer],
    *,
    data: Any = None,
    checkpoint: str = "last.ckpt",
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    log: LogFn | None = None,
    on_epoch: Callable[[Epoch], None] | None = None,
    verbose: bool = True,
    finish: Callable[[NetFit, Any], None] | None = None,
) -> NetFit:
    """Train ``config``'s model inside a tracked run (see :func:`mlwright.nets.run.tracked`)."""

    def train(logged: LogFn) -> NetFit:
        given = config_data(config) if data is None else data
        train_set, valid_set, held_out = split(config, given)
        trainer = make_trainer(train_set)
        probe = _framework_call(
            lambda: trainer.predict(train_set.take(slice(0, 2))), "calling the model", kind
        )
        for which, part in (("training", train_set), ("validation", valid_set)):
            if part is not None:
                check_targets(config, int(np.prod(probe.shape[1:])), part.target, which)
        monitor = config.train.monitor if valid_set is not None else "loss"
        check_monitor(monitor, config.metrics)
        folder = None if checkpoint_dir is None else Path(checkpoint_dir)
        path = None if folder is None else folder / checkpoint
        standing, best, resumed_from = Standing(), None, None
        if path is not None and resume and path.is_file():

            def same_config(record: dict[str, Any], path: Path = path) -> None:
                check_same_config(config, record.get("config_digest"), path, record.get("config"))

            record, best = trainer.load(path, same_config)
            standing = Standing.from_dict(record)
            resumed_from = standing.epoch
        _epochs(config, trainer, train_set, valid_set, standing, monitor,
                _Hooks(logged, on_epoch, Progress(verbose, config.name, config.train.epochs)),
                path, best, kind)  # fmt: skip
        if standing.best_weights is not None and valid_set is not None:
            trainer.set_weights(standing.best_weights)
        return NetFit(
            model=trainer, history=standing.history, best_epoch=standing.best_epoch,
            best_score=standing.best_score, monitor=monitor, validated=valid_set is not None,
            device=trainer.device, stopped_early=standing.stopped_early, checkpoint=folder,
            config=config, train_set=train_set, valid_set=valid_set, held_out=held_out,
            steps=trainer.steps(), resumed_from=resumed_from, parameters=trainer.parameters,
            architecture=trainer.architecture,
        )  # fmt: skip

    return tracked(config, kind, train, log=log, finish=finish)


class _Hooks:
    def __init__(
        self, log: LogFn, on_epoch: Callable[[Epoch], None] | None, show: Progress
    ) -> None:
        self.log, self.on_epoch, self.show = log, on_epoch, show


def _epochs(
    config: NetConfig,
    trainer: Trainer,
    train_set: Arrays,
    valid_set: Arrays | None,
    standing: Standing,
    monitor: str,
    hooks: _Hooks,
    path: Path | None,
    best: Any,
    kind: str,
) -> None:
    loop = config.train
    standing.best_weights = best
    try:
        for epoch in range(standing.epoch + 1, loop.epochs + 1):
            if standing.finished:
                break
            started = time.monotonic()
            order = epoch_order(loop.seed, epoch, len(train_set))
            batches = math.ceil(len(train_set) / loop.batch_size)
            hooks.show.start(epoch, batches)
            on_step, grad = _stepper(config, trainer, standing, epoch, batches, path, hooks)
            ordered = train_set.take(order)
            train_loss = _framework_call(
                lambda ordered=ordered, on_step=on_step: trainer.train_epoch(  # type: ignore[misc]
                    ordered, loop.batch_size, on_step
                ),
                f"training epoch {epoch}",
                kind,
            )
            val_loss, metrics = None, {}
            if valid_set is not None:
                out = _framework_call(lambda: trainer.predict(valid_set), "validating", kind)
                val_loss = trainer.loss(out, valid_set.target)
                metrics = {name: metric(name, out, valid_set.target) for name in config.metrics}
            record = Epoch(epoch, train_loss, val_loss, metrics, trainer.lr(),
                           time.monotonic() - started, grad[0])  # fmt: skip
            if standing.record(record, monitor, valid_set is not None, loop.patience):
                standing.best_weights = trainer.weights()
            if epoch == loop.epochs:
                standing.finished = True
            standing.step = trainer.steps()
            hooks.log(epoch_scores(record), standing.step)
            if path is not None:
                saved = {
                    "config_digest": config_digest(config),
                    "config": config.model_dump(mode="json"),
                    **standing.to_dict(),
                }
                trainer.save(path, saved, standing.best_weights)
            hooks.show.epoch(record, monitor, standing)
            if hooks.on_epoch is not None:
                hooks.on_epoch(record)
    finally:
        hooks.show.close()


def _framework_call(call: Callable[[], Any], doing: str, kind: str) -> Any:
    """``call()``; what the framework raises (a layer that does not fit the data, a forward pass
    that cannot be compiled) becomes an error that says where and what to check."""
    try:
        return call()
    except MlwrightError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise NetTrainingError(
            f"{doing} failed inside the framework: {type(exc).__name__}: {first}",
            fix=f"check that the model's layers fit the data's shapes and dtypes and that its "
            f"forward pass can be compiled (no NumPy calls or Python branches on values; "
            f"docs/{kind}.md)",
        ) from exc


def check_targets(config: NetConfig, width: int, target: np.ndarray, which: str) -> None:
    """Targets the loss can take from a model with ``width`` outputs per example, or a
    ConfigError naming the first that cannot be: checked before any training."""
    flat = target.reshape(len(target), -1).astype("float64")
    per_example = flat.shape[1]
    if not np.all(np.isfinite(flat)):
        row = int(np.argwhere(~np.isfinite(flat))[0][0])
        raise ConfigError(
            f"the {which} targets hold NaN or infinite values (example {row} first)",
            fix="drop or fill those examples in the data function",
        )
    loss = config.loss
    if loss == "cross_entropy":
        bad = (flat != np.round(flat)) | (flat < 0) | (flat >= width)
        if per_example != 1 or bad.any():
            row = int(np.argwhere(bad)[0][0]) if bad.any() else 0
            raise ConfigError(
                f"cross_entropy takes one class index per example, a whole number from 0 to "
                f"{width - 1} (the model gives {width} outputs); the {which} set's example "
                f"{row} has target {flat[row].tolist() if per_example > 1 else flat[row, 0]:g}"
                if per_example == 1 else
                f"cross_entropy takes one class index per example; the {which} targets have "
                f"{per_example} values each",
                fix="encode the labels as 0..K-1 and give the model's last layer one output per "
                "class (for values to predict, use mse or l1)",
            )  # fmt: skip
        return
    if per_example != width:
        raise ConfigError(
            f"the model gives {width} output(s) per example, but the {which} targets have "
            f"{per_example} value(s) each, which {loss} compares one to one",
            fix="make the model's last layer give one output per target value"
            + (" (cross_entropy takes one output per class)" if loss == "bce_with_logits" else ""),
        )
    if loss == "bce_with_logits" and ((flat < 0) | (flat > 1)).any():
        raise ConfigError(
            f"bce_with_logits takes targets between 0 and 1; the {which} targets hold "
            f"{flat.min():g} to {flat.max():g}",
            fix="give 0/1 labels (or probabilities), or use cross_entropy for class indices",
        )


def _stepper(
    config: NetConfig,
    trainer: Trainer,
    standing: Standing,
    epoch: int,
    batches: int,
    path: Path | None,
    hooks: _Hooks,
) -> tuple[StepFn, list[float | None]]:
    """The per-batch hook (a loss that is not finite stops training, naming the batch; the
    loss and gradient norm are logged every ``log_every`` batches of the run) and the epoch's
    largest gradient norm, filled in as batches pass."""
    largest: list[float | None] = [None]
    seen = [0]

    def on_step(loss: float, norm: float | None) -> None:
        seen[0] += 1
        if not math.isfinite(loss):
            kept = (
                f"the last good checkpoint (epoch {standing.epoch}) is kept in {path.parent}"
                if path is not None and standing.epoch
                else "no checkpoint was written before it"
            )
            raise NetTrainingError(
                f"the training loss became {loss} at epoch {epoch}, batch {seen[0]}: training "
                f"stopped; {kept}",
                fix="lower train.lr, keep train.clip_grad_norm on, and check the data for "
                "NaN or infinite values",
            )
        if norm is not None:
            largest[0] = norm if largest[0] is None else max(largest[0], norm)
        if ((epoch - 1) * batches + seen[0]) % config.train.log_every == 0:  # over the run
            scores = {"train_loss": loss} | ({} if norm is None else {"grad_norm": norm})
            hooks.log(scores, trainer.steps())
        hooks.show.advance()

    return on_step, largest


__all__ = ["StepFn", "Trainer", "check_targets", "fit_arrays"]
