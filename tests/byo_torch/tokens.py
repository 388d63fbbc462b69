"""A tiny bag-of-embeddings classifier over variable-length token sequences, for the tests:
dict inputs (named ``tokens``), int64 dtype, a dimension of any length."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Bag(nn.Module):
    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(tokens).mean(dim=1))


def make_model(params: dict[str, Any]) -> nn.Module:
    return Bag(int(params["vocab"]), int(params["dim"]))


def make_data(params: dict[str, Any]) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Sequences of 4 or 7 tokens; the label says whether token 3 occurs."""
    g = torch.Generator().manual_seed(int(params["seed"]))
    items = []
    for i in range(int(params["rows"])):
        tokens = torch.randint(0, int(params["vocab"]), (4 if i % 2 else 7,), generator=g)
        items.append(({"tokens": tokens}, torch.tensor(int((tokens == 3).any()))))
    return items
