"""Bring your own Keras 3 model, with the discipline mlwright gives a table.

You supply a model factory (the config's ``params`` → a ``keras.Model``) and the data (``(x, y)``
arrays that mlwright splits with the seed, or ``((x, y), (x_valid, y_valid))``), named in a
:class:`KerasConfig`. The trainer runs Keras on the backend the config names (JAX by default,
TensorFlow or PyTorch), seeds every random source and the data order, always validates, uses
AdamW with a schedule, clips gradients (required for recurrent and attention layers), stops
early, writes checkpoints that resume exactly, tracks every epoch and shows progress.

:func:`train_keras` does the whole job: the search over the config's ranges (when it declares
any), the tracked run, and a registered package holding the ``.keras`` model for retraining and
an ONNX model the server runs without Keras or its backend::

    model = train_keras("examples/keras_digits_cnn.yaml")   # mlwright train-keras --config ...
    model.predict([{"input": [[[0.0], ...]]}])

Keras is imported only when a model is trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwright.keras.config import KerasConfig, KerasLoopSettings

if TYPE_CHECKING:
    from mlwright.nets.run import NetFit
    from mlwright.package.tensor import TensorModel


def fit(config: KerasConfig, *, model_factory: Any = None, **kwargs: Any) -> NetFit:
    """Train ``config``'s model, tracked, without packaging it: the :class:`NetFit` whose
    ``model`` is the trainer (``.model`` the keras.Model, with the best epoch's weights).
    Options: ``data``, ``checkpoint_dir``, ``resume``, ``log``, ``on_epoch``, ``verbose``."""
    from mlwright.keras.loop import KerasTrainer
    from mlwright.nets.loop import fit_arrays

    def trainer(train_set: Any) -> KerasTrainer:
        return KerasTrainer(config, train_set, model_factory)

    return fit_arrays(config, "keras", trainer, checkpoint="last.npz", **kwargs)


def train_keras(
    config: KerasConfig | str | Path,
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
    from mlwright.keras.loop import KerasExporter
    from mlwright.nets.train import train_to_package

    if not isinstance(config, KerasConfig):
        config = KerasConfig.from_yaml(config)
    return train_to_package(
        config, out, fit, KerasExporter, data=data, checkpoint_dir=checkpoint_dir, resume=resume,
        verbose=verbose, model_factory=model_factory,
    )  # fmt: skip


__all__ = ["KerasConfig", "KerasLoopSettings", "fit", "train_keras"]
