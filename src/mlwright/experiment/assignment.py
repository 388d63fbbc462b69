"""Assignment of traffic to an experiment's variants.

Assignment is sticky: the entity key (the request's ``entity_key`` field, or a header) is hashed
with the experiment's salt into a bucket in [0, 1), and the bucket falls in one variant's range,
so a key keeps its variant across requests, workers and restarts. A request without a key is
assigned at random. Challengers' ranges start at 0, so raising a challenger's weight (a canary
ramp) only moves keys from the champion to it, never back.
"""

from __future__ import annotations

import hashlib
import random

from mlwright.experiment.config import ExperimentConfig


def bucket(salt: str, key: str) -> float:
    """A key's place in [0, 1): the first 8 bytes of sha256(salt:key)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Router:
    """Assigns requests to variants by their key's bucket."""

    def __init__(self, config: ExperimentConfig, *, seed: int | None = None) -> None:
        self.config = config
        self.salt = config.salt or config.id
        self._random = random.Random(seed)

    def assign(self, key: str | None, weights: dict[str, float]) -> str:
        """The variant for ``key`` (random without one) under ``weights``."""
        u = self._random.random() if key is None else bucket(self.salt, key)
        champion = self.config.champion.name
        edge = 0.0
        for name, share in weights.items():
            if name == champion:
                continue
            edge += share
            if u < edge:
                return name
        return champion
