"""Tracking and the model registry: MLflow by default, W&B in addition."""
