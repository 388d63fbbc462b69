"""Successive halving on large tables: configurations first train on a share of each fold's
rows, the best third again on every row, and only those can become the final model."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.config import TrainOptions
from mlwright.design.plan import make_plan
from mlwright.train.budget import Budget
from mlwright.train.models.features import FeatureEncoder
from mlwright.train.search import (
    SearchData,
    SearchLimits,
    Trial,
    first_rung,
    ranked_trials,
    run_search,
)


def regression(n: int) -> pd.DataFrame:
    r = np.random.default_rng(0)
    frame = pd.DataFrame(r.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    frame["y"] = frame.a + frame.b * frame.c + np.sin(3 * frame.d) + r.normal(scale=0.5, size=n)
    return frame


def test_the_plan_halves_a_large_timed_search_and_never_an_untimed_one() -> None:
    problem = mw.profile(regression(20_000), target="y")
    plan = make_plan(problem, TrainOptions(target="y", time_budget=60))
    assert plan.halving_rows is not None and 4_000 <= plan.halving_rows < 12_800
    assert "best third" in (plan.halving_reason or "")
    assert make_plan(problem, TrainOptions(target="y", max_trials=5)).halving_rows is None
    small = mw.profile(regression(3_000), target="y")
    assert make_plan(small, TrainOptions(target="y", time_budget=60)).halving_rows is None


def search_data(n: int) -> SearchData:
    """``n`` rows of :func:`regression` in four folds."""
    frame = regression(n)
    schema = mw.infer_schema(frame, target="y")
    rows = np.arange(n)
    splits = [(np.setdiff1d(rows, rows[k::4]), rows[k::4]) for k in range(4)]
    return SearchData(
        frame.drop(columns="y"), schema.features, frame.y.to_numpy(), None, splits, FeatureEncoder
    )


def halving_search(order: list[str]) -> list[Trial]:
    n = 8_000
    data = search_data(n)
    budget = Budget(120.0, time.monotonic(), folds=4, search_rows=n, after_rows=n, metric="rmse")
    fast = {"learning_rate": 0.2, "max_rounds": 100, "early_stopping_rounds": 10}
    configs = {"lightgbm": {**mw_defaults("lightgbm"), **fast}, "linear": mw_defaults("linear")}
    return run_search(
        data,
        order,
        task="regression",
        n_classes=0,
        metric="rmse",
        seed=0,
        threads=1,
        limits=SearchLimits(max_trials=None, budget=budget, halving_rows=1_500),
        static=[(family, configs[family], "default") for family in order],
    )


def test_first_rung_trials_choose_what_is_scored_again_on_every_row() -> None:
    # asynchronous halving: a first-rung trial is scored again when, as it ends, it is among the
    # best third of the first rung so far; the first one always is
    trials = halving_search(["lightgbm", "linear"])
    first = [t for t in trials if t.rows == 1_500]
    again = [t for t in trials if t.rows is None]
    assert [t.family for t in first] == ["lightgbm", "linear"]
    # lightgbm, first and better, is scored again; linear, behind it, is not
    assert [(t.family, t.params) for t in again] == [("lightgbm", first[0].params)]
    assert again[0].source.endswith("promoted") and again[0].status == "ok"
    assert again[0].mean is not None and first[0].mean is not None
    assert again[0].mean < first[0].mean  # more rows, a better model
    # only trials on every row can become the final model
    assert ranked_trials(trials, "rmse") == again
    assert all(t.oof is not None and not np.isnan(t.oof).any() for t in trials)


def test_a_better_configuration_told_later_is_scored_again_too() -> None:
    trials = halving_search(["linear", "lightgbm"])
    again = [t.family for t in trials if t.rows is None]
    assert again == ["linear", "lightgbm"]  # linear as the first told, lightgbm as the better
    assert ranked_trials(trials, "rmse")[0].family == "lightgbm"


def test_the_first_rung_is_a_fixed_seeded_sample_of_the_fold() -> None:
    a = first_rung(10_000, 2_500, seed=0, fold=1)
    assert len(a) == len(set(a)) == 2_500 and (np.diff(a) > 0).all()
    assert (a == first_rung(10_000, 2_500, seed=0, fold=1)).all()
    assert not (a == first_rung(10_000, 2_500, seed=0, fold=2)).all()


def mw_defaults(family: str) -> dict[str, object]:
    from mlwright.train.models import get_family

    return dict(get_family(family).space().defaults)


def test_a_trial_the_clock_would_cut_finishes_every_fold_with_capped_rounds() -> None:
    # boosting that would run far past the budget: once a trial has ended, each fold of the
    # next stops at its share of the time left, keeping the rounds it had, so the trial ends
    # whole instead of being cut mid-way; the first trial, with nothing to compare, runs to
    # the search's end (one fold of a real model beats five folds of a few rounds)
    n = 6_000
    data = search_data(n)
    endless = {
        "lightgbm": {"learning_rate": 1e-4, "max_rounds": 10**6, "early_stopping_rounds": 10**6},
        "hist_gb": {"learning_rate": 1e-4, "max_iter": 10**6, "n_iter_no_change": 10**6},
    }

    def search(static: list[tuple[str, dict[str, object], str]]) -> tuple[list[Trial], float]:
        started = time.monotonic()
        budget = Budget(8.0, started, folds=4, search_rows=n, after_rows=n, metric="rmse")
        trials = run_search(
            data,
            sorted({f for f, _, _ in static}),
            task="regression",
            n_classes=0,
            metric="rmse",
            seed=0,
            threads=1,
            limits=SearchLimits(max_trials=len(static), budget=budget),
            static=static,
        )
        return trials, time.monotonic() - started

    for family in ("lightgbm", "hist_gb"):
        params = {**mw_defaults(family), **endless[family]}
        first = ("linear", mw_defaults("linear"), "default")
        (quick, trial), wall = search([first, (family, params, "default")])
        assert quick.status == "ok" and quick.capped_folds == 0
        assert trial.status == "ok", (family, trial.status, trial.error)
        assert len(trial.fold_scores) == 4 and trial.capped_folds == 4
        assert wall < 8.0
        key = "rounds" if family == "lightgbm" else "iterations"
        assert all(0 < f[key] < 10**6 for f in trial.fitted)

    [alone], wall = search([("lightgbm", {**mw_defaults("lightgbm"), **endless["lightgbm"]}, "x")])
    assert alone.status == "cut" and len(alone.fold_scores) == 1 and wall < 8.0


def test_histogram_boosting_in_chunks_is_the_single_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    # with a deadline, rounds are added in chunks to look at the clock; the model must be the one
    # a single fit makes, also when early stopping ends the fit right at a chunk's last round
    from sklearn.datasets import make_classification

    from mlwright.train.models import hist_gb
    from mlwright.train.models.base import FitContext
    from mlwright.train.models.features import Design

    x, y = make_classification(1500, 8, random_state=0, flip_y=0.1)
    design = Design(x, [f"f{i}" for i in range(8)])
    params = {**mw_defaults("hist_gb"), "learning_rate": 0.2, "max_iter": 500}
    params["n_iter_no_change"] = 5
    untimed = FitContext("binary", 2, 0, 1)
    single = hist_gb.HistGBFamily(params, untimed).fit(design, y)
    rounds = single.fitted_["iterations"]
    assert rounds < 500  # early stopping ended it
    timed = replace(untimed, deadline=time.monotonic() + 600)
    for chunk in (rounds, max(1, rounds // 2), 7):
        monkeypatch.setattr(hist_gb, "_CHUNK", chunk)
        chunked = hist_gb.HistGBFamily(params, timed).fit(design, y)
        assert chunked.fitted_["iterations"] == rounds, chunk
        np.testing.assert_array_equal(chunked.predict_raw(design), single.predict_raw(design))
