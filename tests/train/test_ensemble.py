"""Combining trials out of fold: greedy selection, stacking, calibration, and the ensemble as a
package that loads, serves and replays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.evaluate.metrics import score
from mlwright.package.golden import check_golden
from mlwright.train.ensemble import (
    MAX_ROWS,
    POOL,
    Blend,
    choose_combination,
    combine,
    greedy_weights,
    judged_rows,
    pool_of,
)
from tests.conftest import make_blend_frame

R = np.random.default_rng(0)


def folds(n: int, k: int = 5) -> list[np.ndarray]:
    return [np.arange(n)[i::k] for i in range(k)]


def test_greedy_selection_blends_independent_errors_and_drops_noise() -> None:
    n = 2000
    truth = R.normal(size=n)
    a, b = truth + R.normal(size=n), truth + R.normal(size=n)
    noise = R.normal(size=n) * 3 + 4  # far off: no blend gains from it
    weights = greedy_weights([a, b, noise], truth, "rmse")
    assert weights[2] == 0.0
    assert 0.35 <= weights[0] <= 0.65 and abs(sum(weights) - 1) < 1e-12
    blended = combine([a, b, noise], Blend("weighted", weights), "regression")
    assert score("rmse", truth, blended) < 0.8 * min(
        score("rmse", truth, a), score("rmse", truth, b)
    )


def test_a_refit_cap_keeps_the_blend_to_members_that_fit_it() -> None:
    n = 2000
    truth = R.normal(size=n)
    a, b, c = (truth + R.normal(size=n) for _ in range(3))  # three independent errors
    free = greedy_weights([a, b, c], truth, "rmse")
    assert all(w > 0 for w in free)  # without a cap all three blend
    roomy = greedy_weights([a, b, c], truth, "rmse", costs=[1.0, 1.0, 10.0], cap=12.0)
    assert roomy == free  # a cap that does not bind changes nothing
    capped = greedy_weights([a, b, c], truth, "rmse", costs=[1.0, 1.0, 10.0], cap=3.0)
    assert capped[2] == 0.0 and capped[0] > 0 and capped[1] > 0
    assert abs(sum(capped) - 1) < 1e-12
    assert greedy_weights([a, b, c], truth, "rmse", costs=[5.0, 5.0, 5.0], cap=1.0) == [0.0] * 3

    judged = judged_rows([a, b, c], truth, folds(n), seed=0)
    capped_options = choose_combination(
        judged, "rmse", "regression", seed=0, costs=[1.0, 1.0, 10.0], cap=3.0
    )
    blends = [o for o in capped_options if o.name != "single"]
    assert blends and all(o.members == [0, 1] for o in blends)
    alone = choose_combination(judged, "rmse", "regression", seed=0, costs=[2.0] * 3, cap=3.0)
    assert [o.name for o in alone] == ["single"]  # no two members fit: no blend is offered


def regression_trials(
    truth: np.ndarray, oofs: list[np.ndarray], families: list[str], seconds: list[float]
) -> list:
    """Finished trials with these out-of-fold predictions, best first (rmse)."""
    from mlwright.train.search import Trial

    trials = []
    for number, (oof, family, secs) in enumerate(zip(oofs, families, seconds, strict=True)):
        fold_scores = [score("rmse", truth[v], oof[v]) for v in folds(len(truth))]
        mean = float(np.mean(fold_scores))
        trials.append(
            Trial(number, family, {}, "tuned", "ok", fold_scores, mean, 0.0, secs, oof=oof)
        )
    return sorted(trials, key=lambda t: t.mean or 0.0)


def candidates_for(trials: list, truth: np.ndarray, time_left: float | None) -> tuple[list, list]:
    from mlwright.train.choice import build_candidates

    return build_candidates(
        trials,
        truth,
        folds(len(truth)),
        metric="rmse",
        task="regression",
        seed=0,
        fit_seconds=lambda members: sum(t.seconds for t in members),
        time_left=time_left,
    )


def test_a_short_budget_gets_a_smaller_blend_and_the_recipe_says_why() -> None:
    n = 2000
    truth = R.normal(size=n)
    oofs = [truth + R.normal(size=n) for _ in range(3)]
    trials = regression_trials(truth, oofs, ["lightgbm"] * 3, [1.0, 1.0, 10.0])

    def build(time_left: float) -> tuple[list, list]:
        return candidates_for(trials, truth, time_left)

    candidates, log = build(time_left=3.0)
    blend = next(c for c in candidates if c.kind != "single")
    assert sorted(t.number for t in blend.members) == [0, 1]
    entry = next(e for e in log if e["kind"] == blend.kind)
    assert (
        "fit the 3.0 s left" in entry["limited_by_time"] and "~12.0 s" in entry["limited_by_time"]
    )
    assert "skipped" not in entry
    candidates, log = build(time_left=100.0)
    blend = next(c for c in candidates if c.kind != "single")
    assert len(blend.members) == 3 and not any("limited_by_time" in e for e in log)


def test_a_worse_copy_of_the_best_leaves_the_best_alone() -> None:
    n = 1500
    truth = R.normal(size=n)
    best = truth + R.normal(size=n)
    worse = best + R.normal(size=n) * 3  # the same errors plus more: nothing to gain
    judged = judged_rows([best, worse], truth, folds(n), seed=0)
    options = choose_combination(judged, "rmse", "regression", seed=0)
    assert [o.name for o in options] == ["single"]
    assert options[0].members == [0]


def test_the_pool_is_chosen_without_the_fold_it_is_judged_on() -> None:
    n = 500
    truth = R.normal(size=n)
    fair = [truth + R.normal(size=n) for _ in range(POOL + 1)]
    fold0 = folds(n)[0]
    lucky = truth + 0.5 * R.normal(size=n)  # the best on the other folds' rows...
    lucky[fold0] = truth[fold0] + 5 * R.normal(size=len(fold0))  # ...far off on fold 0's
    judged = judged_rows([*fair, lucky], truth, folds(n), seed=0)
    assert POOL + 1 not in pool_of(judged, "rmse")  # on all rows it ranks last
    options = choose_combination(judged, "rmse", "regression", seed=0)
    single = next(o for o in options if o.name == "single")
    # learned without fold 0, the choice is the lucky one, and fold 0 shows what it is worth
    assert single.fold_scores[0] > 3.0
    assert max(single.fold_scores[1:]) < 1.3  # elsewhere fold 0's rows rule it out


def test_each_familys_best_joins_the_pool_behind_near_copies_of_the_best() -> None:
    n = 500
    truth = R.normal(size=n)
    best = truth + R.normal(size=n)
    copies = [best + 0.05 * R.normal(size=n) for _ in range(14)]  # one configuration, 14 times
    other = truth + 1.3 * R.normal(size=n)  # worse alone, but errs differently
    judged = judged_rows([*copies, other], truth, folds(n), seed=0)
    assert pool_of(judged, "rmse") == pool_of(judged, "rmse", groups=["a"] * 15)[:POOL]
    assert 14 not in pool_of(judged, "rmse")
    assert 14 in pool_of(judged, "rmse", groups=["a"] * 14 + ["b"])
    alone = choose_combination(judged, "rmse", "regression", seed=0)
    mixed = choose_combination(judged, "rmse", "regression", seed=0, groups=["a"] * 14 + ["b"])
    weighted = next(o for o in mixed if o.name == "weighted")
    assert 14 in weighted.members
    assert weighted.mean < next(o for o in alone if o.name == "weighted").mean - 0.1
    assert mixed[0].mean < alone[0].mean


def test_the_trials_offered_include_each_familys_best_however_far_down() -> None:
    from mlwright.train.choice import MAX_CANDIDATES, OFFERED

    n = 500
    truth = R.normal(size=n)
    best = truth + R.normal(size=n)
    oofs = [best + 0.05 * R.normal(size=n) for _ in range(OFFERED + 10)]
    oofs.append(truth + 1.3 * R.normal(size=n))
    families = ["lightgbm"] * (OFFERED + 10) + ["xgboost"]
    trials = regression_trials(truth, oofs, families, [0.0] * len(oofs))
    assert trials[-1].family == "xgboost"  # the worst alone
    candidates, log = candidates_for(trials, truth, None)
    assert candidates[0].kind != "single"
    assert "xgboost" in {t.family for t in candidates[0].members}
    singles = [c.members[0] for c in candidates if c.kind == "single"]
    assert len(singles) == MAX_CANDIDATES and len({t.number for t in singles}) == len(singles)
    assert {e["kind"] for e in log} == {"single", "weighted", "stacked"}


def test_stacking_wins_where_a_convex_blend_cannot_fix_the_scale() -> None:
    n = 3000
    truth = R.normal(size=n)
    shrunk = 0.3 * truth + 0.2 * R.normal(size=n)  # right ranking, wrong scale
    other = 0.3 * truth + 0.2 * R.normal(size=n)
    judged = judged_rows([shrunk, other], truth, folds(n), seed=0)
    options = choose_combination(judged, "rmse", "regression", seed=0)
    assert options[0].name == "stacked"
    scores = {o.name: o.mean for o in options}
    assert scores["stacked"] < scores["weighted"] < scores["single"]


def test_binary_and_multiclass_stacks_return_probabilities() -> None:
    n = 1200
    for k in (2, 4):
        y = R.integers(0, k, size=n)
        logits = [R.normal(size=(n, k)) + 2.0 * np.eye(k)[y] for _ in range(2)]
        probas = [np.exp(z) / np.exp(z).sum(axis=1, keepdims=True) for z in logits]
        judged = judged_rows(probas, y, folds(n), seed=0)
        options = choose_combination(judged, "log_loss", "binary" if k == 2 else "multiclass", 0)
        for option in options:
            assert option.oof.shape == (n, k)
            np.testing.assert_allclose(option.oof.sum(axis=1), 1.0, atol=1e-9)
        stacked = next(o for o in options if o.name == "stacked")
        assert stacked.blend is not None and stacked.blend.coef is not None
        assert len(stacked.blend.coef) == (1 if k == 2 else k)


def test_judged_rows_skip_missing_predictions_cut_a_holdout_and_cap_the_rows() -> None:
    n = 100
    y = np.arange(n, dtype=float)
    oof = np.full(n, np.nan)
    val = np.arange(60, 100)  # one holdout fold: 40 rows predicted
    oof[val] = y[val]
    judged = judged_rows([oof, oof.copy()], y, [val], seed=0)
    assert sorted(judged.rows) == list(val)
    assert sorted(np.unique(judged.fold)) == [0, 1]  # two halves, so cross-fitting works
    big = np.zeros(MAX_ROWS + 500)
    judged = judged_rows([big], big, folds(len(big)), seed=0)
    assert len(judged.y) == MAX_ROWS


@pytest.fixture(scope="module")
def blended(tmp_path_factory: pytest.TempPathFactory) -> tuple[mw.Model, pd.DataFrame, Path]:
    """A target with a linear part and an interaction: the linear model and the trees each
    see one half, so the blend beats both out of fold."""
    frame = make_blend_frame()
    out = tmp_path_factory.mktemp("ensemble") / "pkg"
    model = mw.train(
        frame,
        target="y",
        families=("lightgbm", "linear"),
        max_trials=4,
        tracker="none",
        out=str(out),
    )
    return model, frame, out


def test_the_ensemble_is_chosen_packaged_and_loads_to_the_same_predictions(
    blended: tuple[mw.Model, pd.DataFrame, Path],
) -> None:
    model, frame, out = blended
    chosen = model.recipe["chosen"]
    assert chosen["family"] == "ensemble" and chosen["kind"] in ("weighted", "stacked")
    families = {m["family"] for m in chosen["refit_params"]["members"]}
    assert families == {"lightgbm", "linear"}
    kinds = {c["kind"]: c["cv"] for c in chosen["combinations"]}
    assert kinds[chosen["kind"]] < kinds["single"]  # rmse: lower is better
    assert model.recipe["cv"]["mean"] == pytest.approx(kinds[chosen["kind"]])
    assert sorted(p.name for p in (out / "model").iterdir()) == [
        "family.json",
        "member_0",
        "member_1",
    ]
    loaded = mw.load(str(out))
    pd.testing.assert_frame_equal(loaded.predict(frame.head(200)), model.predict(frame.head(200)))
    assert check_golden(loaded) == []
    req = (out / "requirements.txt").read_text()
    assert "lightgbm==" in req  # a member's library is a requirement of the package


def test_an_ensemble_reproduces_from_its_recipe(
    blended: tuple[mw.Model, pd.DataFrame, Path], tmp_path: Path
) -> None:
    from mlwright.train.replay import replay

    _, frame, out = blended
    result = replay(mw.load(str(out)), frame)
    assert result.mismatches == []


def test_the_accuracy_latency_tradeoff_is_recorded(
    blended: tuple[mw.Model, pd.DataFrame, Path],
) -> None:
    model, _, _ = blended
    assert all(t.predict_ms is not None and t.predict_ms > 0 for t in model.trials)
    rows = model.recipe["chosen"]["tradeoff"]
    assert rows[0]["kind"] == model.recipe["chosen"]["kind"]
    members = model.recipe["chosen"]["members"]
    by_number = {t.number: t.predict_ms for t in model.trials}
    assert rows[0]["predict_ms_estimate"] == pytest.approx(
        sum(by_number[m] for m in members), abs=1e-3
    )
    singles = [r for r in rows if r["kind"] == "single"]
    assert singles and all(r["predict_ms_estimate"] > 0 for r in singles)


def test_a_stack_that_would_overrun_the_budget_is_not_judged() -> None:
    import time

    n, k = 1200, 4
    y = R.integers(0, k, size=n)
    logits = [R.normal(size=(n, k)) + 2.0 * np.eye(k)[y] for _ in range(3)]
    probas = [np.exp(z) / np.exp(z).sum(axis=1, keepdims=True) for z in logits]
    judged = judged_rows(probas, y, folds(n), seed=0)
    notes: list[str] = []
    options = choose_combination(
        judged, "log_loss", "multiclass", 0, until=time.monotonic(), notes=notes
    )
    assert [o.name for o in options if o.name == "stacked"] == []
    assert len(notes) == 1 and "the budget leaves for combining" in notes[0]
    unbounded = choose_combination(judged, "log_loss", "multiclass", 0)
    assert any(o.name == "stacked" for o in unbounded)
