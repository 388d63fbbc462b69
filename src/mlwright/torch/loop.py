"""The trainer behind :func:`mlwright.torch.fit`: a seeded, validated, checkpointed loop.

Imported only when a PyTorch model is trained, so torch is imported at the top here.

One epoch: shuffle (a seeded generator), forward under autocast on CUDA, the loss (divided by
``accumulate``), backward through the gradient scaler, and every ``accumulate`` batches one
optimizer step: unscale, clip the gradients' total norm, step AdamW, step the schedule. Then
validation without gradients (``eval()``, ``no_grad()``), the monitored score, early stopping,
and a checkpoint written atomically: model, optimizer, schedule, scaler, every random state
(Python, NumPy, torch, CUDA, the loader's generator), the epoch, the best score and weights. A
run started again over its checkpoint folder resumes from the last epoch it finished and ends
with exactly the weights an uninterrupted run would have.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, random_split

from mlwright.errors import ConfigError
from mlwright.nets.config import LOWER_IS_BETTER
from mlwright.nets.run import (
    Epoch,
    LogFn,
    NetTrainingError,
    Progress,
    Standing,
    check_monitor,
    check_same_config,
    config_digest,
    epoch_scores,
    refuse_unclipped,
    resolve,
    tracked,
    unreadable_checkpoint,
)
from mlwright.nets.run import call_user as _call_user
from mlwright.torch.config import TorchConfig

CHECKPOINT = "last.pt"
RECURRENT = (nn.RNNBase, nn.Transformer, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer,
             nn.MultiheadAttention)  # fmt: skip


class TorchTrainingError(NetTrainingError):
    """Training a PyTorch model stopped; the message says why and what is kept."""


@dataclass
class FitResult:
    model: nn.Module  # with the best epoch's weights (the last epoch's without validation)
    history: list[Epoch]
    best_epoch: int | None
    best_score: float | None
    monitor: str
    validated: bool
    device: str
    stopped_early: bool
    checkpoint: Path | None
    config: TorchConfig
    steps: int = 0
    resumed_from: int | None = None  # the epoch a resumed run continued after
    run_id: str | None = None  # the MLflow run, when tracked
    notes: list[str] = field(default_factory=list)
    train_set: Any = field(default=None, repr=False)  # the datasets the run used
    valid_set: Any = field(default=None, repr=False)
    held_out: str = ""  # how the validation data was obtained


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy, torch and CUDA; the generator the training loader shuffles with."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: each worker's Python and NumPy seeds follow torch's."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def call_user(
    reference: str, given: Callable[..., Any] | None, what: str, key: str, argument: Any
) -> Any:
    """The user's function (``given``, else the config's ``reference``) called with the
    config's ``key`` settings; what it raises is reported with both named."""
    return _call_user(reference, given, what, key, argument, error=TorchTrainingError)


def build_model(config: TorchConfig, factory: Callable[..., Any] | None) -> nn.Module:
    model = call_user(config.model, factory, "model factory", "params", config.params)
    if not isinstance(model, nn.Module):
        raise TorchTrainingError(
            f"the model factory {config.model!r} returned {type(model).__name__}, not an nn.Module",
            fix="return the model (an nn.Module) from the factory",
        )
    recurrent = [f"{type(m).__name__} at {name or 'the top'!r}" for name, m in
                 model.named_modules() if isinstance(m, RECURRENT)]  # fmt: skip
    refuse_unclipped(config, recurrent)
    return model


def split_data(config: TorchConfig, data: Any) -> tuple[Dataset[Any], Dataset[Any] | None, str]:
    """(train, validation, how): what the data function gave (a ``(train, validation)`` tuple,
    a ``{"train", "validation"}`` mapping), or one dataset split by the seed."""
    if isinstance(data, dict):
        unknown = set(data) - {"train", "validation"}
        if unknown or "train" not in data:
            raise ConfigError(
                f"the data function returned a mapping with keys {sorted(data)}",
                fix="return {'train': ..., 'validation': ...}, a (train, validation) pair, or "
                "one dataset",
            )
        data = (data["train"], data.get("validation"))
    if isinstance(data, tuple):  # a list is a dataset (of items); a tuple, the pair
        if len(data) != 2:
            raise ConfigError(
                f"the data function returned a tuple of {len(data)} items",
                fix="return one dataset (a list of items is one), or a (train, validation) tuple",
            )
        train, valid = data
        how = "the validation set the data function gave"
    else:
        train, valid = data, None
        n = len(data)
        n_valid = max(1, round(n * config.train.validation_share))
        if n - n_valid < 1:
            raise ConfigError(
                f"the dataset has {n} item(s): too few to hold out a validation share",
                fix="give more data, or a separate validation set",
            )
        generator = torch.Generator().manual_seed(config.train.seed)
        train, valid = random_split(data, [n - n_valid, n_valid], generator=generator)
        how = f"{n_valid} of {n} items held out at random (seed {config.train.seed})"
    if valid is not None and len(valid) == 0:
        valid = None
    if valid is None:
        if not config.train.allow_no_validation:
            raise ConfigError(
                "there is no validation data: a model trained without it cannot be judged, "
                "stopped early or compared",
                fix="return (train, validation) from the data function, or one dataset to be "
                "split; set train.allow_no_validation: true only if you must",
            )
        how = "none (train.allow_no_validation): no epoch was judged on held-out data"
    if len(train) == 0:
        raise ConfigError("the training dataset is empty", fix="check the data function")
    return train, valid, how


def loss_function(config: TorchConfig, given: Callable[..., Any] | None) -> Callable[..., Any]:
    if given is not None:
        return given
    builtin: dict[str, Callable[..., Any]] = {
        "cross_entropy": nn.functional.cross_entropy,
        "mse": _one_to_one(nn.functional.mse_loss),
        "l1": _one_to_one(nn.functional.l1_loss),
        "bce_with_logits": _one_to_one(nn.functional.binary_cross_entropy_with_logits),
    }
    return builtin.get(config.loss) or resolve(config.loss, "loss")


def _one_to_one(loss: Callable[..., Any]) -> Callable[..., Any]:
    """``loss`` comparing outputs and targets value by value: an output of shape (n, 1) against
    targets of shape (n,) is reshaped, not broadcast to (n, n) (which trains on the wrong
    differences)."""

    def compared(output: torch.Tensor, target: torch.Tensor) -> Any:
        if output.shape != target.shape and output.numel() == target.numel():
            output = output.reshape(target.shape)
        return loss(output, target)

    return compared


def fit(
    config: TorchConfig,
    *,
    model_factory: Callable[..., Any] | None = None,
    data: Any = None,
    loss: Callable[..., Any] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    log: LogFn | None = None,
    on_epoch: Callable[[Epoch], None] | None = None,
    verbose: bool = True,
    finish: Callable[[FitResult, Any], None] | None = None,
) -> FitResult:
    """Train ``config``'s model. ``model_factory``, ``data`` (datasets) and ``loss`` replace
    the config's references; ``log(metrics, step)`` hears the training loss every
    ``log_every`` steps and each epoch's scores; ``on_epoch`` hears each finished epoch.

    The run is tracked (``config.tracker``, MLflow by default): the whole config as
    parameters, the training loss and gradient norm every ``log_every`` steps and each epoch's
    scores as metric curves, the history as ``history.json``, the best score at the end."""

    def train(logged: LogFn) -> FitResult:
        return _fit(
            config, model_factory=model_factory, data=data, loss=loss,
            checkpoint_dir=checkpoint_dir, resume=resume, log=logged, on_epoch=on_epoch,
            verbose=verbose,
        )  # fmt: skip

    return tracked(config, "torch", train, log=log, finish=finish)


def _fit(
    config: TorchConfig,
    *,
    model_factory: Callable[..., Any] | None,
    data: Any,
    loss: Callable[..., Any] | None,
    checkpoint_dir: str | Path | None,
    resume: bool,
    log: LogFn,
    on_epoch: Callable[[Epoch], None] | None,
    verbose: bool,
) -> FitResult:
    loop = config.train
    generator = seed_everything(loop.seed)
    device = _device(loop.device)
    model = build_model(config, model_factory).to(device)
    if data is None:
        data = call_user(config.data, None, "data function", "data_params", config.data_params)
    train_set, valid_set, held_out = split_data(config, data)
    amp = device.type == "cuda" and loop.amp != "off"
    if loop.amp == "on" and device.type != "cuda":
        raise ConfigError("train.amp: on needs a CUDA device", fix="use amp: auto")
    pin = device.type == "cuda"
    train_loader = DataLoader(
        train_set, batch_size=loop.batch_size, shuffle=True, generator=generator,
        num_workers=loop.num_workers, worker_init_fn=seed_worker, pin_memory=pin,
    )  # fmt: skip
    valid_loader = None if valid_set is None else DataLoader(
        valid_set, batch_size=loop.batch_size, shuffle=False, num_workers=loop.num_workers,
        worker_init_fn=seed_worker, pin_memory=pin,
    )  # fmt: skip
    criterion = loss_function(config, loss)
    optimizer = torch.optim.AdamW(model.parameters(), lr=loop.lr, weight_decay=loop.weight_decay)
    steps_per_epoch = math.ceil(len(train_loader) / loop.accumulate)
    schedule = _schedule(optimizer, config, steps_per_epoch * loop.epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    monitor = loop.monitor if valid_loader is not None else "loss"
    check_monitor(monitor, config.metrics)
    parts = _Parts(model, optimizer, schedule, scaler, generator)
    state = _State()
    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    resumed_from = None
    if folder is not None and resume and (folder / CHECKPOINT).is_file():
        state = _load(folder / CHECKPOINT, config, parts)
        resumed_from = state.epoch
    show = Progress(verbose, config.name, loop.epochs)
    try:
        for epoch in range(state.epoch + 1, loop.epochs + 1):
            if state.finished:
                break
            started = time.monotonic()
            train_loss, grad_norm = _train_epoch(
                model, train_loader, criterion, optimizer, schedule, scaler, config, device,
                amp, state, log, show, folder, epoch,
            )  # fmt: skip
            val_loss, metrics = (None, {}) if valid_loader is None else _validate(
                model, valid_loader, criterion, config.metrics, device, amp
            )  # fmt: skip
            record = Epoch(epoch, train_loss, val_loss, metrics, _lr(optimizer),
                           time.monotonic() - started, grad_norm)  # fmt: skip
            if state.record(record, monitor, valid_loader is not None, loop.patience):
                state.best_weights = copy.deepcopy(_cpu_state(model))
            if epoch == loop.epochs:
                state.finished = True
            log(epoch_scores(record), state.step)
            if folder is not None:
                _save(folder, state, config, parts)
            show.epoch(record, monitor, state)
            if on_epoch is not None:
                on_epoch(record)
    finally:
        show.close()
    if state.best_weights is not None and valid_loader is not None:
        model.load_state_dict(state.best_weights)
    model.eval()
    return FitResult(
        model=model, history=state.history, best_epoch=state.best_epoch,
        best_score=state.best_score, monitor=monitor, validated=valid_loader is not None,
        device=str(device), stopped_early=state.stopped_early, checkpoint=folder,
        config=config, steps=state.step, resumed_from=resumed_from,
        notes=[f"validation: {held_out}"], train_set=train_set, valid_set=valid_set,
        held_out=held_out,
    )  # fmt: skip


@dataclass
class _Parts:
    """What a checkpoint saves and restores besides the loop's own state."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # the training loader's shuffling


@dataclass
class _State(Standing):
    best_weights: dict[str, torch.Tensor] | None = None


def _device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda, but no CUDA device is visible", fix="use auto")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def _schedule(optimizer: torch.optim.Optimizer, config: TorchConfig, total: int) -> Any:
    loop = config.train
    lr_scheduler = torch.optim.lr_scheduler
    if loop.schedule == "onecycle" and total >= 4:
        # each phase needs at least one step (short runs: warm up for two steps)
        share = min(max(loop.warmup_share, 2.0 / total), 0.5)
        return lr_scheduler.OneCycleLR(
            optimizer, max_lr=loop.lr, total_steps=total, pct_start=share
        )
    if loop.schedule == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total, 1))
    return lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def _lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_to(v, device) for v in value)
    return value


def _split_batch(batch: Any, device: torch.device) -> tuple[Any, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ConfigError(
            "each item of the dataset must be a pair (inputs, target)",
            fix="return (inputs, target) from the dataset's __getitem__",
        )
    inputs, target = batch
    return _to(inputs, device), _to(target, device)


def _forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    if isinstance(inputs, dict):
        return model(**inputs)  # type: ignore[no-any-return]
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)  # type: ignore[no-any-return]
    return model(inputs)  # type: ignore[no-any-return]


def _loss(criterion: Callable[..., Any], output: Any, target: torch.Tensor, name: str) -> Any:
    try:
        return criterion(output, target)
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise TorchTrainingError(
            f"the loss {name!r} cannot take the model's output of shape {shape} with targets "
            f"of shape {tuple(target.shape)} ({str(exc).splitlines()[0]})",
            fix="make the model's last layer match the targets (cross_entropy: one output per "
            "class and integer class targets; mse: one output per target value)",
        ) from exc


def _train_epoch(
    model: nn.Module,
    loader: DataLoader[Any],
    criterion: Callable[..., Any],
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    scaler: torch.amp.GradScaler,
    config: TorchConfig,
    device: torch.device,
    amp: bool,
    state: _State,
    log: LogFn,
    show: Progress,
    folder: Path | None,
    epoch: int,
) -> tuple[float, float]:
    loop = config.train
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total, count, grad_norm = 0.0, 0, 0.0
    batches = len(loader)
    show.start(epoch, batches)
    for i, batch in enumerate(loader):
        inputs, target = _split_batch(batch, device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss = _loss(criterion, _forward(model, inputs), target, config.loss)
        value = float(loss.detach())
        if not math.isfinite(value):
            kept = (
                f"the last good checkpoint (epoch {state.epoch}) is kept in {folder}"
                if folder is not None and state.epoch
                else "no checkpoint was written before it"
            )
            raise TorchTrainingError(
                f"the training loss became {value} at epoch {epoch}, batch {i + 1}: training "
                f"stopped; {kept}",
                fix="lower train.lr, keep train.clip_grad_norm on, and check the data for "
                "NaN or infinite values",
            )
        scaler.scale(loss / loop.accumulate).backward()
        rows = len(target)
        total, count = total + value * rows, count + rows
        if (i + 1) % loop.accumulate == 0 or i + 1 == batches:
            scaler.unscale_(optimizer)
            limit = loop.clip_grad_norm if loop.clip_grad_norm is not None else math.inf
            norm = float(nn.utils.clip_grad_norm_(model.parameters(), limit))
            grad_norm = max(grad_norm, norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            state.step += 1
            if state.step % loop.log_every == 0:
                log({"train_loss": value, "grad_norm": norm}, state.step)
        show.advance()
    return total / max(count, 1), grad_norm


def _validate(
    model: nn.Module,
    loader: DataLoader[Any],
    criterion: Callable[..., Any],
    metrics: tuple[str, ...],
    device: torch.device,
    amp: bool,
) -> tuple[float, dict[str, float]]:
    model.eval()
    total, count = 0.0, 0
    outputs, targets = [], []
    with torch.no_grad():
        for batch in loader:
            inputs, target = _split_batch(batch, device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                output = _forward(model, inputs)
                loss = criterion(output, target)
            total += float(loss) * len(target)
            count += len(target)
            if metrics:
                outputs.append(output.detach().float().cpu())
                targets.append(target.detach().cpu())
    scores = {}
    if metrics:
        out, y = torch.cat(outputs), torch.cat(targets)
        scores = {name: _metric(name, out, y) for name in metrics}
    return total / max(count, 1), scores


def _metric(name: str, out: torch.Tensor, y: torch.Tensor) -> float:
    if name == "accuracy":
        if out.ndim == 2 and out.shape[1] > 1:
            predicted = out.argmax(dim=1)
        else:
            predicted = (out.reshape(-1) > 0).long()
        return float((predicted == y.reshape(-1).long()).float().mean())
    error = out.reshape(-1).float() - y.reshape(-1).float()
    if name == "mae":
        return float(error.abs().mean())
    return float(error.pow(2).mean().sqrt())


def _save(folder: Path, state: _State, config: TorchConfig, parts: _Parts) -> None:
    """Everything an exact resume needs, written to a temporary file and then renamed: a run
    killed while saving leaves the previous checkpoint whole."""
    folder.mkdir(parents=True, exist_ok=True)
    version, mt, gauss = random.getstate()
    numpy_state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    kind, keys, pos, has_gauss, cached = numpy_state
    payload = {
        "format": 1,
        "config_digest": config_digest(config),
        "state": {k: v for k, v in asdict(state).items() if k not in ("best_weights", "history")},
        "history": [asdict(e) for e in state.history],
        "model": parts.model.state_dict(),
        "best": state.best_weights,
        "optimizer": parts.optimizer.state_dict(),
        "schedule": parts.schedule.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "rng": {  # plain values and tensors, so that loading needs no pickle
            "python": [version, list(mt), gauss],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "loader": parts.generator.get_state(),
        },
    }
    partial = folder / (CHECKPOINT + ".partial")
    torch.save(payload, partial)
    os.replace(partial, folder / CHECKPOINT)


def _load(path: Path, config: TorchConfig, parts: _Parts) -> _State:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise unreadable_checkpoint(path, exc, TorchTrainingError) from exc
    check_same_config(config, payload.get("config_digest"), path)
    parts.model.load_state_dict(payload["model"])
    parts.optimizer.load_state_dict(payload["optimizer"])
    parts.schedule.load_state_dict(payload["schedule"])
    parts.scaler.load_state_dict(payload["scaler"])
    rng = payload["rng"]
    version, mt, gauss = rng["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    parts.generator.set_state(rng["loader"])
    state = _State(**payload["state"])
    state.best_weights = payload["best"]
    state.history = [Epoch(**e) for e in payload["history"]]
    return state


__all__ = [
    "LOWER_IS_BETTER",
    "Epoch",
    "FitResult",
    "TorchTrainingError",
    "config_digest",
    "fit",
    "resolve",
    "seed_everything",
]
