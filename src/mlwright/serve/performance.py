"""Moved to :mod:`mlwright.monitor.performance`."""

from mlwright.monitor.performance import LIVE_METRICS, live_performance

__all__ = ["LIVE_METRICS", "live_performance"]
