"""Bring your own JAX model (Flax NNX, with an optax optimiser), with the discipline mlwright
gives a table.

You supply a model factory (the config's ``params`` and an ``nnx.Rngs`` → an ``nnx.Module``)
and the data (``(x, y)`` arrays that mlwright splits with the seed, or
``((x, y), (x_valid, y_valid))``), named in a :class:`JaxConfig`. The trainer seeds the
module's RNG streams and the data order, always validates, uses optax's AdamW with a schedule,
clips the gradients' global norm (required for recurrent and attention layers), stops early,
writes checkpoints that resume exactly, tracks every epoch and shows progress.

:func:`train_jax` does the whole job: the search over the config's ranges (when it declares
any), the tracked run, and a registered package holding the module's state as msgpack for
retraining (:func:`load_state`) and an ONNX model (jax2onnx) the server runs without JAX::

    model = train_jax("examples/flax_digits_cnn.yaml")   # mlwright train-jax --config ...

JAX is imported only when a model is trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwright.jax.config import JaxConfig, JaxLoopSettings

if TYPE_CHECKING:
    from mlwright.nets.run import NetFit
    from mlwright.package.tensor import TensorModel


def fit(config: JaxConfig, *, model_factory: Any = None, **kwargs: Any) -> NetFit:
    """Train ``config``'s model, tracked, without packaging it: the :class:`NetFit` whose
    ``model`` is the trainer (``.model`` the nnx.Module, with the best epoch's weights).
    Options: ``data``, ``checkpoint_dir``, ``resume``, ``log``, ``on_epoch``, ``verbose``."""
    from mlwright.jax.loop import JaxTrainer
    from mlwright.nets.loop import fit_arrays

    def trainer(train_set: Any) -> JaxTrainer:
        return JaxTrainer(config, train_set, model_factory)

    return fit_arrays(config, "jax", trainer, checkpoint="last.msgpack", **kwargs)


def train_jax(
    config: JaxConfig | str | Path,
    out: str | Path | None = None,
    *,
    model_factory: Any = None,
    data: Any = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    verbose: bool = True,
) -> TensorModel:
    """Search (when the config declares ranges), train, package into ``out`` (default
    ``models/NAME``) and register a version, all in one tracked run."""
    from mlwright.jax.loop import JaxExporter
    from mlwright.nets.train import train_to_package

    if not isinstance(config, JaxConfig):
        config = JaxConfig.from_yaml(config)
    return train_to_package(
        config, out, fit, JaxExporter, data=data, checkpoint_dir=checkpoint_dir, resume=resume,
        verbose=verbose, model_factory=model_factory,
    )  # fmt: skip


def load_state(module: Any, path: str | Path) -> Any:
    """``module`` with the weights of a package's ``model/state.msgpack``."""
    from mlwright.jax.loop import load_state as load

    return load(module, path)


__all__ = ["JaxConfig", "JaxLoopSettings", "fit", "load_state", "train_jax"]
