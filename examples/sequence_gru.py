"""A GRU on the adding problem, a generated sequence task, trained with mlwright.torch.

Each sequence holds ``length`` steps of two channels: a random value in [0, 1], and a marker
that is 1 at exactly two steps. The target is the sum of the two marked values: the network
must remember them across the sequence (predicting the mean, 1.0, scores an MAE of about 0.33).
The GRU's gradients are clipped, as mlwright requires for recurrent layers.

    python -m examples.sequence_gru               # from the repository's root
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset


class AddingGRU(nn.Module):
    def __init__(self, hidden: int, layers: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(2, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1)


def make_model(params: dict[str, Any]) -> nn.Module:
    return AddingGRU(int(params["hidden"]), int(params["layers"]))


def make_data(params: dict[str, Any]) -> tuple[TensorDataset, TensorDataset]:
    """Separate training and validation sets, each generated from its own seed."""

    def generate(rows: int, seed: int) -> TensorDataset:
        g = torch.Generator().manual_seed(seed)
        length = int(params["length"])
        values = torch.rand(rows, length, generator=g)
        marks = torch.zeros(rows, length)
        first = torch.randint(0, length // 2, (rows,), generator=g)
        second = torch.randint(length // 2, length, (rows,), generator=g)
        marks[torch.arange(rows), first] = 1.0
        marks[torch.arange(rows), second] = 1.0
        target = (values * marks).sum(dim=1)
        return TensorDataset(torch.stack([values, marks], dim=2), target)

    seed = int(params["seed"])
    return generate(int(params["train_rows"]), seed), generate(int(params["valid_rows"]), seed + 1)


if __name__ == "__main__":
    from pathlib import Path

    from mlwright.torch import TorchConfig, fit

    result = fit(TorchConfig.from_yaml(Path(__file__).with_suffix(".yaml")))
    print(f"best epoch {result.best_epoch}: {result.history[result.best_epoch - 1].metrics}")
