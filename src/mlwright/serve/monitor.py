"""Moved to :mod:`mlwright.monitor.overview` and :mod:`mlwright.monitor.gauges`."""

from mlwright.monitor.gauges import MonitorGauges
from mlwright.monitor.overview import Monitored, Overview, overview, parse_since, step_for

__all__ = ["MonitorGauges", "Monitored", "Overview", "overview", "parse_since", "step_for"]
