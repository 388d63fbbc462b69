"""What a PyTorch run is made of: :class:`TorchConfig`, a :class:`~mlwright.nets.config.NetConfig`
whose loop settings add the device, mixed precision and data-loader workers, and whose loss may
also be your own ``module:function``.

A run's YAML file (``mlwright train-torch --config``) or mapping (``mlwright.torch.fit``):

.. code-block:: yaml

    name: digits-cnn
    model: examples.digits_cnn:make_model      # module:function, config.params → nn.Module
    data: examples.digits_cnn:make_data        # module:function, config.data_params → datasets
    loss: cross_entropy                        # or mse, l1, bce_with_logits, module:function
    metrics: [accuracy]
    params: {channels: 16, dropout: 0.1}
    train: {epochs: 10, batch_size: 64, lr: 0.002}
    output: {task: classification, classes: [zero, one, ...]}   # how outputs are served
    search: {trials: 20, ranges: {train.lr: {low: 0.0005, high: 0.01, log: true}}}

Unknown keys fail, naming the key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mlwright.nets.config import (
    LOSSES,
    METRICS,
    CommonLoopSettings,
    NetConfig,
    OutputSettings,
    Range,
    SearchSettings,
    reference,
)


class LoopSettings(CommonLoopSettings):
    """The PyTorch training loop's settings; the defaults suit small and medium models."""

    amp: Literal["auto", "on", "off"] = Field(
        "auto", description="mixed precision: auto uses it on CUDA only"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    seed: int = Field(0, description="seeds Python, NumPy, torch, CUDA and the data loaders")


class TorchConfig(NetConfig):
    """One bring-your-own PyTorch model run."""

    model: str = Field(description="module:function that takes `params` and returns an nn.Module")
    data: str = Field(
        description="module:function that takes `data_params` and returns a dataset, or "
        "(train, validation) datasets"
    )
    loss: str = Field(
        "cross_entropy", description=f"one of {', '.join(LOSSES)}, or module:function"
    )
    train: LoopSettings = LoopSettings()

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        return value if value in LOSSES else reference(value)


__all__ = [
    "LOSSES",
    "METRICS",
    "LoopSettings",
    "OutputSettings",
    "Range",
    "SearchSettings",
    "TorchConfig",
]
