"""When the budget bites, what the run reports says so: the folds a score rests on, trials the
clock cut, the final model's rounds; a single fold shows no spread rather than "± 0"."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from mlwright.cli.train_view import TrainPrinter
from mlwright.train.choice import Candidate
from mlwright.train.models import get_family
from mlwright.train.recipe import Recipe
from mlwright.train.runner import _refit_params, cv_summary
from mlwright.train.search import Trial


def cut_trial(fitted: list[dict[str, Any]], scores: list[float]) -> Trial:
    defaults = dict(get_family("lightgbm").space().defaults)
    trial = Trial(0, "lightgbm", defaults, "default", status="cut", fold_scores=scores)
    trial.mean, trial.std = float(np.mean(scores)), None
    trial.fitted = fitted
    return trial


def test_a_score_resting_on_one_cut_fold_says_so() -> None:
    # case 5: one trial, cut after 1 of 5 folds, its final LightGBM with 2 boosting rounds
    trial = cut_trial([{"rounds": 2}], [0.82567])
    best = Candidate("single", [trial], None, trial.mean, trial.std, np.zeros(10))
    refit = _refit_params(trial, "binary", 2, 0, 1)
    cv = cv_summary(best, [trial], "roc_auc", 5, refit)
    assert cv["folds"] == 1 and cv["folds_planned"] == 5
    assert cv["std"] is None
    assert cv["trials_cut"] == 1
    assert "1 of 5 planned validation fold(s)" in cv["note"]
    assert f"{refit['rounds']} boosting round(s)" in cv["note"]

    out = io.StringIO()
    model = SimpleNamespace(
        metrics={"cv": cv, "test": None},
        recipe=Recipe.read({"chosen": {"trial": 0, "family": "lightgbm"}, "elapsed_s": 10.2}),
        threshold=None,
        path=None,
        registry=None,
    )
    TrainPrinter(Console(file=out, width=200)).summary(Console(file=out, width=200), model)  # type: ignore[arg-type]
    shown = out.getvalue()
    assert "roc_auc 0.82567 over 1 of 5 planned fold(s)" in shown
    assert "±" not in shown
    assert "warning: the time budget bit" in shown


def test_a_full_run_carries_no_note() -> None:
    trial = cut_trial([{"rounds": 80}] * 5, [0.8, 0.81, 0.79, 0.8, 0.82])
    trial.status, trial.std = "ok", 0.01
    best = Candidate("single", [trial], None, trial.mean, trial.std, np.zeros(10))
    cv = cv_summary(best, [trial], "roc_auc", 5, {"rounds": 88})
    assert cv["note"] is None and cv["folds"] == 5 and cv["std"] == 0.01


def test_the_refit_learns_from_the_folds_that_finished() -> None:
    # the last fold was stopped by the search's end after 2 rounds: the refit ignores it
    trial = cut_trial([{"rounds": 100}, {"rounds": 120}, {"rounds": 2}], [0.8, 0.81, 0.7])
    trial.last_fold_cut = True
    assert _refit_params(trial, "binary", 2, 0, 1)["rounds"] == round(110 * 1.1)
    # folds capped at their share of the time, or a trial stopped between folds: every fold
    trial.last_fold_cut = False
    assert _refit_params(trial, "binary", 2, 0, 1)["rounds"] == round(74 * 1.1)


def timed(family: str, seconds: float, folds: int = 5) -> Trial:
    trial = Trial(0, family, {}, "default", status="ok", fold_scores=[0.8] * folds)
    trial.seconds = seconds
    return trial


def test_the_cost_model_learns_per_family_and_scales_unseen_families() -> None:
    from mlwright.train.budget import fold_seconds

    assert fold_seconds("lightgbm", [], 1000) is None  # nothing timed yet: no estimate
    done = [timed("lightgbm", 5.0), timed("lightgbm", 7.0)]
    assert fold_seconds("lightgbm", done, 1000) == 1.2  # the median of its trials, per fold
    # a family not seen yet: the others' time through the families' relative costs, the
    # largest estimate (starting a trial the clock then cuts wastes more than skipping one)
    catboost = get_family("catboost").relative_cost
    assert fold_seconds("catboost", done, 1000) == pytest.approx(1.4 * catboost)


def test_no_trial_starts_that_the_cost_model_says_cannot_end_in_time() -> None:
    import time

    from mlwright.train.budget import Budget

    budget = Budget(60.0, time.monotonic(), folds=5, search_rows=1000, after_rows=1000)
    done = [timed("linear", 1.0), timed("random_forest", 30.0)]
    end = time.monotonic() + 10.0
    assert budget.refuses("linear", done, end) is None
    reason = budget.refuses("random_forest", done, end)
    assert reason is not None and "about 30.0 s" in reason
    # an unseen family, estimated from the timed ones through the relative costs
    assert budget.refuses("random_forest", [timed("linear", 1.0)], time.monotonic() + 5.0)


@pytest.mark.usefixtures("whole_machine")  # the policy only looks when there are 2+ cores
def test_a_timed_run_leaves_alone_the_cores_other_programs_keep_busy() -> None:
    import subprocess
    import sys
    import time

    from mlwright.config import TrainOptions, usable_cores
    from mlwright.train.threads import fit_threads

    options = TrainOptions(target="y")
    usable = usable_cores()
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(usable)]
    try:
        time.sleep(0.3)
        threads, reason = fit_threads(options, timed=True)
        untimed, _ = fit_threads(options, timed=False)
        given, _ = fit_threads(TrainOptions(target="y", threads=3), timed=True)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    assert threads == 1
    assert usable == 1 or (reason is not None and "other programs" in reason)
    assert untimed == usable  # the reproducible mode does not depend on the machine's load
    assert given == 3


def test_a_chosen_trial_capped_by_time_says_so() -> None:
    trial = cut_trial([{"rounds": 40}] * 5, [0.8, 0.81, 0.79, 0.8, 0.82])
    trial.status, trial.std, trial.capped_folds = "ok", 0.01, 5
    best = Candidate("single", [trial], None, trial.mean, trial.std, np.zeros(10))
    cv = cv_summary(best, [trial], "roc_auc", 5, {"rounds": 44})
    assert cv["trials_capped"] == 1 and cv["trials_cut"] == 0 and cv["std"] == 0.01
    assert "capped by time in 5 fold(s)" in cv["note"] and "44 boosting round(s)" in cv["note"]
