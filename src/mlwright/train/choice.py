"""The final choice: the best candidate (one trial, or an ensemble of trials) whose final model
meets the run's constraints.

:func:`build_candidates` turns the search's trials into candidates: the best trial, a greedy
blend and a stack of the best trials (:mod:`mlwright.train.ensemble`), ordered by their
cross-fitted scores, then the next best single trials. An ensemble whose members' refits would
not end before the deadline is left out, with the reason recorded.

Without ``--latency-budget-ms`` and ``--max-model-mb`` the first candidate is chosen. With
either, each candidate's final model is measured the way
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright.config import TrainOptions
from mlwright.data.tasks import Task
from mlwright.errors import MlwrightError
from mlwright.evaluate.metrics import signed
from mlwright.train.ensemble import (
    POOL,
    Blend,
    choose_combination,
    greedy_weights,
    judged_rows,
    pool_of,
    simplest_first,
    standard_error,
    top_and_each_group,
)

if TYPE_CHECKING:
    from mlwright.package.model import Model
    from mlwright.train.search import Trial

MAX_CANDIDATES = 6
OFFERED = 5 * POOL  # trials whose out-of-fold predictions the combinations are chosen from


@dataclass
class Candidate:
    """A final model: one trial (``single``), or a ``weighted`` / ``stacked`` ensemble."""

    kind: str
    members: list[Trial]
    blend: Blend | None
    mean: float | None
    std: float | None
    oof: np.ndarray  # out-of-fold (for an ensemble: cross-fitted) predictions; NaN where none

    @property
    def folds(self) -> int:
        """Validation folds the score rests on: fewer than planned when the clock cut a trial
        (for an ensemble, its members' fewest)."""
        return min(len(t.fold_scores) for t in self.members)

    @property
    def family(self) -> str:
        return self.members[0].family if self.kind == "single" else "ensemble"

    @property
    def number(self) -> int | None:
        return self.members[0].number if self.kind == "single" else None

    @property
    def label(self) -> str:
        if self.kind == "single":
            return f"trial {self.members[0].number} ({self.members[0].family})"
        parts = ", ".join(f"{t.number} {t.family}" for t in self.members)
        return f"{self.kind} ensemble of trials {parts}"

    def spec(self, refit: Callable[[Trial], dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """(family, refit parameters) of the final model; ``refit(trial)`` gives a trial's."""
        if self.blend is None:
            return self.family, refit(self.members[0])
        members = [
            {"family": t.family, "params": refit(t), "trial": t.number} for t in self.members
        ]
        return "ensemble", {"members": members, "blend": self.blend.to_dict()}


def build_candidates(
    ranked: list[Trial],
    y: np.ndarray,
    val_sets: list[np.ndarray],
    *,
    metric: str,
    task: Task,
    seed: int,
    fit_seconds: Callable[[list[Trial]], float],
    time_left: float | None,
    combine_until: float | None = None,
) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """Candidates best first, and every combination that was judged (for the recipe)."""
    singles = [Candidate("single", [t], None, t.mean, t.std, _oof(t)) for t in ranked]
    offered = _offered(ranked)
    if len(offered) < 2:
        return singles[:MAX_CANDIDATES], []
    judged = judged_rows([_oof(t) for t in offered], y, val_sets, seed)
    if len(judged.y) < 20:
        return singles[:MAX_CANDIDATES], []
    groups = [t.family for t in offered]
    costs = [fit_seconds([t]) for t in offered]
    notes: list[str] = []
    options = choose_combination(
        judged,
        metric,
        task,
        seed,
        groups=groups,
        costs=costs,
        cap=time_left,
        until=combine_until,
        notes=notes,
    )
    wanted: list[Trial] = []  # the blend without the cap
    if time_left is not None:
        pool = pool_of(judged, metric, groups=groups)
        unlimited = greedy_weights([judged.oofs[i] for i in pool], judged.y, metric)
        wanted = [offered[i] for i, v in zip(pool, unlimited, strict=True) if v > 0]
    candidates: list[Candidate] = []
    kept: list[Any] = []  # the options whose candidates are in ``candidates``, in step
    judged_log = []
    for option in options:
        members = [offered[i] for i in option.members]
        entry: dict[str, Any] = {
            "kind": option.name,
            "trials": [t.number for t in members],
            "cv": round(option.mean, 10),
            "fold_scores": [round(s, 10) for s in option.fold_scores],
            "rows": len(judged.y),
        }
        if option.blend is not None:
            entry["blend"] = option.blend.to_dict()
        entry["predict_ms_estimate"] = _predict_ms(members)
        judged_log.append(entry)
        if option.name == "single":
            candidates.append(next(c for c in singles if c.members[0] is members[0]))
            kept.append(option)
            continue
        assert option.blend is not None
        cost = fit_seconds(members)
        entry["fit_seconds_estimate"] = round(cost, 3)
        if time_left is not None and {t.number for t in wanted} != {t.number for t in members}:
            entry["limited_by_time"] = (
                f"members whose refits fit the {time_left:.1f} s left; without that limit the "
                f"blend takes trials {', '.join(str(t.number) for t in wanted)} "
                f"(~{fit_seconds(wanted):.1f} s)"
            )
        if time_left is not None and cost > time_left + 1e-9:  # the blends fit it by design
            entry["skipped"] = f"refitting its members needs ~{cost:.1f} s, {time_left:.1f} s left"
            continue
        # the cross-fitted predictions (pool, members and weights learned without the row's
        # fold): what the threshold, calibration and conformal residuals are fitted on
        oof = np.full_like(_oof(members[0]), np.nan)
        oof[judged.rows] = option.oof
        std = float(np.std(option.fold_scores)) if len(option.fold_scores) > 1 else None
        candidates.append(Candidate(option.name, members, option.blend, option.mean, std, oof))
        kept.append(option)
    judged_log += [{"kind": "stacked", "skipped": note} for note in notes]
    # an option left out for time: the rule (simplest first) chooses again among the others
    order = [next(i for i, k in enumerate(kept) if k is o) for o in simplest_first(kept, metric)]
    candidates = [candidates[i] for i in order]
    rest = [c for c in singles if all(c is not d for d in candidates)]
    return candidates + rest[: MAX_CANDIDATES - 1], judged_log


def _offered(ranked: list[Trial]) -> list[Trial]:
    """The trials the combinations are chosen from, best first: the OFFERED best with
    out-of-fold predictions, then the best of each family not among them."""
    usable = [t for t in ranked if t.oof is not None]
    chosen = top_and_each_group(list(range(len(usable))), [t.family for t in usable], OFFERED)
    return [usable[i] for i in chosen]


def tradeoff(candidates: list[Candidate]) -> list[dict[str, Any]]:
    """Each candidate's out-of-fold score and its model's single-row predict time (the sum of
    its members' as measured during the search): the accuracy/latency trade-off."""
    return [
        {
            "label": c.label,
            "kind": c.kind,
            "cv": c.mean,
            "predict_ms_estimate": _predict_ms(c.members),
        }
        for c in candidates
    ]


def explain_choice(best: Candidate, combinations: list[dict[str, Any]], metric: str) -> str | None:
    """Why the chosen candidate beat the other combinations, or why an ensemble with a higher
    mean was not chosen (its gain within the folds' noise); None when there was no contest."""
    combinations = [c for c in combinations if "cv" in c]  # not those skipped before judging
    if not combinations:
        return None
    single = next(c for c in combinations if c["kind"] == "single")
    if best.kind != "single":
        chosen = next(c for c in combinations if c["kind"] == best.kind)
        return (
            f"chose a {best.kind} ensemble of {len(best.members)} trials "
            f"({', '.join(t.family for t in best.members)}): cv {metric} {chosen['cv']:.5f} "
            f"against {single['cv']:.5f} for the best single trial (both cross-fitted), a gain "
            f"beyond its standard error across folds"
        )
    higher = [
        c
        for c in combinations
        if c["kind"] != "single" and signed(metric, c["cv"]) > signed(metric, single["cv"])
    ]
    if not higher:
        return None
    top = max(higher, key=lambda c: signed(metric, c["cv"]))
    se = standard_error(np.subtract(top["fold_scores"], single["fold_scores"]))
    return (
        f"kept the best single trial: the {top['kind']} ensemble's cross-fitted {metric} "
        f"{top['cv']:.5f} against {single['cv']:.5f} is a gain within its standard error "
        f"({se:.5f}) across folds"
    )


def _predict_ms(members: list[Trial]) -> float | None:
    times = [t.predict_ms for t in members]
    return None if None in times else round(sum(t or 0.0 for t in times), 4)


def _oof(trial: Trial) -> np.ndarray:
    assert trial.oof is not None
    return trial.oof


class ChoiceError(MlwrightError):
    """No candidate's final model met the run's latency or size constraint."""


def choose_final(
    candidates: list[Candidate],
    finish: Callable[[Candidate], Model],
    options: TrainOptions,
    emit: Callable[[str, Any], None],
) -> tuple[Candidate, Model, list[dict[str, Any]]]:
    """(candidate, final model, measured candidates) of the chosen candidate, for a run with a
    latency budget or a size limit. ``finish(candidate)`` fits a candidate's final model."""
    checks: list[dict[str, Any]] = []
    for candidate in candidates[:MAX_CANDIDATES]:
        model = finish(candidate)
        check = measure(model, candidate, options)
        checks.append(check)
        if check["ok"]:
            if len(checks) > 1:
                emit("decision", f"chose {candidate.label}: {check['reason']}")
            return candidate, model, checks
        emit(
            "decision",
            f"{candidate.label} (cv {candidate.mean:.5f}) is not eligible: "
            f"{check['reason']}; trying the next best",
        )
    shown = "; ".join(f"{c['label']}: {c['reason']}" for c in checks)
    raise ChoiceError(
        f"no candidate meets the constraints ({shown})",
        fix="raise --latency-budget-ms or --max-model-mb, or pass --family with faster, "
        "smaller families (linear, lightgbm)",
    )


def measure(model: Model, candidate: Candidate, options: TrainOptions) -> dict[str, Any]:
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
        "label": candidate.label,
        "trial": candidate.number,
        "trials": [t.number for t in candidate.members],
        "family": candidate.family,
        "cv": candidate.mean,
        "p99_ms": round(p99, 3),
        "size_mb": round(size_mb, 3),
        "ok": not problems,
        "reason": "; ".join(problems) if problems else within,
    }


__all__ = [
    "Candidate",
    "ChoiceError",
    "build_candidates",
    "choose_final",
    "explain_choice",
    "measure",
    "tradeoff",
]
