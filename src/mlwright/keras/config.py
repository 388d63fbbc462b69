"""What a Keras 3 run is made of: :class:`KerasConfig`, a
:class:`~mlwright.nets.config.NetConfig` with the backend Keras runs on.

.. code-block:: yaml

    name: digits-cnn-keras
    backend: jax                                   # or tensorflow, torch
    model: examples.keras_digits_cnn:make_model    # config.params → a keras.Model
    data: examples.keras_digits_cnn:make_data      # config.data_params → (x, y) arrays
    loss: cross_entropy
    metrics: [accuracy]
    params: {channels: 16, dropout: 0.1}
    train: {epochs: 10, batch_size: 64, lr: 0.005}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlwright.nets.config import CommonLoopSettings, NetConfig


class KerasLoopSettings(CommonLoopSettings):
    """The Keras training loop's settings (AdamW with ``global_clipnorm``; each epoch's order
    of examples comes from the seed and the epoch)."""

    seed: int = Field(
        0, description="seeds Python, NumPy and the backend (keras.utils.set_random_seed)"
    )


class KerasConfig(NetConfig):
    """One bring-your-own Keras 3 model run."""

    backend: Literal["jax", "tensorflow", "torch"] = Field(
        "jax", description="the backend Keras runs on (KERAS_BACKEND); jax by default"
    )
    model: str = Field(description="module:function that takes `params` and returns a keras.Model")
    data: str = Field(
        description="module:function that takes `data_params` and returns (x, y) arrays, or "
        "((x, y), (x_valid, y_valid))"
    )
    train: KerasLoopSettings = KerasLoopSettings()


__all__ = ["KerasConfig", "KerasLoopSettings"]
