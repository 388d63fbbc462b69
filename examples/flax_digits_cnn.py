"""A small CNN on scikit-learn's bundled 8×8 digit images, in Flax NNX, trained with
``mlwright train-jax``.

    mlwright train-jax --config examples/flax_digits_cnn.yaml   # from the repository's root

Pooling is written with keyword arguments (``window_shape=``, ``strides=``), the form the ONNX
exporter (jax2onnx) converts.
"""

from __future__ import annotations

from typing import Any

from examples.keras_digits_cnn import make_data


def make_model(params: dict[str, Any], rngs: Any) -> Any:
    from flax import nnx

    class DigitsCNN(nnx.Module):
        def __init__(self, channels: int, dropout: float, rngs: nnx.Rngs) -> None:
            self.conv1 = nnx.Conv(1, channels, (3, 3), rngs=rngs)  # 8×8, channels last
            self.conv2 = nnx.Conv(channels, 2 * channels, (3, 3), rngs=rngs)
            self.dropout = nnx.Dropout(dropout, rngs=rngs)
            self.head = nnx.Linear(2 * channels * 4, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            x = nnx.max_pool(nnx.relu(self.conv1(x)), window_shape=(2, 2), strides=(2, 2))
            x = nnx.max_pool(nnx.relu(self.conv2(x)), window_shape=(2, 2), strides=(2, 2))
            x = x.reshape(x.shape[0], -1)  # 2×2×(2·channels)
            return self.head(self.dropout(x))  # logits

    return DigitsCNN(int(params["channels"]), float(params["dropout"]), rngs)


__all__ = ["make_data", "make_model"]
