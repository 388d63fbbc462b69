"""A small CNN on scikit-learn's bundled 8×8 digit images, trained with mlwright.torch.

    python -m examples.digits_cnn                 # from the repository's root
    # or, in Python: fit(TorchConfig.from_yaml("examples/digits_cnn.yaml"))

Every hyperparameter comes from the config (examples/digits_cnn.yaml): the factory and the data
function take their ``params`` and nothing else.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset


def make_model(params: dict[str, Any]) -> nn.Module:
    channels = int(params["channels"])
    return nn.Sequential(
        nn.Conv2d(1, channels, kernel_size=3, padding=1),  # 8×8
        nn.ReLU(),
        nn.MaxPool2d(2),  # 4×4
        nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 2×2
        nn.Flatten(),
        nn.Dropout(float(params["dropout"])),
        nn.Linear(2 * channels * 4, 10),
    )


def make_data(params: dict[str, Any]) -> TensorDataset:
    """All 1,797 images as one dataset (mlwright holds out the validation share by the seed):
    inputs (1, 8, 8) scaled to [0, 1], targets the digit."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    limit = params.get("rows")
    images = torch.tensor(digits.images[:limit], dtype=torch.float32).unsqueeze(1) / 16.0
    return TensorDataset(images, torch.tensor(digits.target[:limit], dtype=torch.long))


if __name__ == "__main__":
    from pathlib import Path

    from mlwright.torch import TorchConfig, fit

    result = fit(TorchConfig.from_yaml(Path(__file__).with_suffix(".yaml")))
    print(f"best epoch {result.best_epoch}: {result.history[result.best_epoch - 1].metrics}")
