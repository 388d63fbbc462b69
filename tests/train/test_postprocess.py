"""Decisions after the choice, each judged on rows it was not fitted on: calibration (bounded,
shrunk towards no change on small data), the decision threshold, and an ensemble against the
single trial when the gain is inside the folds' noise."""

from __future__ import annotations

import numpy as np
import pytest

from mlwright.evaluate.metrics import score
from mlwright.train.ensemble import Option, calibrate, judged_rows, simplest_first
from mlwright.train.postprocess import (
    TEMPERATURE_BOUNDS,
    calibration_choice,
    fit_temperature,
    postprocess,
)
from mlwright.train.validation import Split


def kfold(n: int, k: int = 5) -> list[Split]:
    rows = np.arange(n)
    return [(np.setdiff1d(rows, rows[i::k]), rows[i::k]) for i in range(k)]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def confident_predictions(
    rng: np.random.Generator, n: int, k: int, error_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) of a confident model (true-class probability ~0.995) that picks
    a wrong class for ``error_rate`` of the rows."""
    y = rng.integers(0, k, size=n)
    picked = y.copy()
    wrong = rng.random(n) < error_rate
    picked[wrong] = (y[wrong] + rng.integers(1, k, size=wrong.sum())) % k
    return softmax(6.0 * np.eye(k)[picked] + rng.normal(scale=0.3, size=(n, k))), y


def test_a_tiny_nearly_separable_multiclass_table_is_not_sharpened_into_overconfidence() -> None:
    # 258 rows, 3 classes: out of fold the model made no mistake (log loss ~0.006); new rows
    # bring the 2% it does make. A temperature fitted and judged on the out-of-fold rows alone
    # would push T towards 0 and blow up the log loss on the new rows.
    rng = np.random.default_rng(7)
    oof, y = confident_predictions(rng, 258, 3, error_rate=0.0)
    assert score("log_loss", y, oof) < 0.01
    post = postprocess(oof, y, kfold(258), "multiclass", None, seed=0)
    new, y_new = confident_predictions(rng, 20_000, 3, error_rate=0.02)
    served = new if post.temperature is None else calibrate(new, post.temperature)
    uncalibrated = score("log_loss", y_new, new)
    assert score("log_loss", y_new, served) <= 1.05 * uncalibrated
    assert post.calibration["temperature"] > 0.9
    # the unpenalised fit on the same rows runs to the bound, what the prior holds back: that
    # temperature costs several times the log loss on the new rows
    sharp = fit_temperature(oof, y, prior=0.0)
    assert sharp == pytest.approx(TEMPERATURE_BOUNDS[0], rel=1e-3)
    assert score("log_loss", y_new, calibrate(new, sharp)) > 2 * uncalibrated


def test_a_temperature_undoes_overconfidence_on_enough_rows_and_keeps_rankings() -> None:
    rng = np.random.default_rng(0)
    n, k = 4000, 3
    y = rng.integers(0, k, size=n)
    z = 1.5 * (rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y])  # softmax(z): the true posterior
    overconfident = calibrate(softmax(z), 1 / 3)
    assert 2.5 < fit_temperature(overconfident, y) < 3.5
    judged = judged_rows([overconfident], y, [val for _, val in kfold(n)], seed=0)
    choice = calibration_choice(overconfident, judged)
    assert choice["applied"]
    assert choice["log_loss_after"] < choice["log_loss_before"] - 0.05
    fixed = calibrate(overconfident, choice["temperature"])
    assert (fixed.argmax(axis=1) == overconfident.argmax(axis=1)).all()


def test_a_calibrated_model_is_left_alone() -> None:
    rng = np.random.default_rng(1)
    n, k = 3000, 4
    y = rng.integers(0, k, size=n)
    z = rng.normal(size=(n, k)) + 1.2 * np.eye(k)[y]
    proba = softmax(1.2 * z)  # the true posterior P(y | z): any temperature is noise
    post = postprocess(proba, y, kfold(n), "multiclass", None, seed=0)
    assert post.temperature is None
    assert not post.calibration["applied"]


def test_the_threshold_moves_only_when_the_held_folds_agree() -> None:
    rng = np.random.default_rng(2)
    n = 2000
    # calibrated scores of a balanced problem: 0.5 is already the best cut-off for accuracy;
    # the cut-off that happens to be best on all rows differs from 0.5 by noise alone
    p = rng.uniform(0.05, 0.95, size=n)
    y = (rng.random(n) < p).astype(int)
    proba = np.column_stack([1 - p, p])
    post = postprocess(proba, y, kfold(n), "binary", "accuracy", seed=0)
    assert post.threshold is None
    assert not post.threshold_choice["applied"]
    # scores that are systematically too high: the held folds agree the cut-off belongs higher
    shifted = np.clip(p + 0.25, 0.0, 0.999)
    post = postprocess(
        np.column_stack([1 - shifted, shifted]), y, kfold(n), "binary", "accuracy", 0
    )
    assert post.threshold is not None and post.threshold > 0.6
    assert post.threshold_choice["at_threshold"] > post.threshold_choice["at_default"]


def option(name: str, scores: list[float]) -> Option:
    return Option(name, scores, [0], None, np.zeros(1))


def test_an_ensemble_whose_gain_is_inside_the_noise_loses_to_the_single_trial() -> None:
    # case 6: +0.00017 AUC on average with a fold spread of 0.027
    single = option("single", [0.80, 0.85, 0.78, 0.83, 0.81])
    stacked = option("stacked", [0.83, 0.80, 0.81, 0.79, 0.84085])
    assert np.mean(stacked.fold_scores) > np.mean(single.fold_scores)
    assert simplest_first([stacked, single], "roc_auc")[0] is single


def test_an_ensemble_clearly_better_on_every_fold_is_chosen() -> None:
    single = option("single", [0.80, 0.85, 0.78, 0.83, 0.81])
    weighted = option("weighted", [0.81, 0.86, 0.79, 0.84, 0.82])
    stacked = option("stacked", [0.8105, 0.8595, 0.7905, 0.8405, 0.8195])  # ≈ weighted: noise
    ranked = simplest_first([stacked, weighted, single], "roc_auc")
    assert ranked[0] is weighted
    # lower is better for a loss: the same rule, signed
    single, weighted = option("single", [0.5, 0.6, 0.55]), option("weighted", [0.45, 0.54, 0.5])
    assert simplest_first([single, weighted], "log_loss")[0] is weighted
