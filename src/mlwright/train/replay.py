"""The earlier name of :mod:`mlwright.train.reproduce`, kept for code that imports it."""

from __future__ import annotations

from mlwright.train.reproduce import Reproduction, reproduce

ReplayResult = Reproduction
replay = reproduce

__all__ = ["ReplayResult", "Reproduction", "replay", "reproduce"]
