"""Moved to :mod:`mlwright.monitor.settings`."""

from mlwright.monitor.settings import DriftSettings

Settings = DriftSettings  # the name under serve/; mlwright.config.Settings is the settings base

__all__ = ["DriftSettings", "Settings"]
