"""The JAX (Flax NNX) side of the shared loop (:mod:`mlwright.nets.loop`).

The factory builds the module from the config's ``params`` and an ``nnx.Rngs`` seeded with
``train.seed``. The optimizer is optax's AdamW on the schedule, after ``clip_by_global_norm``,
inside ``MultiSteps`` when ``accumulate`` > 1; one jitted step computes the loss, the gradients
and their total norm (logged) and updates the parameters. A checkpoint is msgpack (Flax's
serialisation, no pickle): every variable of the module (its RNG streams included) and of the
optimizer, the best weights and the loop's record. The package's native model is the module's
state as msgpack (``model/state.msgpack``), read back with :func:`load_state`.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.errors import ConfigError
from mlwright.jax.config import JaxConfig
from mlwright.nets.arrays import Arrays
from mlwright.nets.loop import StepFn
from mlwright.nets.run import (
    NetTrainingError,
    call_user,
    refuse_unclipped,
    unreadable_checkpoint,
)

RECURRENT = ("RNN", "RNNCellBase", "MultiHeadAttention", "Bidirectional")
STATE = "state.msgpack"


def _modules() -> tuple[Any, Any, Any]:
    try:
        import jax
        import optax
        from flax import nnx
    except ImportError:
        raise ConfigError(
            "training a Flax model needs jax, flax and optax, which are not all installed",
            fix="pip install 'mlwright[jax]'",
        ) from None
    return jax, nnx, optax


def build_model(config: JaxConfig, factory: Any) -> Any:
    _, nnx, _ = _modules()
    random.seed(config.train.seed)
    np.random.seed(config.train.seed % 2**32)
    rngs = nnx.Rngs(config.train.seed)
    model = call_user(config.model, factory, "model factory", "params", config.params, rngs)
    if not isinstance(model, nnx.Module):
        raise NetTrainingError(
            f"the model factory {config.model!r} returned {type(model).__name__}, not an "
            "nnx.Module",
            fix="return a Flax NNX module built with the rngs the factory is given",
        )
    recurrent = [f"{type(m).__name__} at {'.'.join(map(str, path)) or 'the top'!r}"
                 for path, m in nnx.iter_graph(model) if isinstance(m, nnx.Module)
                 and any(c.__name__ in RECURRENT for c in type(m).__mro__)]  # fmt: skip
    refuse_unclipped(config, recurrent)
    return model


def _schedule(optax: Any, config: JaxConfig, total: int) -> Any:
    loop = config.train
    if loop.schedule == "onecycle" and total >= 4:
        return optax.cosine_onecycle_schedule(
            transition_steps=total, peak_value=loop.lr, pct_start=loop.warmup_share,
            div_factor=25.0, final_div_factor=1e4,
        )  # fmt: skip
    if loop.schedule == "cosine":
        return optax.cosine_decay_schedule(loop.lr, decay_steps=max(total, 1))
    return optax.constant_schedule(loop.lr)


def loss_function(name: str) -> Any:
    """The built-in loss on (outputs, targets), averaged over the batch."""
    jax, _, optax = _modules()
    jnp = jax.numpy

    def shaped(out: Any, y: Any) -> Any:
        return out.reshape(y.shape) if out.size == y.size else out

    if name == "cross_entropy":  # integer labels, as (n,) or (n, 1)
        return lambda out, y: optax.softmax_cross_entropy_with_integer_labels(
            out, y.reshape(out.shape[:-1]).astype(jnp.int32)
        ).mean()
    if name == "mse":
        return lambda out, y: jnp.mean((shaped(out, y) - y) ** 2)
    if name == "l1":
        return lambda out, y: jnp.mean(jnp.abs(shaped(out, y) - y))
    return lambda out, y: optax.sigmoid_binary_cross_entropy(shaped(out, y), y).mean()


def _call(model: Any, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (list, tuple)):
        return model(*inputs)
    return model(inputs)


def _plain(tree: Any) -> Any:
    """``tree`` with typed PRNG keys as their raw data (msgpack stores arrays only)."""
    jax, _, _ = _modules()

    def leaf(x: Any) -> Any:
        if hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(x))
        return np.asarray(x)

    return jax.tree_util.tree_map(leaf, tree)


def _typed(template: Any, loaded: Any) -> Any:
    """``loaded`` (plain arrays) shaped as ``template``: raw key data wrapped back into keys."""
    jax, _, _ = _modules()

    def leaf(want: Any, got: Any) -> Any:
        if hasattr(want, "dtype") and jax.dtypes.issubdtype(want.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(got, impl=jax.random.key_impl(want))
        return jax.numpy.asarray(got, dtype=want.dtype).reshape(want.shape)

    return jax.tree_util.tree_map(leaf, template, loaded)


class JaxTrainer:
    """A Flax module, its optax optimizer and jitted steps (:class:`mlwright.nets.loop.Trainer`)."""

    def __init__(self, config: JaxConfig, train_set: Arrays, factory: Any = None) -> None:
        jax, nnx, optax = _modules()
        self.jax, self.nnx, self.config = jax, nnx, config
        loop = config.train
        self.model = build_model(config, factory)
        steps = -(-len(train_set) // loop.batch_size) * loop.epochs
        self.schedule = _schedule(optax, config, -(-steps // loop.accumulate))
        chain = [optax.adamw(self.schedule, weight_decay=loop.weight_decay)]
        if loop.clip_grad_norm is not None:
            chain.insert(0, optax.clip_by_global_norm(loop.clip_grad_norm))
        tx = optax.chain(*chain)
        if loop.accumulate > 1:
            tx = optax.MultiSteps(tx, every_k_schedule=loop.accumulate)
        self.optimizer = nnx.Optimizer(self.model, tx, wrt=nnx.Param)
        self.loss_fn = loss_function(config.loss)
        self._steps = 0
        loss_fn = self.loss_fn

        @nnx.jit  # type: ignore[untyped-decorator]
        def train_step(model: Any, optimizer: Any, inputs: Any, target: Any) -> Any:
            def objective(model: Any) -> Any:
                return loss_fn(_call(model, inputs), target)

            loss, grads = nnx.value_and_grad(objective)(model)
            optimizer.update(model, grads)
            return loss, optax.tree.norm(grads)

        @nnx.jit  # type: ignore[untyped-decorator]
        def forward(model: Any, inputs: Any) -> Any:
            return _call(model, inputs)

        self._train_step, self._forward = train_step, forward
        self.device = f"{jax.default_backend()} (jax {jax.__version__})"
        params = nnx.state(self.model, nnx.Param)
        self.parameters = int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))
        self.architecture = repr(self.model)

    def train_epoch(self, data: Arrays, batch_size: int, on_step: StepFn) -> float:
        self.model.train()
        total, count = 0.0, 0
        for batch in data.batches(batch_size):
            loss, norm = self._train_step(
                self.model, self.optimizer, batch.model_inputs(), batch.target
            )
            self._steps += 1
            value = float(loss)
            total, count = total + value * len(batch), count + len(batch)
            on_step(value, float(norm))
        self.model.eval()
        return total / max(count, 1)

    def predict(self, data: Arrays) -> np.ndarray:
        self.model.eval()
        outs = [np.asarray(self._forward(self.model, b.model_inputs()))
                for b in data.batches(self.config.train.batch_size)]  # fmt: skip
        return np.concatenate(outs)

    def loss(self, out: np.ndarray, target: np.ndarray) -> float:
        return float(self.loss_fn(self.jax.numpy.asarray(out), self.jax.numpy.asarray(target)))

    def lr(self) -> float:
        every = self.config.train.accumulate
        return float(self.schedule(self._steps // every))

    def steps(self) -> int:
        return self._steps // self.config.train.accumulate

    def weights(self) -> Any:
        return _plain(self.nnx.to_pure_dict(self.nnx.state(self.model)))

    def set_weights(self, weights: Any) -> None:
        nnx = self.nnx
        state = nnx.state(self.model)
        nnx.replace_by_pure_dict(state, _typed(nnx.to_pure_dict(state), weights))
        nnx.update(self.model, state)

    def save(self, path: Path, record: dict[str, Any], best: Any) -> None:
        from flax import serialization

        nnx = self.nnx
        payload = {
            "record": json.dumps(record | {"batches": self._steps}),
            "model": self.weights(),
            "optimizer": _plain(nnx.to_pure_dict(nnx.state(self.optimizer))),
            "best": best if best is not None else {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(serialization.msgpack_serialize(payload))
        os.replace(partial, path)

    def load(
        self, path: Path, check: Callable[[dict[str, Any]], None]
    ) -> tuple[dict[str, Any], Any]:
        from flax import serialization

        nnx = self.nnx
        try:
            payload = serialization.msgpack_restore(path.read_bytes())
            record = json.loads(payload["record"])
        except Exception as exc:
            raise unreadable_checkpoint(path, exc) from exc
        check(record)
        try:
            self.set_weights(payload["model"])
            state = nnx.state(self.optimizer)
            template = nnx.to_pure_dict(state)
            nnx.replace_by_pure_dict(state, _typed(template, payload["optimizer"]))
            nnx.update(self.optimizer, state)
            self._steps = int(record.pop("batches"))
        except Exception as exc:
            raise unreadable_checkpoint(path, exc) from exc
        return record, payload["best"] or None


def load_state(module: Any, path: str | Path) -> Any:
    """``module`` (built by your factory with the same ``params``) with the weights of a
    package's ``model/state.msgpack``: the native Flax model, for retraining or inspection."""
    from flax import serialization

    _, nnx, _ = _modules()
    state = nnx.state(module)
    loaded = serialization.msgpack_restore(Path(path).read_bytes())
    nnx.replace_by_pure_dict(state, _typed(nnx.to_pure_dict(state), loaded))
    nnx.update(module, state)
    return module


class JaxExporter:
    """The packager's view of a trained Flax module (:class:`mlwright.nets.package.Exporter`)."""

    kind = "jax"
    native = STATE

    def __init__(self, trainer: JaxTrainer) -> None:
        import flax

        self.trainer = trainer
        jax = trainer.jax
        self.framework = f"flax {flax.__version__} (jax {jax.__version__})"
        self.libraries = ("jax", "jaxlib", "flax", "optax", "jax2onnx")

    def predict(self, data: Arrays) -> np.ndarray:
        return self.trainer.predict(data)

    def export_onnx(self, data: Arrays, path: Path) -> None:
        import contextlib
        import io
        import logging
        import warnings

        import jax2onnx

        jax, nnx = self.trainer.jax, self.trainer.nnx
        model = self.trainer.model
        model.eval()
        graph, state = nnx.split(model)
        names, keyword = data.names, data.keyword

        def served(*arrays: Any) -> Any:  # the module rebuilt from its state: a pure function
            inputs: Any = (
                dict(zip(names, arrays, strict=True)) if keyword
                else arrays[0] if len(arrays) == 1 else list(arrays)
            )  # fmt: skip
            return _call(nnx.merge(graph, state), inputs)

        shapes = [
            jax.ShapeDtypeStruct(
                jax.export.symbolic_shape(", ".join(["batch", *map(str, a.shape[1:])])),
                a.dtype,
            )
            for a in data.inputs
        ]
        quiet = logging.getLogger("onnx_ir")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                jax2onnx.to_onnx(
                    served, shapes, input_names=names, output_names=["output"],
                    return_mode="file", output_path=str(path),
                )  # fmt: skip
        finally:
            quiet.setLevel(level)

    def save_native(self, folder: Path) -> None:
        from flax import serialization

        (folder / self.native).write_bytes(serialization.msgpack_serialize(self.trainer.weights()))


__all__ = ["JaxExporter", "JaxTrainer", "build_model", "load_state", "loss_function"]
