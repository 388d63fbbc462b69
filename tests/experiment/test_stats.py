"""The experiment statistics, validated on seeded simulated traffic."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlwright.experiment.stats import (
    MIN_PER_ARM,
    compare,
    sample_ratio_mismatch,
    sequential_p_values,
    verdict,
)

EXPERIMENTS, OBSERVATIONS = 400, 4000
LOOKS = np.arange(200, OBSERVATIONS + 1, 100)  # a user refreshing the dashboard


def naive_peeking_rejects(values: np.ndarray, treated: np.ndarray) -> bool:
    """A fixed-horizon two-proportion z test repeated at every look: stop at the first p < 0.05."""
    n_b = np.cumsum(treated)[LOOKS - 1]
    n_a = LOOKS - n_b
    s_b = np.cumsum(np.where(treated, values, 0.0))[LOOKS - 1]
    s_a = np.cumsum(values)[LOOKS - 1] - s_b
    pa, pb = s_a / n_a, s_b / n_b
    se = np.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    p = 2 * stats.norm.sf(np.abs(pb - pa) / se)
    return bool((p < 0.05).any())


def simulated(rng: np.random.Generator, n: int, rate_a: float, rate_b: float) -> tuple:
    treated = rng.random(n) < 0.5
    values = (rng.random(n) < np.where(treated, rate_b, rate_a)).astype(float)
    return values, treated


def test_under_a_a_peeking_at_every_observation_keeps_the_error_rate() -> None:
    rng = np.random.default_rng(0)
    sequential, naive = [], []
    for _ in range(EXPERIMENTS):
        values, treated = simulated(rng, OBSERVATIONS, 0.2, 0.2)
        sequential.append(sequential_p_values(values, treated).min() < 0.05)
        naive.append(naive_peeking_rejects(values, treated))
    margin = 2.5 * np.sqrt(0.05 * 0.95 / EXPERIMENTS)  # simulation error
    assert np.mean(sequential) <= 0.05 + margin
    assert np.mean(naive) > 0.15  # repeated fixed-horizon tests do not hold their 5%


def test_under_a_a_continuous_outcomes_keep_the_error_rate_too() -> None:
    rng = np.random.default_rng(1)
    rejected = [
        sequential_p_values(rng.lognormal(size=OBSERVATIONS), rng.random(OBSERVATIONS) < 0.3).min()
        < 0.05
        for _ in range(EXPERIMENTS)
    ]
    assert np.mean(rejected) <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / EXPERIMENTS)


def test_a_planted_effect_is_detected_and_called_better() -> None:
    rng = np.random.default_rng(2)
    detected = 0
    for _ in range(50):
        values, treated = simulated(rng, 6000, 0.20, 0.25)
        detected += compare(values, treated).sequential_p < 0.05
    assert detected >= 45
    values, treated = simulated(rng, 6000, 0.20, 0.25)
    c = compare(values, treated)
    assert c.kind == "proportion" and c.cs_low > 0 and c.ci_low > 0
    assert c.cs_high - c.cs_low > c.ci_high - c.ci_low  # always valid costs some width
    assert "challenger is better" in verdict(c, higher_is_better=True, srm=False, what="accuracy")
    assert "challenger is worse" in verdict(c, higher_is_better=False, srm=False, what="log loss")


def test_welch_matches_scipy_for_continuous_outcomes() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 300), rng.normal(0.2, 2, 500)
    c = compare(np.r_[a, b], np.r_[np.zeros(300, bool), np.ones(500, bool)])
    expected = stats.ttest_ind(b, a, equal_var=False)
    assert c.kind == "mean"
    assert c.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert c.difference == pytest.approx(b.mean() - a.mean())


def test_a_skewed_split_raises_a_sample_ratio_mismatch() -> None:
    weights = {"champion": 0.5, "challenger": 0.5}
    assert sample_ratio_mismatch({"champion": 5000, "challenger": 5500}, weights)["mismatch"]
    rng = np.random.default_rng(4)
    false_alarms = 0
    for _ in range(200):
        n = int((rng.random(10_000) < 0.1).sum())
        out = sample_ratio_mismatch(
            {"champion": 10_000 - n, "challenger": n}, {"champion": 0.9, "challenger": 0.1}
        )
        false_alarms += out["mismatch"]
    assert false_alarms <= 2  # alarm at p < 0.001
    values, treated = simulated(rng, 2000, 0.2, 0.2)
    text = verdict(compare(values, treated), higher_is_better=True, srm=True, what="accuracy")
    assert text.startswith("sample ratio mismatch")


def test_the_sample_ratio_check_stays_valid_when_looked_at_every_step() -> None:
    """200 correct 80/20 splits, each checked after every 200 assignments up to 20,000 (100
    looks): the always-valid check alarms on at most a few, where the chi-square at each look
    would alarm on many more."""
    rng = np.random.default_rng(11)
    weights = {"champion": 0.8, "challenger": 0.2}
    sequential = fixed = 0
    for _ in range(200):
        to_challenger = np.cumsum(rng.random(20_000) < 0.2)
        looks = [
            sample_ratio_mismatch({"champion": n - int(b), "challenger": int(b)}, weights)
            for n, b in zip(range(200, 20_001, 200), to_challenger[199::200], strict=True)
        ]
        sequential += any(look["mismatch"] for look in looks)
        fixed += any(look["p_value"] < 0.001 for look in looks)
    assert sequential <= 1  # at most α = 0.1% of them, up to chance
    assert fixed > sequential  # what the check was before: one look's test at every look


def test_nothing_is_claimed_before_each_arm_has_enough_outcomes() -> None:
    rng = np.random.default_rng(5)
    treated = np.array([True, False] * 40)
    values = (rng.random(80) < np.where(treated, 0.9, 0.1)).astype(float)  # a huge difference
    assert compare(values, treated).p_value < 1e-6  # the fixed-horizon test would claim it
    assert sequential_p_values(values, treated)[-1] == 1.0  # 40 per arm < MIN_PER_ARM
    c = compare(values, treated)
    assert "collecting" in verdict(c, higher_is_better=True, srm=False, what="accuracy")
    assert MIN_PER_ARM > 40


def test_cuped_narrows_the_interval_without_moving_the_estimate() -> None:
    rng = np.random.default_rng(6)
    diffs, plain_widths, cuped_widths, aa_rejects = [], [], [], 0
    for _ in range(200):
        n = 2000
        treated = rng.random(n) < 0.5
        before = rng.normal(0, 2, n)  # last month's spend, say
        after = before + 0.1 * treated + rng.normal(0, 0.5, n)
        plain = compare(after, treated)
        adjusted = compare(after, treated, covariate=before)
        assert adjusted.cuped is not None and adjusted.cuped["variance_reduction"] > 0.9
        diffs.append(adjusted.difference)
        plain_widths.append(plain.cs_high - plain.cs_low)
        cuped_widths.append(adjusted.cs_high - adjusted.cs_low)
        null = before + rng.normal(0, 0.5, n)  # A/A: no effect
        aa_rejects += compare(null, treated, covariate=before).sequential_p < 0.05
    assert np.mean(diffs) == pytest.approx(0.1, abs=0.01)  # unbiased
    assert np.median(cuped_widths) < np.median(plain_widths) / 3
    assert aa_rejects / 200 <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / 200)
