"""Moved to :mod:`mlwright.monitor.settings`."""

from mlwright.monitor.settings import Settings

__all__ = ["Settings"]
