"""What a JAX (Flax NNX) run is made of: :class:`JaxConfig`, a
:class:`~mlwright.nets.config.NetConfig` whose model factory also takes the ``nnx.Rngs``.

.. code-block:: yaml

    name: digits-cnn-flax
    model: examples.flax_digits_cnn:make_model     # (config.params, rngs) → an nnx.Module
    data: examples.flax_digits_cnn:make_data       # config.data_params → (x, y) arrays
    loss: cross_entropy
    metrics: [accuracy]
    params: {channels: 16, dropout: 0.1}
    train: {epochs: 10, batch_size: 64, lr: 0.005}
"""

from __future__ import annotations

from pydantic import Field

from mlwright.nets.config import CommonLoopSettings, NetConfig


class JaxLoopSettings(CommonLoopSettings):
    """The Flax training loop's settings: optax's AdamW after ``clip_by_global_norm``,
    ``MultiSteps`` for ``accumulate``; each epoch's order of examples comes from the seed and
    the epoch."""

    seed: int = Field(
        0, description="seeds the model's nnx.Rngs (parameters, dropout), Python and NumPy"
    )


class JaxConfig(NetConfig):
    """One bring-your-own Flax NNX model run."""

    model: str = Field(
        description="module:function that takes `params` and an nnx.Rngs and returns an nnx.Module"
    )
    data: str = Field(
        description="module:function that takes `data_params` and returns (x, y) arrays, or "
        "((x, y), (x_valid, y_valid))"
    )
    train: JaxLoopSettings = JaxLoopSettings()


__all__ = ["JaxConfig", "JaxLoopSettings"]
