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

torch is imported only when :func:`fit` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlwright.torch.config import LoopSettings, TorchConfig

if TYPE_CHECKING:
    from mlwright.torch.loop import FitResult


def fit(config: TorchConfig, **kwargs: Any) -> FitResult:
    """Train ``config``'s model (see :func:`mlwright.torch.loop.fit` for the options)."""
    from mlwright.torch.loop import fit as run

    return run(config, **kwargs)


__all__ = ["LoopSettings", "TorchConfig", "fit"]
