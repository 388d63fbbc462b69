"""Experiments as the serving store keeps them: status (and why one stopped), config, canary step.

A status is ``running`` or ``stopped: <reason>`` (:func:`split_status`); servers read it so that
a stop reaches every worker, and `mlwright experiment` reads and writes it without a server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlwright.experiment.config import ExperimentConfig
from mlwright.store.experiments import experiment_rows


def split_status(text: str) -> tuple[str, str | None]:
    """``stopped: why`` → (``stopped``, ``why``); ``running`` → (``running``, None)."""
    status, _, reason = text.partition(": ")
    return status, reason or None


def stored_experiments(store: Path) -> list[dict[str, Any]]:
    """Every experiment the store knows: id, status, reason, config, started, step."""
    out = []
    for exp_id, saved, status, updated in experiment_rows(store):
        state, reason = split_status(status)
        out.append(
            {
                "id": exp_id,
                "status": state,
                "reason": reason,
                "config": ExperimentConfig.model_validate(saved["config"]),
                "started": saved.get("started"),
                "step": int(saved.get("step", 0)),
                "updated": updated,
            }
        )
    return out
