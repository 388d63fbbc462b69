"""Statistics of an experiment between model variants: is the challenger better, worse, or broken?

Per-observation outcomes (1/0 for a correct label or a conversion, a loss, a squared error, a
reward) are compared between the control (champion) and a treatment (challenger) with

- a **fixed-horizon** test — two-proportion z for 0/1 outcomes, Welch's t otherwise — and its
  confidence interval, valid only when looked at once, at a sample size fixed in advance;
- an **always-valid** test — the mixture sequential probability ratio test (mSPRT; Robbins 1970,
  Johari, Koomen, Pekelis & Walsh, "Peeking at A/B tests", KDD 2017, as in Optimizely's Stats
  Engine). With the difference's z statistic ``Z`` after ``n1`` and ``n2`` observations and a
  normal mixture N(0, τ²) over the true difference, the likelihood ratio is
  ``Λ = (1 + ρ)^(-1/2) · exp(ρ Z² / (2 (1 + ρ)))`` with ``ρ = τ² / Var(Δ̂)``. Under no
  difference Λ is a non-negative martingale, so by Ville's inequality it exceeds 1/α with
  probability at most α *over the whole experiment*: the always-valid p-value is the running
  minimum of 1/Λ over every observation so far, and users may look at any time. τ is set in
  units of the outcome's standard deviation (:data:`MIXTURE_SD`): ``ρ = c² · n1 n2 / (n1 + n2)``.
  Inverting the test gives a confidence sequence, ``Δ̂ ± sqrt(Var(Δ̂) (1 + ρ)/ρ ·
  (log(1 + ρ) − 2 log α))``;
- a **sample-ratio-mismatch** check of the assignment counts against the configured weights,
  alarming at p < 0.001 (GrowthBook's threshold) on an always-valid test (a Dirichlet-multinomial
  Bayes factor, :func:`sequential_srm_p`), since the check runs at every look; the chi-square
  p-value is reported beside it.

Variances are estimated from the data, so the guarantee is asymptotic; the sequence starts once
each arm has :data:`MIN_PER_ARM` observations. The tests simulate A/A experiments with
continuous peeking to check the false-positive rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

ALPHA = 0.05
SRM_ALPHA = 0.001
SRM_CONCENTRATION = 100.0  # the Dirichlet prior's weight, in assignments, of the sequential SRM
MIXTURE_SD = 0.1  # τ, in standard deviations of the outcome: the effect size the test favours
MIN_PER_ARM = 50


@dataclass(frozen=True)
class Arm:
    n: int
    mean: float
    sd: float


@dataclass(frozen=True)
class Comparison:
    kind: str  # "proportion" | "mean"
    control: Arm
    treatment: Arm
    difference: float  # treatment − control
    ci_low: float  # fixed-horizon interval
    ci_high: float
    p_value: float  # fixed-horizon
    sequential_p: float  # always valid
    cs_low: float  # confidence sequence at the current sample size
    cs_high: float
    alpha: float
    cuped: dict[str, float] | None = None  # theta and the variance reduction, when adjusted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


def cuped(values: np.ndarray, covariate: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """CUPED (Deng, Xu, Kohavi & Walker, WSDM 2013): ``y − θ (x − mean x)`` with
    ``θ = cov(x, y) / var(x)`` over both arms. The adjusted outcome has the same difference in
    expectation (the covariate is from before the experiment, so it cannot differ by arm but
    by chance) and a variance smaller by the share of it the covariate explains."""
    x = np.asarray(covariate, dtype="float64")
    var_x = float(np.var(x))
    if var_x == 0:
        return values, {"theta": 0.0, "variance_reduction": 0.0}
    theta = float(np.cov(x, values, ddof=0)[0, 1] / var_x)
    adjusted = values - theta * (x - x.mean())
    reduction = 1.0 - float(np.var(adjusted)) / max(float(np.var(values)), 1e-300)
    return adjusted, {"theta": theta, "variance_reduction": reduction}


def compare(
    values: np.ndarray,
    treated: np.ndarray,
    *,
    alpha: float = ALPHA,
    mixture_sd: float = MIXTURE_SD,
    covariate: np.ndarray | None = None,
) -> Comparison:
    """Compare outcomes of treatment (``treated`` True) and control rows, given in arrival
    order (the order matters only for the always-valid p-value's running minimum). With a
    pre-period ``covariate`` per row, the outcomes are CUPED-adjusted first."""
    from scipy import stats

    values = np.asarray(values, dtype="float64")
    treated = np.asarray(treated, dtype=bool)
    adjustment = None
    if covariate is not None:
        values, adjustment = cuped(values, covariate)
    a, b = values[~treated], values[treated]
    kind = "proportion" if is_binary(values) else "mean"
    arm_a, arm_b = _arm(a), _arm(b)
    diff = arm_b.mean - arm_a.mean
    var = _var_of_difference(arm_a, arm_b)
    if var > 0:
        se = math.sqrt(var)
        if kind == "proportion":
            z = diff / se
            p = float(2 * stats.norm.sf(abs(z)))
            crit = float(stats.norm.ppf(1 - alpha / 2))
        else:
            dof = _welch_dof(arm_a, arm_b)
            p = float(2 * stats.t.sf(abs(diff) / se, dof))
            crit = float(stats.t.ppf(1 - alpha / 2, dof))
        low, high = diff - crit * se, diff + crit * se
    else:
        p, low, high = 1.0, float("nan"), float("nan")
    seq_p = float(sequential_p_values(values, treated, mixture_sd)[-1]) if len(values) else 1.0
    cs = confidence_sequence(arm_a, arm_b, alpha, mixture_sd)
    return Comparison(
        kind, arm_a, arm_b, diff, low, high, p, seq_p, diff - cs, diff + cs, alpha, adjustment
    )


def sequential_p_values(
    values: np.ndarray, treated: np.ndarray, mixture_sd: float = MIXTURE_SD
) -> np.ndarray:
    """The always-valid p-value after each observation (running minimum of 1/Λ)."""
    values = np.asarray(values, dtype="float64")
    treated = np.asarray(treated, dtype=bool)
    n_b = np.cumsum(treated)
    n_a = np.arange(1, len(values) + 1) - n_b
    s_b = np.cumsum(np.where(treated, values, 0.0))
    s_a = np.cumsum(values) - s_b
    q_b = np.cumsum(np.where(treated, values**2, 0.0))
    q_a = np.cumsum(values**2) - q_b
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_a, mean_b = s_a / n_a, s_b / n_b
        var_a = np.maximum(q_a / n_a - mean_a**2, 0.0) * n_a / np.maximum(n_a - 1, 1)
        var_b = np.maximum(q_b / n_b - mean_b**2, 0.0) * n_b / np.maximum(n_b - 1, 1)
        v = var_a / n_a + var_b / n_b
        z2 = (mean_b - mean_a) ** 2 / v
        rho = mixture_sd**2 * n_a * n_b / (n_a + n_b)
        log_lr = -0.5 * np.log1p(rho) + rho * z2 / (2 * (1 + rho))
    ready = (n_a >= MIN_PER_ARM) & (n_b >= MIN_PER_ARM) & (v > 0)
    log_lr = np.where(ready & np.isfinite(log_lr), log_lr, -np.inf)
    return np.minimum(1.0, np.exp(-np.maximum.accumulate(log_lr)))


def confidence_sequence(a: Arm, b: Arm, alpha: float, mixture_sd: float) -> float:
    """Half-width of the always-valid confidence sequence for the difference at (n1, n2)."""
    var = _var_of_difference(a, b)
    if var <= 0 or min(a.n, b.n) < 2:
        return float("inf")
    rho = mixture_sd**2 * a.n * b.n / (a.n + b.n)
    return math.sqrt(var * (1 + rho) / rho * (math.log1p(rho) - 2 * math.log(alpha)))


def sample_ratio_mismatch(counts: dict[str, int], weights: dict[str, float]) -> dict[str, Any]:
    """Do the assignment counts fit the configured weights? Alarms when the always-valid
    p-value (:func:`sequential_srm_p`) is below :data:`SRM_ALPHA`, so that looking at every
    step of an experiment does not multiply false alarms; the chi-square p-value (valid for
    one look) is reported beside it."""
    from scipy import stats

    names = [k for k in weights if weights[k] > 0]
    observed = np.array([counts.get(k, 0) for k in names], dtype=float)
    total = observed.sum()
    share = np.array([weights[k] for k in names]) / sum(weights[k] for k in names)
    if total == 0 or len(names) < 2:
        return {"p_value": 1.0, "mismatch": False, "observed": counts, "expected_share": {}}
    _, p = stats.chisquare(observed, total * share)
    sequential = sequential_srm_p(observed, share)
    return {
        "p_value": float(p),
        "sequential_p": sequential,
        "mismatch": bool(sequential < SRM_ALPHA),
        "observed": {k: int(v) for k, v in zip(names, observed, strict=True)},
        "expected_share": {k: float(s) for k, s in zip(names, share, strict=True)},
    }


def sequential_srm_p(
    observed: np.ndarray, share: np.ndarray, concentration: float = SRM_CONCENTRATION
) -> float:
    """The always-valid p-value of the counts against the shares (Lindon & Malek, "Anytime-
    valid inference for multinomial count data", NeurIPS 2022): the Bayes factor of a
    Dirichlet-multinomial with prior ``concentration · share`` against the multinomial of the
    configured shares is a martingale under no mismatch, so by Ville's inequality it exceeds
    1/α at any look with probability at most α. The p-value is 1 / the Bayes factor."""
    from scipy.special import gammaln

    prior = concentration * share
    n = float(observed.sum())
    log_bf = (
        float(gammaln(prior.sum()) - gammaln(prior.sum() + n))
        + float(np.sum(gammaln(prior + observed) - gammaln(prior)))
        - float(np.sum(observed * np.log(share)))
    )
    return float(min(1.0, math.exp(-log_bf))) if log_bf > -700 else 1.0


def verdict(c: Comparison, *, higher_is_better: bool, srm: bool, what: str) -> str:
    """A sentence a product owner can act on."""
    if srm:
        return (
            "sample ratio mismatch: the traffic split differs from the configuration, so the "
            "comparison is not trustworthy; check the routing before reading any result"
        )
    if min(c.control.n, c.treatment.n) < MIN_PER_ARM:
        return (
            f"collecting: {c.control.n} and {c.treatment.n} outcomes so far; the sequential test "
            f"starts at {MIN_PER_ARM} per variant"
        )
    better = (c.difference > 0) == higher_is_better
    interval = f"[{c.cs_low:+.4g}, {c.cs_high:+.4g}]"
    if c.sequential_p < c.alpha:
        side = "better" if better else "worse"
        return (
            f"the challenger is {side} on {what}: difference {c.difference:+.4g} "
            f"(always-valid {1 - c.alpha:.0%} interval {interval}, p = {c.sequential_p:.3g}); "
            "this holds however often the result was looked at"
        )
    return (
        f"no difference shown yet on {what}: {c.difference:+.4g}, always-valid interval "
        f"{interval} (p = {c.sequential_p:.3g}); keep collecting, or stop if a difference "
        "inside that interval does not matter"
    )


def _arm(x: np.ndarray) -> Arm:
    if len(x) == 0:
        return Arm(0, float("nan"), float("nan"))
    return Arm(len(x), float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0)


def _var_of_difference(a: Arm, b: Arm) -> float:
    if a.n < 2 or b.n < 2:
        return 0.0
    return a.sd**2 / a.n + b.sd**2 / b.n


def _welch_dof(a: Arm, b: Arm) -> float:
    va, vb = a.sd**2 / a.n, b.sd**2 / b.n
    denom = va**2 / (a.n - 1) + vb**2 / (b.n - 1)
    return (va + vb) ** 2 / denom if denom > 0 else float(a.n + b.n - 2)
