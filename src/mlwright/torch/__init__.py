"""Bring your own PyTorch model, with the discipline mlwright gives a table.

You supply a model factory (the config's ``params`` → an ``nn.Module``), the data (one dataset
that mlwright splits with the seed, or a training and a validation set, each item a pair
``(inputs, target)``), a loss and optional metrics, all named in a :class:`TorchConfig`. The
trainer seeds every random source, always validates, uses AdamW with a schedule, clips
gradients (required for recurrent and transformer layers), uses mixed precision on CUDA,
accumulates gradients, stops early, writes checkpoints that resume exactly, and shows progress::

    from mlwright.torch import TorchConfig, fit
    config = TorchConfig.from_yaml("digits.yaml")
    result = fit(config, checkpoint_dir="checkpoints/digits")
    result.model, result.history, result.best_epoch

:func:`train_torch` does the whole job: the search over the config's ranges (when it declares
any), the tracked run, and a registered tensor package that serves without your code (a
``torch.export`` program, ONNX where the model exports, the input spec, golden examples, the
report)::

    model = train_torch("digits.yaml", out="models/digits")   # mlwright train-torch --config ...
    model.predict([{"image": [[...]]}])

``train`` is its earlier name, kept. torch is imported only when :func:`fit` or
:func:`train_torch` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlwright.torch.config import LoopSettings, TorchConfig

if TYPE_CHECKING:
    from pathlib import Path

    from mlwright.package.tensor import TensorModel
    from mlwright.torch.loop import FitResult


def fit(config: TorchConfig, **kwargs: Any) -> FitResult:
    """Train ``config``'s model (see :func:`mlwright.torch.loop.fit` for the options)."""
    from mlwright.torch.loop import fit as run

    return run(config, **kwargs)


def train_torch(
    config: TorchConfig | str | Path, out: str | Path | None = None, **kwargs: Any
) -> TensorModel:
    """Train ``config`` (a TorchConfig or its YAML file) and write its package to ``out``
    (default ``models/NAME``); returns the served model with ``registry`` set when a version
    was registered. Options as :func:`fit` (``checkpoint_dir``, ``resume``, ``verbose``,
    ``model_factory``, ``data``, ``loss``)."""
    from pathlib import Path

    from mlwright.package.store import check_destination
    from mlwright.torch.package import train_and_package

    if not isinstance(config, TorchConfig):
        config = TorchConfig.from_yaml(config)
    path = Path(out or Path("models") / config.name)
    check_destination(path)  # before training, not after it
    return train_and_package(config, path, **kwargs)


train = train_torch  # the earlier name, kept for code that imports it

__all__ = ["LoopSettings", "TorchConfig", "fit", "train", "train_torch"]
