"""The autopilot's decisions: each trigger at its edge, and every branch of each judge."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from mlwright.autopilot.decide import (
    Fired,
    ProbationEvidence,
    TriggerEvidence,
    cooldown_left,
    fired_triggers,
    judge_experiment,
    judge_probation,
    judge_shadow,
)
from mlwright.autopilot.policy import Policy
from mlwright.experiment.analysis import json_safe
from mlwright.experiment.stats import compare

DAY = 86400.0
NOW = 1_800_000_000.0


def policy(**parts: Any) -> Policy:
    raw: dict[str, Any] = {
        "model": "churn",
        "triggers": {"drift": {"share": 0.3}},
        "retrain": {"data": ["new.csv"]},
    }
    return Policy.parse({**raw, **parts})


def names(fired: list[Fired]) -> list[str]:
    return [f.trigger for f in fired]


# ---- triggers --------------------------------------------------------------------------------


def test_drift_share_fires_at_its_threshold_and_not_below() -> None:
    p = policy(triggers={"drift": {"share": 0.25}})
    assert names(fired_triggers(p, TriggerEvidence(drift_share=0.25), NOW)) == ["drift"]
    assert fired_triggers(p, TriggerEvidence(drift_share=0.24), NOW) == []
    assert fired_triggers(p, TriggerEvidence(), NOW) == []  # nothing known: nothing fires
    # without a share, it is counted from the features' drift status: 1 of 4 = 25%
    drift = {f: {"psi": 0.0, "drifted": f == "a"} for f in "abcd"}
    (fired,) = fired_triggers(p, TriggerEvidence(drift=drift), NOW)
    assert fired.reason == "drift: 25% of features drifted (at least 25%)"
    drift["a"]["drifted"] = False
    assert fired_triggers(p, TriggerEvidence(drift=drift), NOW) == []


def test_feature_drift_fires_at_its_psi() -> None:
    p = policy(triggers={"feature_drift": [{"feature": "tenure", "psi": 0.25}]})
    at = TriggerEvidence(drift={"tenure": {"psi": 0.25, "drifted": True}})
    (fired,) = fired_triggers(p, at, NOW)
    assert (
        fired.trigger == "feature_drift"
        and fired.reason == "feature_drift: tenure PSI 0.25 >= 0.25"
    )
    assert fired.evidence["psi"] == 0.25
    below = TriggerEvidence(drift={"tenure": {"psi": 0.2499}, "age": {"psi": 3.0}})
    assert fired_triggers(p, below, NOW) == []  # another feature's drift is not this trigger


def test_metric_floor_fires_below_with_enough_labels() -> None:
    p = policy(triggers={"metric_floor": {"metric": "accuracy", "below": 0.75, "min_labels": 200}})
    low = TriggerEvidence(live={"accuracy": 0.7499}, labels=200)
    (fired,) = fired_triggers(p, low, NOW)
    assert fired.reason == "metric_floor: accuracy 0.7499 < 0.75 over 200 labels"
    assert fired_triggers(p, TriggerEvidence(live={"accuracy": 0.75}, labels=200), NOW) == []
    assert fired_triggers(p, TriggerEvidence(live={"accuracy": 0.5}, labels=199), NOW) == []


def test_metric_floor_of_a_loss_fires_above() -> None:
    p = policy(triggers={"metric_floor": {"metric": "rmse", "above": 4.0, "min_labels": 10}})
    assert names(fired_triggers(p, TriggerEvidence(live={"rmse": 4.01}, labels=10), NOW)) == [
        "metric_floor"
    ]
    assert fired_triggers(p, TriggerEvidence(live={"rmse": 4.0}, labels=10), NOW) == []
    assert fired_triggers(p, TriggerEvidence(live={"rmse": 1.0}, labels=10), NOW) == []


def test_metric_drop_fires_when_worse_than_training_by_more_than_the_margin() -> None:
    p = policy(triggers={"metric_drop": {"metric": "accuracy", "margin": 0.25, "min_labels": 100}})
    trained = {"accuracy": 0.75}
    (fired,) = fired_triggers(
        p, TriggerEvidence(live={"accuracy": 0.49}, labels=412, training=trained), NOW
    )
    assert fired.reason == "metric_drop: accuracy 0.49 < 0.75 - 0.25 over 412 labels"
    at_edge = TriggerEvidence(live={"accuracy": 0.5}, labels=412, training=trained)
    assert fired_triggers(p, at_edge, NOW) == []
    few = TriggerEvidence(live={"accuracy": 0.1}, labels=99, training=trained)
    assert fired_triggers(p, few, NOW) == []
    untrained = TriggerEvidence(live={"accuracy": 0.1}, labels=500)
    assert fired_triggers(p, untrained, NOW) == []  # no training score: nothing to drop from


def test_metric_drop_of_a_loss_fires_when_it_rises() -> None:
    p = policy(triggers={"metric_drop": {"metric": "log_loss", "margin": 0.25, "min_labels": 1}})
    trained = {"log_loss": 0.5}
    up = TriggerEvidence(live={"log_loss": 0.76}, labels=5, training=trained)
    (fired,) = fired_triggers(p, up, NOW)
    assert fired.reason == "metric_drop: log_loss 0.76 > 0.5 + 0.25 over 5 labels"
    edge = TriggerEvidence(live={"log_loss": 0.75}, labels=5, training=trained)
    assert fired_triggers(p, edge, NOW) == []
    better = TriggerEvidence(live={"log_loss": 0.1}, labels=5, training=trained)
    assert fired_triggers(p, better, NOW) == []


def test_schedule_counts_from_the_last_rollout_else_the_registration() -> None:
    p = policy(triggers={"schedule": {"every": "7d"}})
    week = 7 * DAY
    (fired,) = fired_triggers(p, TriggerEvidence(last_rollout_started=NOW - week), NOW)
    assert fired.reason == "schedule: 7 days since the last rollout began (every 7 days)"
    assert fired_triggers(p, TriggerEvidence(last_rollout_started=NOW - week + 1), NOW) == []
    registered = TriggerEvidence(champion_registered=NOW - week)
    assert "the champion was registered" in fired_triggers(p, registered, NOW)[0].reason
    recent = TriggerEvidence(last_rollout_started=NOW - DAY, champion_registered=NOW - 30 * DAY)
    assert fired_triggers(p, recent, NOW) == []  # the last rollout counts first
    assert fired_triggers(p, TriggerEvidence(), NOW) == []


def test_every_trigger_that_fires_is_listed() -> None:
    p = policy(
        triggers={
            "drift": {"share": 0.5},
            "metric_floor": {"metric": "accuracy", "below": 0.8, "min_labels": 1},
            "schedule": {"every": "1d"},
        }
    )
    evidence = TriggerEvidence(
        drift_share=0.6, live={"accuracy": 0.7}, labels=10, last_rollout_started=NOW - 2 * DAY
    )
    assert names(fired_triggers(p, evidence, NOW)) == ["drift", "metric_floor", "schedule"]


def test_cooldown() -> None:
    p = policy(cooldown="1d")
    assert cooldown_left(p, None, NOW) == 0.0
    assert cooldown_left(p, NOW - 3600, NOW) == DAY - 3600
    assert cooldown_left(p, NOW - DAY, NOW) == 0.0


# ---- shadow ----------------------------------------------------------------------------------


def test_shadow_waits_for_its_requests_then_judges_agreement() -> None:
    p = policy(shadow={"requests": 500, "max_disagreement": 0.2})
    few = judge_shadow(p, {"shadow": {"pairs": 499, "agreement": 0.1}}, NOW, NOW - 60)
    assert few.action == "wait" and few.reason == "the shadow answered 499 of 500 requests; wait"
    close = judge_shadow(p, {"shadow": {"pairs": 500, "agreement": 0.8}}, NOW, NOW - 60)
    assert close.action == "pass" and "on 20.0% of them (at most 20.0%)" in close.reason
    apart = judge_shadow(p, {"shadow": {"pairs": 800, "agreement": 0.79}}, NOW, NOW - 60)
    assert apart.action == "reject" and "21.0%" in apart.reason
    assert apart.evidence["disagreement"] == pytest.approx(0.21)


def test_shadow_of_values_is_held_to_its_mean_absolute_difference() -> None:
    block = {"shadow": {"pairs": 600, "mean_difference": 0.5, "mean_abs_difference": 2.5}}
    assert judge_shadow(policy(), block, NOW, NOW - 60).action == "pass"  # no limit set
    held = policy(shadow={"requests": 500, "max_abs_difference": 2.0})
    assert judge_shadow(held, block, NOW, NOW - 60).action == "reject"
    loose = policy(shadow={"requests": 500, "max_abs_difference": 2.5})
    assert judge_shadow(loose, block, NOW, NOW - 60).action == "pass"


def test_shadow_that_never_fills_is_rejected_and_no_shadow_passes() -> None:
    p = policy(experiment={"max_duration": "3d"})
    late = judge_shadow(p, {"shadow": {"pairs": 12}}, NOW, NOW - 3 * DAY)
    assert late.action == "reject" and "only 12 of 500 requests in 3 days" in late.reason
    assert judge_shadow(p, {}, NOW, NOW - 60).action == "wait"
    assert judge_shadow(policy(shadow=None), {}, NOW, NOW).action == "pass"


# ---- experiment ------------------------------------------------------------------------------


def comparison(
    *,
    metric: str = "accuracy",
    higher: bool = True,
    n: tuple[int, int] = (1000, 250),
    diff: float = 0.0,
    low: float | None = -0.05,
    high: float | None = 0.05,
    challenger: str = "challenger",
) -> dict[str, Any]:
    return {
        "metric": metric,
        "challenger": challenger,
        "greater_is_better": higher,
        "control": {"n": n[0], "mean": 0.8, "sd": 0.4},
        "treatment": {"n": n[1], "mean": 0.8 + diff, "sd": 0.4},
        "difference": diff,
        "cs_low": low,
        "cs_high": high,
        "sequential_p": 0.5,
        "alpha": 0.05,
    }


def analysis(*comparisons: dict[str, Any], mismatch: bool = False) -> dict[str, Any]:
    return {
        "requests": {"champion": 4000, "challenger": 1000},
        "sample_ratio": {"p_value": 0.0001 if mismatch else 0.5, "mismatch": mismatch},
        "comparisons": list(comparisons),
    }


def judge(p: Policy, a: dict[str, Any], *, status: str = "running", age: float = 3600) -> Any:
    return judge_experiment(p, a, status, None, NOW - age, NOW)


def test_better_promotes_when_the_interval_excludes_zero_on_the_good_side() -> None:
    p = policy()
    up = judge(p, analysis(comparison(diff=0.041, low=0.012, high=0.070, n=(1000, 204))))
    assert up.action == "promote"
    assert up.reason == (
        "accuracy +0.041 [+0.012, +0.07] always-valid 95% over 1,204 outcomes: better; promote"
    )
    assert up.evidence["cs_low"] == 0.012 and up.evidence["treatment"]["n"] == 204
    down = judge(p, analysis(comparison(diff=-0.04, low=-0.07, high=-0.001)))
    assert down.action == "reject" and down.reason.endswith(": worse; reject")
    unsure = judge(p, analysis(comparison(diff=0.01, low=-0.02, high=0.04)))
    assert unsure.action == "wait" and unsure.reason.endswith(": undecided; wait")
    touching = judge(p, analysis(comparison(diff=0.03, low=0.0, high=0.06)))
    assert touching.action == "wait"  # the interval must exclude 0


def test_not_worse_promotes_within_the_margin() -> None:
    p = policy(promote={"when": "not_worse", "margin": 0.02})
    within = judge(p, analysis(comparison(diff=-0.005, low=-0.015, high=0.005)))
    assert within.action == "promote" and "not worse by more than 0.02; promote" in within.reason
    unsure = judge(p, analysis(comparison(diff=-0.01, low=-0.03, high=0.01)))
    assert unsure.action == "wait"
    bad = judge(p, analysis(comparison(diff=-0.05, low=-0.08, high=-0.021)))
    assert bad.action == "reject" and "worse by more than 0.02; reject" in bad.reason


def test_a_loss_is_better_when_it_falls() -> None:
    p = policy(promote={"metric": "log_loss"})
    lower = comparison(metric="log_loss", higher=False, diff=-0.04, low=-0.07, high=-0.01)
    up = judge(p, analysis(comparison(diff=-0.2, low=-0.3, high=-0.1), lower))
    assert up.action == "promote"  # the policy's metric, not accuracy, decides
    assert "log_loss -0.04 [-0.07, -0.01]" in up.reason and "(lower is better)" in up.reason
    higher = comparison(metric="log_loss", higher=False, diff=0.04, low=0.01, high=0.07)
    assert judge(p, analysis(higher)).action == "reject"
    nw = policy(promote={"metric": "squared_error", "when": "not_worse", "margin": 0.5})
    mse = comparison(metric="squared_error", higher=False, diff=0.1, low=-0.2, high=0.4)
    assert judge(nw, analysis(mse)).action == "promote"  # at most 0.4 worse < 0.5
    mse_bad = comparison(metric="squared_error", higher=False, diff=0.9, low=0.6, high=1.2)
    assert judge(nw, analysis(mse_bad)).action == "reject"


def test_the_primary_metric_is_used_when_the_policy_names_none() -> None:
    loss_first = comparison(metric="log_loss", higher=False, diff=0.1, low=0.05, high=0.15)
    acc = comparison(diff=0.05, low=0.01, high=0.09)
    other = comparison(diff=-0.5, low=-0.6, high=-0.4, challenger="someone-else")
    assert judge(policy(), analysis(other, loss_first, acc)).action == "promote"


def test_no_decision_before_min_outcomes_per_arm() -> None:
    p = policy(experiment={"min_outcomes": 200})
    few = judge(p, analysis(comparison(n=(5000, 199), diff=0.2, low=0.1, high=0.3)))
    assert few.action == "wait"
    assert (
        few.reason
        == "199 challenger and 5,000 champion outcomes on accuracy so far, 200 each needed; wait"
    )
    enough = judge(p, analysis(comparison(n=(200, 200), diff=0.2, low=0.1, high=0.3)))
    assert enough.action == "promote"
    undefined = judge(p, analysis(comparison(n=(300, 300), low=None, high=None)))
    assert undefined.action == "wait"
    assert judge(p, analysis()).action == "wait"  # no outcomes at all


def test_guardrail_stop_mismatch_and_time_reject() -> None:
    p = policy(experiment={"max_duration": "3d"})
    good = analysis(comparison(diff=0.05, low=0.01, high=0.09))
    stopped = judge_experiment(p, good, "stopped", "error rate 3% > 1%", NOW - 60, NOW)
    assert stopped.action == "reject"
    assert stopped.reason == "the experiment was stopped (error rate 3% > 1%); reject"
    stored = judge(p, good, status="stopped: p99 latency 900 ms > 500 ms")
    assert stored.action == "reject" and "(p99 latency 900 ms > 500 ms)" in stored.reason
    srm = judge(p, analysis(comparison(diff=0.05, low=0.01, high=0.09), mismatch=True))
    assert srm.action == "reject" and "configured 20%" in srm.reason
    late = judge(p, analysis(comparison(diff=0.01, low=-0.01, high=0.03)), age=3 * DAY)
    assert late.action == "reject"
    assert "no evidence the challenger is better after 3 days; reject" in late.reason
    assert judge(p, analysis(comparison(n=(10, 10))), age=3 * DAY).action == "reject"
    assert judge(p, analysis(), age=3 * DAY).action == "reject"
    just_before = judge(p, analysis(comparison(diff=0.01, low=-0.01, high=0.03)), age=3 * DAY - 1)
    assert just_before.action == "wait"


def test_judges_a_real_analysis_from_the_experiment_statistics() -> None:
    rng = np.random.default_rng(0)
    treated = rng.random(6000) < 0.5
    values = (rng.random(6000) < np.where(treated, 0.9, 0.7)).astype(float)
    c = compare(values, treated)
    a = json_safe(
        {
            "sample_ratio": {"p_value": 0.5, "mismatch": False},
            "comparisons": [
                {"metric": "accuracy", "challenger": "challenger", "greater_is_better": True}
                | c.to_dict()
            ],
        }
    )
    judged = judge(policy(), a)
    assert judged.action == "promote" and judged.evidence["cs_low"] > 0
    assert json.loads(json.dumps(judged.evidence, allow_nan=False)) == judged.evidence
    assert (
        judge(
            policy(),
            json_safe({**a, "comparisons": [{**a["comparisons"][0], "greater_is_better": False}]}),
        ).action
        == "reject"
    )


# ---- probation -------------------------------------------------------------------------------


def test_probation_keeps_rolls_back_and_waits() -> None:
    p = policy(rollback={"probation": {"min_labels": 200, "max_duration": "1d"}, "margin": 0.02})
    held = judge_probation(p, ProbationEvidence("accuracy", 0.82, 0.805, 250), NOW, NOW - 60)
    assert held.action == "keep"
    assert held.reason == (
        "accuracy 0.805 live over 250 labels against 0.82 in the A/B: within 0.02; keep"
    )
    fell = judge_probation(p, ProbationEvidence("accuracy", 0.82, 0.79, 250), NOW, NOW - 60)
    assert fell.action == "rollback" and "worse by 0.03 (more than 0.02); roll back" in fell.reason
    few = judge_probation(p, ProbationEvidence("accuracy", 0.82, 0.5, 199), NOW, NOW - 60)
    assert few.action == "wait"
    late = judge_probation(p, ProbationEvidence("accuracy", 0.82, None, 3), NOW, NOW - DAY)
    assert late.action == "keep" and "too few to judge" in late.reason


def test_probation_of_a_loss_rolls_back_when_it_rises() -> None:
    p = policy(rollback={"margin": 0.5})
    up = judge_probation(p, ProbationEvidence("squared_error", 16.0, 17.0, 300), NOW, NOW - 60)
    assert up.action == "rollback"
    down = judge_probation(p, ProbationEvidence("squared_error", 16.0, 9.0, 300), NOW, NOW - 60)
    assert down.action == "keep"


def test_probation_allows_for_chance() -> None:
    """A live mean that drew low rolls nothing back: 0.79 over 250 labels against 0.82 is 1.2
    standard errors, not evidence; 0.70 over 250 is 5."""
    p = policy(rollback={"probation": {"min_labels": 200, "max_duration": "1d"}, "margin": 0.02})
    sd = (0.8 * 0.2) ** 0.5
    drew_low = judge_probation(p, ProbationEvidence("accuracy", 0.82, 0.79, 250, sd), NOW, NOW - 60)
    assert drew_low.action == "keep" and "of chance" in drew_low.reason
    fell = judge_probation(p, ProbationEvidence("accuracy", 0.82, 0.70, 250, sd), NOW, NOW - 60)
    assert fell.action == "rollback"
    # equal to the A/B figure, 4,000 probations: almost none roll back
    rng = np.random.default_rng(0)
    rolled = 0
    for _ in range(4000):
        x = rng.random(200) < 0.82
        seen = ProbationEvidence("accuracy", 0.82, float(x.mean()), 200, float(x.std(ddof=1)))
        rolled += judge_probation(p, seen, NOW, NOW - 60).action == "rollback"
    assert rolled / 4000 < 0.01
