"""Experiments as the serving store keeps them: status (and why one stopped), config, canary step.

A status is ``running`` or ``stopped: <reason>`` (:func:`split_status`); servers read it so that
a stop reaches every worker, and `mlwright experiment` reads and writes it without a server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlwright.experiment.config import ExperimentConfig
from mlwright.store.experiments import experiment_record, experiment_rows


def split_status(text: str) -> tuple[str, str | None]:
    """``stopped: why`` → (``stopped``, ``why``); ``running`` → (``running``, None)."""
    status, _, reason = text.partition(": ")
    return status, reason or None


def stored_experiments(store: Path) -> list[dict[str, Any]]:
    """Every experiment the store knows: id, status, reason, config, started, step."""
    return [
        _described(exp_id, saved, status, updated)
        for exp_id, saved, status, updated in experiment_rows(store)
    ]


def stored_experiment(store: Path, experiment_id: str) -> dict[str, Any] | None:
    """One experiment as :func:`stored_experiments` describes it; None when the store does not
    know it."""
    found = experiment_record(store, experiment_id)
    return None if found is None else _described(experiment_id, found[0], found[1], None)


def _described(
    exp_id: str, saved: dict[str, Any], status: str, updated: float | None
) -> dict[str, Any]:
    state, reason = split_status(status)
    return {
        "id": exp_id,
        "status": state,
        "reason": reason,
        "config": ExperimentConfig.model_validate(saved["config"]),
        "started": saved.get("started"),
        "step": int(saved.get("step", 0)),
        "updated": updated,
    }
