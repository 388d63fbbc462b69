"""A small CNN on scikit-learn's bundled 8×8 digit images, in Keras 3, trained with
``mlwright train-keras`` (JAX backend by default).

    mlwright train-keras --config examples/keras_digits_cnn.yaml   # from the repository's root

Every hyperparameter comes from the config (examples/keras_digits_cnn.yaml): the factory and
the data function take their ``params`` and nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def make_model(params: dict[str, Any]) -> Any:
    import keras

    channels = int(params["channels"])
    return keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            keras.layers.Conv2D(channels, 3, padding="same", activation="relu"),  # 8×8
            keras.layers.MaxPooling2D(2),  # 4×4
            keras.layers.Conv2D(2 * channels, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),  # 2×2
            keras.layers.Flatten(),
            keras.layers.Dropout(float(params["dropout"])),
            keras.layers.Dense(10),  # logits: the loss is cross_entropy from logits
        ]
    )


def make_data(params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images as one set (mlwright holds out the validation share by the seed):
    inputs (8, 8, 1) scaled to [0, 1], channels last as Keras expects; targets the digit."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    limit = params.get("rows")
    images = (digits.images[:limit] / 16.0).astype("float32")[..., None]
    return images, digits.target[:limit].astype("int64")
