"""The tuned stage of the search: seeded TPE proposals per family, pruning after a fold."""

from __future__ import annotations

import pandas as pd
import pytest

import mlwright as mw
from mlwright.train.models import FAMILIES, get_family
from mlwright.train.search import Trial, static_plan
from mlwright.train.tuner import FamilyTuner
from tests.conftest import make_frame


@pytest.mark.parametrize("family", [f for f in FAMILIES if get_family(f).space().params])
def test_every_search_space_is_a_valid_study(family: str) -> None:
    space = get_family(family).space()
    tuner = FamilyTuner(space, seed=0, index=0)
    for _ in range(3):
        handle, params = tuner.ask()
        for p in space.params:
            value = params[p.name]
            if p.type == "categorical":
                assert value in p.choices
            else:
                assert p.low is not None and p.high is not None
                assert p.low <= value <= p.high
        tuner.tell(handle, Trial(0, family, params, "tuned", status="failed"), "roc_auc")


def trial(scores: list[float], status: str = "ok") -> Trial:
    space = get_family("lightgbm").space()
    params = {**space.defaults, "lambda_l1": 0.1, "lambda_l2": 0.1}  # inside the space
    mean = sum(scores) / len(scores)
    return Trial(0, "lightgbm", params, "portfolio", status=status, fold_scores=scores, mean=mean)


def test_a_proposal_behind_earlier_trials_is_pruned_after_a_fold() -> None:
    tuner = FamilyTuner(get_family("lightgbm").space(), seed=0, index=0)
    for _ in range(4):
        tuner.observe(trial([0.80, 0.81, 0.79]), "roc_auc")
    handle, _ = tuner.ask()
    stop = tuner.stopper(handle, "roc_auc", frozen=False)
    assert stop(0, 0.60)  # far below the median of earlier trials at fold 0
    handle, _ = tuner.ask()
    assert not tuner.stopper(handle, "roc_auc", frozen=False)(0, 0.85)


def test_lower_is_better_metrics_prune_the_high_ones() -> None:
    tuner = FamilyTuner(get_family("lightgbm").space(), seed=0, index=0)
    for _ in range(4):
        tuner.observe(trial([3.0, 3.1, 2.9]), "rmse")
    handle, _ = tuner.ask()
    assert tuner.stopper(handle, "rmse", frozen=False)(0, 9.0)


def test_a_frozen_stopper_judges_against_the_trials_complete_when_it_was_asked() -> None:
    tuner = FamilyTuner(get_family("lightgbm").space(), seed=0, index=0)
    for _ in range(3):
        tuner.observe(trial([0.80, 0.81, 0.79]), "roc_auc")
    handle, _ = tuner.ask()
    frozen = tuner.stopper(handle, "roc_auc", frozen=True)
    live = tuner.stopper(tuner.ask()[0], "roc_auc", frozen=False)
    tuner.observe(trial([0.80, 0.81, 0.79]), "roc_auc")  # a fourth completes meanwhile
    assert live(0, 0.60)  # four complete now: the median rule applies
    assert not frozen(0, 0.60)  # three when it was asked: too few to judge


def test_median_stop_decides_as_optunas_median_pruner() -> None:
    import numpy as np
    import optuna

    from mlwright.train.tuner import PRUNE_AFTER_TRIALS, median_stop

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(0)
    decisions = set()
    for _ in range(40):
        pruner = optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER_TRIALS)
        study = optuna.create_study(direction="maximize", pruner=pruner)
        complete = []
        for _ in range(int(rng.integers(0, 8))):
            done, curve = study.ask(), {}
            for step in range(int(rng.integers(1, 5))):
                curve[step] = float(rng.normal())
                done.report(curve[step], step)
            study.tell(done, float(rng.normal()))
            complete.append(curve)
        running, reported = study.ask(), []
        for step in range(int(rng.integers(1, 5))):
            reported.append(float(rng.normal()))
            running.report(reported[-1], step)
            ours = median_stop(complete, step, reported)
            assert ours == running.should_prune()
            decisions.add(ours)
    assert decisions == {True, False}


def test_the_search_goes_on_with_tuned_trials_and_repeats_itself() -> None:
    frame: pd.DataFrame = make_frame(300)
    n_static = len(static_plan(["linear"]))
    runs = [
        mw.train(
            frame,
            target="churned",
            families=("linear",),
            max_trials=n_static + 4,
            seed=3,
            tracker="none",
        )
        for _ in range(2)
    ]
    trials = runs[0].trials
    assert [t.source for t in trials][n_static:] == ["tuned"] * 4
    assert [t.params for t in trials] == [t.params for t in runs[1].trials]  # seeded
    assert len({str(t.params) for t in trials}) == len(trials)  # no configuration twice


def test_the_static_stage_follows_the_learned_order_then_covers_every_family(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlwright.train import search

    lgb = get_family("lightgbm").space()
    order = (
        ("linear", {"C": 0.3}),
        ("lightgbm", dict(lgb.defaults)),
        ("random_forest", {"max_features": 0.5}),  # not planned here: left out
        ("lightgbm", {"num_leaves": 7}),
    )
    monkeypatch.setattr(search, "learned_order", lambda: order)
    plan = static_plan(["lightgbm", "linear", "xgboost", "mlp"])
    linear = get_family("linear").space()
    xgb = get_family("xgboost").space()
    mlp = get_family("mlp").space()
    assert plan[:3] == [
        ("linear", {**linear.defaults, "C": 0.3}, "portfolio"),
        ("lightgbm", dict(lgb.defaults), "default"),
        ("lightgbm", {**lgb.defaults, "num_leaves": 7}, "portfolio"),
    ]
    # families the learned order does not cover: their defaults, then their portfolios in turn
    assert plan[3:] == [
        ("xgboost", dict(xgb.defaults), "default"),
        ("mlp", dict(mlp.defaults), "default"),
        ("xgboost", dict(xgb.portfolio[0]), "portfolio"),
        ("mlp", dict(mlp.portfolio[0]), "portfolio"),
    ]


def test_the_shipped_portfolio_names_known_families_and_parameters() -> None:
    from mlwright.train.search import learned_order

    for family, params in learned_order():
        space = get_family(family).space()
        assert set(params) <= set(space.defaults) | {p.name for p in space.params}
