"""Metrics (by the names in ``mlwright.data.tasks``) and evaluation of predictions."""
