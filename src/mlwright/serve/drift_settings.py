"""Moved to :mod:`mlwright.monitor.settings`."""

from mlwright.monitor.settings import DriftSettings, Settings

__all__ = ["DriftSettings", "Settings"]
