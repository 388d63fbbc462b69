"""A GRU on the adding problem, a generated sequence task, in Keras 3, trained with
``mlwright train-keras``.

Each sequence holds ``length`` steps of two channels: a random value in [0, 1], and a marker
that is 1 at exactly two steps. The target is the sum of the two marked values: the network
must remember them across the sequence (predicting the mean, 1.0, scores an MAE of about 0.33).
The GRU's gradients are clipped, as mlwright requires for recurrent layers.

    mlwright train-keras --config examples/keras_sequence_gru.yaml
"""

from __future__ import annotations

from typing import Any

import numpy as np


def make_model(params: dict[str, Any]) -> Any:
    import keras

    return keras.Sequential(
        [
            keras.Input((None, 2), name="sequence"),  # (steps, channels)
            keras.layers.GRU(int(params["hidden"])),
            keras.layers.Dense(1),
        ]
    )


def adding_problem(rows: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` sequences of ``length`` steps (values, markers) and their targets."""
    rng = np.random.default_rng(seed)
    values = rng.random((rows, length), dtype="float32")
    marks = np.zeros((rows, length), dtype="float32")
    marks[np.arange(rows), rng.integers(0, length // 2, rows)] = 1.0
    marks[np.arange(rows), rng.integers(length // 2, length, rows)] = 1.0
    return np.stack([values, marks], axis=2), (values * marks).sum(axis=1)


def make_data(params: dict[str, Any]) -> tuple[Any, Any]:
    """Separate training and validation sets, each generated from its own seed."""
    length, seed = int(params["length"]), int(params["seed"])
    return (
        adding_problem(int(params["train_rows"]), length, seed),
        adding_problem(int(params["valid_rows"]), length, seed + 1),
    )
