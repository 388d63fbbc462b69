"""The Keras 3 side of the shared loop (:mod:`mlwright.nets.loop`), on the JAX, TensorFlow or
PyTorch backend.

The backend is chosen before Keras is first imported (``KERAS_BACKEND``); a process that has
already imported Keras on another backend is told so. The model is compiled with AdamW (the
schedule, decoupled weight decay, ``global_clipnorm`` and ``gradient_accumulation_steps``) and
one of the built-in losses from logits; each epoch is one ``model.fit`` over the examples in
the seed's order, without Keras' own shuffling. A checkpoint holds every model variable (the
dropout layers' seed states included), the optimizer's variables and the best weights, in one
``.npz`` read back without pickle.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.errors import ConfigError
from mlwright.keras.config import KerasConfig
from mlwright.nets.arrays import Arrays
from mlwright.nets.loop import StepFn
from mlwright.nets.run import (
    NetTrainingError,
    call_user,
    refuse_unclipped,
    unreadable_checkpoint,
)

RECURRENT = ("RNN", "MultiHeadAttention", "Attention", "AdditiveAttention", "Bidirectional",
             "GroupedQueryAttention")  # fmt: skip
EXPORTED_BY = {  # the backend's distributions and its ONNX exporter's, recorded in the recipe
    "jax": ("jax", "jaxlib", "jax2onnx"),
    "tensorflow": ("tensorflow-cpu", "tensorflow", "tf2onnx"),
    "torch": ("torch", "onnxscript"),
}
INSTALL = {
    "jax": "pip install 'mlwright[keras]'",
    "tensorflow": "pip install 'mlwright[tensorflow]'",
    "torch": "pip install 'mlwright[keras,torch]'",
}


def use_backend(backend: str) -> Any:
    """Keras on ``backend``: set before its first import, or checked against the one running."""
    loaded = sys.modules.get("keras")
    if loaded is None:
        os.environ["KERAS_BACKEND"] = backend
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notices
    try:
        import keras
    except ImportError:
        raise ConfigError(
            "training a Keras model needs keras, which is not installed",
            fix=INSTALL[backend],
        ) from None
    except Exception as exc:  # the backend's own import failed
        raise ConfigError(
            f"Keras cannot start on the {backend} backend ({type(exc).__name__}: {exc})",
            fix=INSTALL[backend],
        ) from None
    running = keras.backend.backend()
    if running != backend:
        raise ConfigError(
            f"Keras already runs on the {running} backend in this process; the config asks for "
            f"{backend}",
            fix=f"set KERAS_BACKEND={backend} before anything imports keras, or run "
            "`mlwright train-keras` in its own process",
        )
    return keras


def _layers(model: Any) -> list[Any]:
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=True))
    return list(getattr(model, "layers", []))


def build_model(config: KerasConfig, factory: Any, example: Arrays) -> Any:
    keras = use_backend(config.backend)
    keras.utils.set_random_seed(config.train.seed)
    model = call_user(config.model, factory, "model factory", "params", config.params)
    if not isinstance(model, keras.Model):
        raise NetTrainingError(
            f"the model factory {config.model!r} returned {type(model).__name__}, not a "
            "keras.Model",
            fix="return the model (keras.Sequential, a functional keras.Model or a subclass)",
        )
    if not model.built:
        model(example.model_inputs())
    recurrent = [f"{type(layer).__name__} {layer.name!r}" for layer in _layers(model)
                 if any(c.__name__ in RECURRENT for c in type(layer).__mro__)]  # fmt: skip
    refuse_unclipped(config, recurrent)
    return model


def _schedule(keras: Any, config: KerasConfig, total: int) -> Any:
    loop = config.train
    schedules = keras.optimizers.schedules
    if loop.schedule == "onecycle" and total >= 4:
        warm = max(1, min(round(total * loop.warmup_share), total // 2))
        return schedules.CosineDecay(
            initial_learning_rate=loop.lr / 25, decay_steps=total - warm, alpha=1 / (25 * 1e4),
            warmup_target=loop.lr, warmup_steps=warm,
        )  # fmt: skip
    if loop.schedule == "cosine":
        return schedules.CosineDecay(loop.lr, decay_steps=max(total, 1))
    return loop.lr


def _loss(keras: Any, name: str) -> Any:
    losses = keras.losses
    return {
        "cross_entropy": lambda: losses.SparseCategoricalCrossentropy(from_logits=True),
        "mse": losses.MeanSquaredError,
        "l1": losses.MeanAbsoluteError,
        "bce_with_logits": lambda: losses.BinaryCrossentropy(from_logits=True),
    }[name]()


class KerasTrainer:
    """A compiled Keras model and its optimizer (:class:`mlwright.nets.loop.Trainer`)."""

    def __init__(self, config: KerasConfig, train_set: Arrays, factory: Any = None) -> None:
        keras = use_backend(config.backend)
        self.keras, self.config = keras, config
        loop = config.train
        self.model = build_model(config, factory, train_set.take(slice(0, 2)))
        # Keras counts every batch as an iteration, accumulating or not: the schedule's steps
        # are batches
        batches = math.ceil(len(train_set) / loop.batch_size)
        self.optimizer = keras.optimizers.AdamW(
            learning_rate=_schedule(keras, config, batches * loop.epochs),
            weight_decay=loop.weight_decay,
            global_clipnorm=loop.clip_grad_norm,
            gradient_accumulation_steps=loop.accumulate if loop.accumulate > 1 else None,
        )
        self.loss_fn = _loss(keras, config.loss)
        self.model.compile(optimizer=self.optimizer, loss=self.loss_fn)
        self.optimizer.build(self.model.trainable_variables)
        self._steps = 0
        try:
            devices = keras.distribution.list_devices()
        except Exception:  # the PyTorch backend has no distribution library to ask
            devices = []
        self.device = f"{devices[0] if devices else 'cpu'} ({config.backend} backend)"
        self.parameters = int(self.model.count_params())
        lines: list[str] = []
        self.model.summary(print_fn=lambda line, *_, **__: lines.append(line))
        self.architecture = "\n".join(lines)

    def train_epoch(self, data: Arrays, batch_size: int, on_step: StepFn) -> float:
        keras, trainer = self.keras, self
        start, every = self._steps, self.config.train.accumulate

        class Steps(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
            # the optimizer's variables are not readable inside fit on every backend: the
            # steps are counted here, and read from the optimizer when the epoch ends
            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                trainer._steps = start + (batch + 1) // every
                on_step(float((logs or {}).get("loss", math.nan)), None)

        # one epoch of the shared loop, which validates, stops early and checkpoints each epoch
        # mlwright: ignore[MLW102, MLW106]
        history = self.model.fit(
            data.model_inputs(), data.target, batch_size=batch_size, epochs=1, shuffle=False,
            verbose=0, callbacks=[Steps()],
        )  # fmt: skip
        self._steps = int(self._numpy(self.optimizer.iterations))
        return float(history.history["loss"][-1])

    def predict(self, data: Arrays) -> np.ndarray:
        out = self.model.predict(
            data.model_inputs(), batch_size=self.config.train.batch_size, verbose=0
        )
        return np.asarray(out[0] if isinstance(out, (list, tuple)) else out)

    def loss(self, out: np.ndarray, target: np.ndarray) -> float:
        return float(self._numpy(self.loss_fn(target, out)))

    def _numpy(self, value: Any) -> np.ndarray:
        """A variable's (or tensor's) value as a NumPy array of its own."""
        return np.array(self.keras.ops.convert_to_numpy(getattr(value, "value", value)))

    def lr(self) -> float:
        return float(self._numpy(self.optimizer.learning_rate))

    def steps(self) -> int:
        return self._steps

    def weights(self) -> list[np.ndarray]:
        return [self._numpy(v) for v in self.model.variables]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        for variable, value in zip(self.model.variables, weights, strict=True):
            variable.assign(value)

    def save(self, path: Path, record: dict[str, Any], best: Any) -> None:
        arrays: dict[str, np.ndarray] = {"record": np.array(json.dumps(record))}
        arrays |= {f"model_{i}": w for i, w in enumerate(self.weights())}
        arrays |= {f"optimizer_{i}": self._numpy(v) for i, v in enumerate(self.optimizer.variables)}
        arrays |= {f"best_{i}": w for i, w in enumerate(best or [])}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial.npz")
        np.savez(partial, **arrays)  # type: ignore[arg-type]
        os.replace(partial, path)

    def load(
        self, path: Path, check: Callable[[dict[str, Any]], None]
    ) -> tuple[dict[str, Any], Any]:
        try:
            with np.load(path, allow_pickle=False) as saved:
                stored = {k: saved[k] for k in saved.files}
            record = json.loads(str(stored["record"]))
        except Exception as exc:
            raise unreadable_checkpoint(path, exc) from exc
        check(record)
        try:
            model = _numbered(stored, "model")
            optimizer = _numbered(stored, "optimizer")
            best = _numbered(stored, "best") or None
            self.set_weights(model)
            for variable, value in zip(self.optimizer.variables, optimizer, strict=True):
                variable.assign(value)
            self._steps = int(self._numpy(self.optimizer.iterations))
        except Exception as exc:
            raise unreadable_checkpoint(path, exc) from exc
        return record, best


def _numbered(stored: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    count = sum(1 for k in stored if k.startswith(prefix + "_"))
    return [stored[f"{prefix}_{i}"] for i in range(count)]


class KerasExporter:
    """The packager's view of a trained Keras model (:class:`mlwright.nets.package.Exporter`)."""

    kind = "keras"
    native = "model.keras"

    def __init__(self, trainer: KerasTrainer) -> None:
        self.trainer = trainer
        keras, backend = trainer.keras, trainer.config.backend
        self.framework = f"keras {keras.__version__} ({backend} backend)"
        self.libraries = ("keras", *EXPORTED_BY[backend])

    def predict(self, data: Arrays) -> np.ndarray:
        return self.trainer.predict(data)

    def export_onnx(self, data: Arrays, path: Path) -> None:
        import contextlib
        import io
        import warnings

        keras = self.trainer.keras
        specs = [keras.InputSpec(shape=(None, *a.shape[1:]), dtype=str(a.dtype), name=n)
                 for n, a in zip(data.names, data.inputs, strict=True)]  # fmt: skip
        signature: Any = (
            [dict(zip(data.names, specs, strict=True))] if data.keyword
            else [specs[0]] if len(specs) == 1 else [specs]
        )  # fmt: skip
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            self.trainer.model.export(
                str(path), format="onnx", verbose=False, input_signature=signature
            )

    def save_native(self, folder: Path) -> None:
        import warnings

        with warnings.catch_warnings():  # Keras' own NumPy 2 notice while it writes
            warnings.simplefilter("ignore", DeprecationWarning)
            self.trainer.model.save(folder / self.native)


__all__ = ["KerasExporter", "KerasTrainer", "build_model", "use_backend"]
