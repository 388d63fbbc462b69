"""The final choice: the best trial whose final model meets the run's constraints.

Without ``--latency-budget-ms`` and ``--max-model-mb`` the best trial out of fold is chosen (the
runner does not call this module). With either, each candidate's final model is measured the way
it will be served: written as a package (its size on disk) and loaded back on one thread, its
single-row p99 taken through the server's request path on its golden rows, as the deployment gate
will. Candidates are taken best first (at most MAX_CANDIDATES); the first that meets every
constraint is chosen. Every measured candidate is recorded in the recipe (its score, latency and
size: the trade-off the report shows) and each rejection is announced. When none qualifies,
training stops with the measurements and what to change.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwright.config import TrainOptions
from mlwright.errors import MlwrightError

if TYPE_CHECKING:
    from mlwright.package.model import Model
    from mlwright.train.search import Trial

MAX_CANDIDATES = 6


class ChoiceError(MlwrightError):
    """No candidate's final model met the run's latency or size constraint."""


def choose_final(
    ranked: list[Trial],
    finish: Callable[[Trial], tuple[Model, dict[str, Any]]],
    options: TrainOptions,
    emit: Callable[[str, Any], None],
) -> tuple[Trial, Model, dict[str, Any], list[dict[str, Any]]]:
    """(trial, final model, refit params, measured candidates) of the chosen trial, for a run
    with a latency budget or a size limit. ``finish(trial)`` fits a trial's final model."""
    checks: list[dict[str, Any]] = []
    for trial in ranked[:MAX_CANDIDATES]:
        model, params = finish(trial)
        check = measure(model, trial, options)
        checks.append(check)
        if check["ok"]:
            if len(checks) > 1:
                emit("decision", f"chose trial {trial.number} ({trial.family}): {check['reason']}")
            return trial, model, params, checks
        emit(
            "decision",
            f"trial {trial.number} ({trial.family}, cv {trial.mean:.5f}) is not eligible: "
            f"{check['reason']}; trying the next best",
        )
    shown = "; ".join(f"trial {c['trial']} ({c['family']}): {c['reason']}" for c in checks)
    raise ChoiceError(
        f"no candidate meets the constraints ({shown})",
        fix="raise --latency-budget-ms or --max-model-mb, or pass --family with faster, "
        "smaller families (linear, lightgbm)",
    )


def measure(model: Model, trial: Trial, options: TrainOptions) -> dict[str, Any]:
    """The candidate's served single-row p99 and package size, against the constraints."""
    from mlwright.package.latency import single_row_p99_ms
    from mlwright.package.store import load_package

    torch = sys.modules.get("torch")  # loading sets torch's threads for serving: put them back
    threads = torch.get_num_threads() if torch is not None else None
    try:
        with tempfile.TemporaryDirectory(prefix="mlwright-candidate-") as tmp:
            path = model.save(Path(tmp) / "candidate")
            size_mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
            p99 = single_row_p99_ms(load_package(path, threads=1))
    finally:
        model.path = None
        if torch is not None and threads is not None:
            torch.set_num_threads(threads)
    problems = []
    budget, limit = options.latency_budget_ms, options.max_model_mb
    if budget is not None and p99 > budget:
        problems.append(f"single-row p99 {p99:.2f} ms is over --latency-budget-ms {budget:g}")
    if limit is not None and size_mb > limit:
        problems.append(f"the package is {size_mb:.1f} MB, over --max-model-mb {limit:g}")
    within = f"p99 {p99:.2f} ms, {size_mb:.2f} MB: within the constraints"
    return {
        "trial": trial.number,
        "family": trial.family,
        "cv": trial.mean,
        "p99_ms": round(p99, 3),
        "size_mb": round(size_mb, 3),
        "ok": not problems,
        "reason": "; ".join(problems) if problems else within,
    }


__all__ = ["ChoiceError", "choose_final", "measure"]
