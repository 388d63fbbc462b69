"""What the continuous-training loop decides, as pure functions of the evidence.

No function here reads a store, a clock or a server: the loop gathers the evidence (monitoring's
drift and live metrics, the experiment's analysis, the registry's dates) and passes ``now`` in,
so the same functions run in the loop, in its tests and in the simulation that measures how
often they promote a challenger that is no better (``bench/autopilot_sim.py``).

- :func:`fired_triggers` — which of the policy's triggers fire: any one starts a rollout.
- :func:`judge_shadow` — the challenger answered a copy of live traffic: does it agree with the
  champion enough to be shown to users? (``wait`` | ``pass`` | ``reject``)
- :func:`judge_experiment` — the A/B: promote only when the always-valid confidence sequence of
  (challenger − champion) shows it better (or not worse by more than a margin); reject when it
  shows it worse, when a guardrail stopped the experiment, when the traffic split is off, or when
  time ran out. Because the interval is valid at every look, checking after each batch of
  outcomes does not inflate the rate of wrong promotions. (``wait`` | ``promote`` | ``reject``)
- :func:`judge_probation` — after promotion, the new champion's live metric must stay near what
  it showed in the A/B. (``wait`` | ``keep`` | ``rollback``)

Each returns a :class:`Judgement` whose reason is one sentence a person reads on the timeline,
with the numbers it rests on, and whose evidence is JSON-safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlwright.autopilot.policy import GREATER_IS_BETTER, Policy

CHALLENGER = "challenger"  # the variant name experiments started by the loop give the challenger
PRIMARY_METRICS = ("accuracy", "squared_error", "reward")  # one per kind of feedback


@dataclass(frozen=True)
class Judgement:
    action: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fired:
    """One trigger that fired: its name (``drift``, ``feature_drift``, ``metric_floor``,
    ``metric_drop``, ``schedule``), a sentence, and the numbers."""

    trigger: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerEvidence:
    """What monitoring shows for the champion over the policy's window."""

    drift: dict[str, dict[str, Any]] = field(default_factory=dict)  # feature → {psi, drifted}
    drift_share: float | None = None  # share of features drifted; default: counted from drift
    live: dict[str, float] = field(default_factory=dict)  # live metric → value
    labels: int = 0  # labelled predictions behind the live metrics
    training: dict[str, float] = field(default_factory=dict)  # the champion's training scores
    last_rollout_started: float | None = None
    champion_registered: float | None = None


@dataclass(frozen=True)
class ProbationEvidence:
    """The promoted version's outcomes since its promotion, on the A/B's metric and scale
    (accuracy, log_loss, squared_error or reward per labelled prediction): their mean, their
    standard deviation (None: judge the mean alone) and count, against its mean in the A/B."""

    metric: str
    expected: float
    live: float | None
    labels: int
    sd: float | None = None


PROBATION_Z = 3.0  # standard errors the live mean must be worse by, beyond the margin


def cooldown_left(policy: Policy, last_ended: float | None, now: float) -> float:
    """Seconds until a new rollout may start (0 when it may start now)."""
    if last_ended is None:
        return 0.0
    return max(0.0, last_ended + policy.cooldown - now)


def fired_triggers(policy: Policy, evidence: TriggerEvidence, now: float) -> list[Fired]:
    """The policy's triggers that fire on this evidence, in the policy's order."""
    t = policy.triggers
    fired: list[Fired] = []
    if t.drift is not None:
        share = evidence.drift_share
        if share is None and evidence.drift:
            share = sum(bool(d.get("drifted")) for d in evidence.drift.values()) / len(
                evidence.drift
            )
        if share is not None and share >= t.drift.share:
            fired.append(
                Fired(
                    "drift",
                    f"drift: {share:.0%} of features drifted (at least {t.drift.share:.0%})",
                    {"share": share, "threshold": t.drift.share},
                )
            )
    for rule in t.feature_drift:
        psi = evidence.drift.get(rule.feature, {}).get("psi")
        if psi is not None and math.isfinite(psi) and psi >= rule.psi:
            fired.append(
                Fired(
                    "feature_drift",
                    f"feature_drift: {rule.feature} PSI {psi:.3g} >= {rule.psi:g}",
                    {"feature": rule.feature, "psi": psi, "threshold": rule.psi},
                )
            )
    fired.extend(_metric_triggers(policy, evidence))
    if t.schedule is not None:
        since = evidence.last_rollout_started
        what = "the last rollout began"
        if since is None:
            since, what = evidence.champion_registered, "the champion was registered"
        if since is not None and now - since >= t.schedule.every:
            fired.append(
                Fired(
                    "schedule",
                    f"schedule: {_span(now - since)} since {what} "
                    f"(every {_span(t.schedule.every)})",
                    {"since": since, "every": t.schedule.every},
                )
            )
    return fired


def _metric_triggers(policy: Policy, evidence: TriggerEvidence) -> list[Fired]:
    fired: list[Fired] = []
    floor, drop = policy.triggers.metric_floor, policy.triggers.metric_drop
    if floor is not None and evidence.labels >= floor.min_labels:
        value = evidence.live.get(floor.metric)
        higher = GREATER_IS_BETTER[floor.metric]
        limit = floor.below if higher else floor.above  # the policy gives the one that applies
        if value is not None and limit is not None and (value < limit if higher else value > limit):
            fired.append(
                Fired(
                    "metric_floor",
                    f"metric_floor: {floor.metric} {value:.4g} {'<' if higher else '>'} "
                    f"{limit:g} over {evidence.labels:,} labels",
                    {
                        "metric": floor.metric,
                        "value": value,
                        "limit": limit,
                        "labels": evidence.labels,
                    },
                )
            )
    if drop is not None and evidence.labels >= drop.min_labels:
        value = evidence.live.get(drop.metric)
        trained = evidence.training.get(drop.metric)
        if value is not None and trained is not None:
            higher = GREATER_IS_BETTER[drop.metric]
            hit = value < trained - drop.margin if higher else value > trained + drop.margin
            if hit:
                sign, op = ("<", "-") if higher else (">", "+")
                fired.append(
                    Fired(
                        "metric_drop",
                        f"metric_drop: {drop.metric} {value:.4g} {sign} {trained:.4g} {op} "
                        f"{drop.margin:g} over {evidence.labels:,} labels",
                        {
                            "metric": drop.metric,
                            "value": value,
                            "training": trained,
                            "margin": drop.margin,
                            "labels": evidence.labels,
                        },
                    )
                )
    return fired


def judge_shadow(policy: Policy, analysis: dict[str, Any], now: float, started: float) -> Judgement:
    """Pass the shadow once it has ``shadow.requests`` pairs and the challenger answers like the
    champion often enough.

    Disagreement is, for labels, the share of requests the two answered with different labels
    (1 − agreement), held to ``max_disagreement``; for values, the mean absolute difference of
    the two predictions in the target's units, held to ``max_abs_difference`` when the policy
    sets one (a share has no meaning for values without a scale). A shadow that does not reach
    its requests within the experiment's ``max_duration`` is rejected."""
    shadow = policy.shadow
    if shadow is None:
        return Judgement("pass", "the policy skips the shadow; go to the A/B", {})
    block = analysis.get("shadow") or {}
    pairs = int(block.get("pairs") or 0)
    evidence: dict[str, Any] = {"pairs": pairs, "requests": shadow.requests, **block}
    if pairs < shadow.requests:
        if now - started >= policy.experiment.max_duration:
            return Judgement(
                "reject",
                f"the shadow answered only {pairs:,} of {shadow.requests:,} requests in "
                f"{_span(now - started)}; reject",
                evidence,
            )
        return Judgement(
            "wait", f"the shadow answered {pairs:,} of {shadow.requests:,} requests; wait", evidence
        )
    if block.get("agreement") is not None:
        apart = 1.0 - float(block["agreement"])
        evidence["disagreement"] = apart
        said = (
            f"the challenger answered {pairs:,} requests with a different label than the champion "
            f"on {apart:.1%} of them (at most {shadow.max_disagreement:.1%})"
        )
        if apart > shadow.max_disagreement:
            return Judgement("reject", f"{said}; reject", evidence)
        return Judgement("pass", f"{said}; go to the A/B", evidence)
    if block.get("mean_abs_difference") is not None:
        gap = float(block["mean_abs_difference"])
        said = (
            f"the challenger's predictions differ from the champion's by {gap:.4g} on average "
            f"over {pairs:,} requests"
        )
        limit = shadow.max_abs_difference
        if limit is None:
            return Judgement("pass", f"{said} (no limit set); go to the A/B", evidence)
        if gap > limit:
            return Judgement("reject", f"{said} (at most {limit:g}); reject", evidence)
        return Judgement("pass", f"{said} (at most {limit:g}); go to the A/B", evidence)
    return Judgement(
        "reject",
        f"the shadow has {pairs:,} pairs but no agreement to judge them by; reject",
        evidence,
    )


def judge_experiment(
    policy: Policy,
    analysis: dict[str, Any],
    status: str,
    reason: str | None,
    started: float,
    now: float,
) -> Judgement:
    """Promote, reject or wait on the A/B's analysis (:func:`mlwright.experiment.analysis.analyze`).

    The comparison is the policy's ``promote.metric`` for the challenger, else the feedback's
    primary metric. With ``gain`` the improvement (treatment − control, negated for a loss) and
    its always-valid interval ``[low, high]``: ``better`` promotes when ``low > 0`` and rejects
    when ``high < 0``; ``not_worse`` promotes when ``low > −margin`` and rejects when
    ``high < −margin``. Nothing is decided before ``min_outcomes`` per arm, but a guardrail stop,
    a sample-ratio mismatch and ``max_duration`` reject at any time."""
    elapsed = now - started
    late = elapsed >= policy.experiment.max_duration
    evidence: dict[str, Any] = {"status": status, "elapsed": elapsed}
    if status.startswith("stopped"):
        why = reason or status.partition(":")[2].strip() or "no reason given"
        evidence["stopped"] = why
        return Judgement("reject", f"the experiment was stopped ({why}); reject", evidence)
    srm = analysis.get("sample_ratio") or {}
    if srm.get("mismatch"):
        evidence["sample_ratio"] = srm
        return Judgement(
            "reject",
            f"the traffic split differs from the configured {policy.experiment.split:.0%} "
            f"(sample-ratio p = {float(srm.get('p_value') or 0.0):.2g}), so the comparison "
            "cannot be trusted; reject",
            evidence,
        )
    c = _comparison(policy, analysis)
    if c is None:
        what = policy.promote.metric or "the primary metric"
        if late:
            return Judgement(
                "reject", f"no outcomes on {what} after {_span(elapsed)}; reject", evidence
            )
        return Judgement("wait", f"no labelled outcomes on {what} yet; wait", evidence)
    metric, higher = str(c["metric"]), bool(c["greater_is_better"])
    n_c, n_t = int(c["control"]["n"]), int(c["treatment"]["n"])
    low, high, diff = c.get("cs_low"), c.get("cs_high"), float(c["difference"] or 0.0)
    evidence.update(
        metric=metric,
        greater_is_better=higher,
        control=c["control"],
        treatment=c["treatment"],
        difference=diff,
        cs_low=low,
        cs_high=high,
        sequential_p=c.get("sequential_p"),
        when=policy.promote.when,
        margin=policy.promote.margin,
    )
    need = policy.experiment.min_outcomes
    if min(n_c, n_t) < need or low is None or high is None:
        counts = f"{n_t:,} challenger and {n_c:,} champion outcomes on {metric}"
        if late:
            return Judgement(
                "reject",
                f"only {counts} after {_span(elapsed)} (at least {need:,} each needed): "
                "no evidence the challenger is better; reject",
                evidence,
            )
        return Judgement("wait", f"{counts} so far, {need:,} each needed; wait", evidence)
    gain_low, gain_high = (float(low), float(high)) if higher else (-float(high), -float(low))
    bar = 0.0 if policy.promote.when == "better" else -policy.promote.margin
    level = 1.0 - float(c.get("alpha") or 0.05)
    said = (
        f"{metric} {diff:+.3g} [{float(low):+.3g}, {float(high):+.3g}] always-valid {level:.0%} "
        f"over {n_c + n_t:,} outcomes" + ("" if higher else " (lower is better)")
    )
    good, bad = (
        ("better", "worse")
        if policy.promote.when == "better"
        else (
            f"not worse by more than {policy.promote.margin:g}",
            f"worse by more than {policy.promote.margin:g}",
        )
    )
    if gain_low > bar:
        return Judgement("promote", f"{said}: {good}; promote", evidence)
    if gain_high < bar:
        return Judgement("reject", f"{said}: {bad}; reject", evidence)
    if late:
        return Judgement(
            "reject",
            f"{said}: no evidence the challenger is {good} after {_span(elapsed)}; reject",
            evidence,
        )
    return Judgement("wait", f"{said}: undecided; wait", evidence)


def _comparison(policy: Policy, analysis: dict[str, Any]) -> dict[str, Any] | None:
    mine = [c for c in analysis.get("comparisons") or [] if c.get("challenger") == CHALLENGER]
    if policy.promote.metric is not None:
        return next((c for c in mine if c["metric"] == policy.promote.metric), None)
    primary = [c for c in mine if c["metric"] in PRIMARY_METRICS]
    chosen: dict[str, Any] | None = (primary or mine or [None])[0]
    return chosen


def judge_probation(
    policy: Policy, evidence: ProbationEvidence, now: float, started: float
) -> Judgement:
    """Keep the promoted version once ``probation.min_labels`` labels show its live metric within
    ``rollback.margin`` of what it showed in the A/B; roll back when it is worse by more, beyond
    :data:`PROBATION_Z` standard errors of the live mean (a live mean that merely drew low, or
    an A/B mean that drew high, which is how a challenger gets promoted, rolls nothing back).
    When ``probation.max_duration`` passes with too few labels to judge, keep it: the A/B proved
    it, and nothing live has shown otherwise."""
    probation, margin = policy.rollback.probation, policy.rollback.margin
    elapsed = now - started
    facts: dict[str, Any] = {
        "metric": evidence.metric,
        "expected": evidence.expected,
        "live": evidence.live,
        "labels": evidence.labels,
        "margin": margin,
        "elapsed": elapsed,
    }
    if evidence.live is None or evidence.labels < probation.min_labels:
        counted = f"{evidence.labels:,} of {probation.min_labels:,} labels"
        if elapsed >= probation.max_duration:
            return Judgement(
                "keep",
                f"only {counted} after {_span(elapsed)} of probation: too few to judge; keep",
                facts,
            )
        return Judgement("wait", f"probation: {counted} so far; wait", facts)
    higher = GREATER_IS_BETTER.get(evidence.metric, True)
    worse_by = evidence.expected - evidence.live if higher else evidence.live - evidence.expected
    error = 0.0 if evidence.sd is None else PROBATION_Z * evidence.sd / math.sqrt(evidence.labels)
    facts.update(worse_by=worse_by, sd=evidence.sd, allowance=error)
    said = (
        f"{evidence.metric} {evidence.live:.4g} live over {evidence.labels:,} labels against "
        f"{evidence.expected:.4g} in the A/B"
    )
    if worse_by - error > margin:
        beyond = f" and {error:.3g} of chance" if error else ""
        return Judgement(
            "rollback",
            f"{said}: worse by {worse_by:.3g} (more than {margin:g}{beyond}); roll back",
            facts,
        )
    within = f"{margin:g} plus {error:.3g} of chance" if error else f"{margin:g}"
    return Judgement("keep", f"{said}: within {within}; keep", facts)


def _span(seconds: float) -> str:
    """A duration as a person says it: 45 s, 30 min, 6 h, 2.5 days."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"
