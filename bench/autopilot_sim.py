"""How often the autopilot promotes a challenger that is no better, how often it misses one that
is, and how long it takes from drift to promotion (not a test: a record).

Usage:  python bench/autopilot_sim.py [--cycles 200] [--seed 0]

Simulated traffic, judged by the real decision functions (:mod:`mlwright.autopilot.decide`) on
analyses built, as the server's analysis builds them, from the real experiment statistics
(:func:`mlwright.experiment.stats.compare` and the sample-ratio check). Each A/B is looked at
after every batch of outcomes, as the loop looks, and decided at the first look that is not
``wait``. Writes bench/results/autopilot.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.autopilot.decide import (
    TriggerEvidence,
    fired_triggers,
    judge_experiment,
    judge_shadow,
)
from mlwright.autopilot.policy import Policy
from mlwright.experiment.analysis import json_safe
from mlwright.experiment.stats import compare, sample_ratio_mismatch

HOUR = 3600.0


@dataclass(frozen=True)
class Decided:
    action: str  # promote | reject
    why: str  # better | worse | time | srm
    at: float  # seconds after the A/B began
    outcomes: int  # labelled outcomes, both arms, at the decision


def policy(args: argparse.Namespace, when: str) -> Policy:
    """The policy under test, parsed like a user's file."""
    return Policy.parse(
        {
            "model": "sim",
            "window": args.window,
            "triggers": {
                "metric_drop": {
                    "metric": "accuracy",
                    "margin": args.trigger_margin,
                    "min_labels": args.min_labels,
                }
            },
            "retrain": {"mode": "refit", "from_store": {"min_labels": 500, "window": "30d"}},
            "shadow": {"requests": args.shadow_requests, "max_disagreement": 0.5},
            "experiment": {
                "split": args.split,
                "min_outcomes": args.min_outcomes,
                "max_duration": args.max_duration,
            },
            "promote": {"when": when, "margin": args.margin},
        },
        source="bench",
    )


def analysis(
    values: np.ndarray, treated: np.ndarray, counts: dict[str, int], split: float
) -> dict[str, Any]:
    """The analysis dict of an A/B, as ``mlwright.experiment.analysis.analyze`` returns it."""
    weights = {"champion": 1.0 - split, "challenger": split}
    comparisons = []
    if len(values):
        c = compare(values, treated)
        comparisons.append(
            {"metric": "accuracy", "challenger": "challenger", "greater_is_better": True}
            | c.to_dict()
        )
    out: dict[str, Any] = json_safe(
        {
            "mode": "split",
            "weights": weights,
            "requests": counts,
            "sample_ratio": sample_ratio_mismatch(counts, weights),
            "comparisons": comparisons,
        }
    )
    return out


def run_ab(
    rng: np.random.Generator,
    policies: list[Policy],
    p_control: float,
    p_treatment: float,
    args: argparse.Namespace,
    look: float,
) -> list[Decided]:
    """One A/B on a Poisson request stream, every policy judging the same traffic at every
    look until it decides."""
    exp = policies[0].experiment
    duration, split = exp.max_duration, exp.split
    n = rng.poisson(args.rate / HOUR * duration)
    times = np.sort(rng.random(n) * duration)
    arm = rng.random(n) < split
    labelled = rng.random(n) < args.label_share
    t, treated = times[labelled], arm[labelled]
    values = (rng.random(len(t)) < np.where(treated, p_treatment, p_control)).astype(float)
    feedback = t + rng.exponential(args.label_delay * HOUR, len(t))
    order = np.argsort(feedback, kind="stable")  # outcomes in the order their feedback came
    feedback, values, treated = feedback[order], values[order], treated[order]
    champion_t, challenger_t = times[~arm], times[arm]
    decided: list[Decided | None] = [None] * len(policies)
    looks = np.minimum(look * np.arange(1, int(np.ceil(duration / look)) + 1), duration)
    for now in looks:
        k = int(np.searchsorted(feedback, now, side="right"))
        counts = {
            "champion": int(np.searchsorted(champion_t, now, side="right")),
            "challenger": int(np.searchsorted(challenger_t, now, side="right")),
        }
        a = analysis(values[:k], treated[:k], counts, split)
        for i, p in enumerate(policies):
            if decided[i] is not None:
                continue
            j = judge_experiment(p, a, "running", None, 0.0, float(now))
            if j.action == "wait":
                continue
            why = "better" if j.action == "promote" else "worse"
            if "sample_ratio" in j.evidence:
                why = "srm"
            elif j.action == "reject" and now >= duration:
                why = "time"
            decided[i] = Decided(j.action, why, float(now), k)
        if all(d is not None for d in decided):
            break
    return [d for d in decided if d is not None]


def drift_cycle(
    rng: np.random.Generator, p: Policy, args: argparse.Namespace
) -> dict[str, float | str]:
    """Drift at t = 0: the champion's accuracy falls; the loop, stepping every ``args.step``
    seconds from a random phase, triggers, refits, shadows and runs the A/B."""
    step, window = args.step * 60.0, p.window
    horizon, start = 3 * 86400.0, -(p.window + 86400.0)
    n = rng.poisson(args.rate * args.label_share / HOUR * (horizon - start))
    t = start + np.sort(rng.random(n)) * (horizon - start)
    correct = rng.random(n) < np.where(t < 0, args.before, args.after)
    feedback = t + rng.exponential(args.label_delay * HOUR, n)
    order = np.argsort(feedback, kind="stable")
    feedback, cum = feedback[order], np.concatenate([[0], np.cumsum(correct[order])])
    ticks = rng.random() * step + step * np.arange(int(horizon / step))
    hi = np.searchsorted(feedback, ticks, side="right")
    lo = np.searchsorted(feedback, ticks - window, side="right")
    triggered = None
    for tick, count, right in zip(ticks, hi - lo, cum[hi] - cum[lo], strict=True):
        evidence = TriggerEvidence(
            live={"accuracy": right / max(count, 1)},
            labels=int(count),
            training={"accuracy": args.before},
        )
        if fired_triggers(p, evidence, float(tick)):
            triggered = float(tick)
            break
    if triggered is None:
        return {"outcome": "no trigger"}
    shadow_start = triggered + args.refit  # the step that triggered refits, then starts the shadow
    now = triggered + step * np.ceil(args.refit / step)
    pairs = agreed = 0
    last = shadow_start
    while True:
        new = int(rng.poisson(args.rate / HOUR * (now - last)))
        pairs, agreed, last = pairs + new, agreed + int(rng.binomial(new, args.agreement)), now
        block = {"pairs": pairs, "agreement": agreed / pairs if pairs else None}
        judged = judge_shadow(p, {"shadow": block}, now, shadow_start)
        if judged.action != "wait":
            break
        now += step
    if judged.action == "reject":
        return {"outcome": "shadow rejected"}
    (ab,) = run_ab(rng, [p], args.after, args.challenger, args, step)
    return {
        "outcome": ab.action,
        "trigger": triggered,
        "shadow": now - triggered,
        "ab": ab.at,
        "total": now + ab.at,
    }


def pct(x: float) -> str:
    return f"{x:.1%}"


def ab_rows(
    rng: np.random.Generator, args: argparse.Namespace, policies: dict[str, Policy]
) -> tuple[list[str], list[str], int]:
    """The error-rate table (no better), the power table (better), and how many A/Bs the
    sample-ratio check rejected under ``when: better``."""
    look = args.look * 60.0
    wrong, power = [], []
    srm = 0
    cases = [
        ("equal", args.base, args.base),
        ("worse", args.base, args.base - 0.02),
        ("+2 points", args.base, args.base + 0.02),
        ("+5 points", args.base, args.base + 0.05),
    ]
    for name, pc, pt in cases:
        runs = [
            run_ab(rng, list(policies.values()), pc, pt, args, look) for _ in range(args.cycles)
        ]
        for i, (when, p) in enumerate(policies.items()):
            got = [r[i] for r in runs]
            promoted = [d for d in got if d.action == "promote"]
            share = len(promoted) / len(got)
            reasons = {w: sum(d.why == w for d in got) for w in ("worse", "time", "srm")}
            rejected = f"{reasons['worse']} / {reasons['time']} / {reasons['srm']}"
            srm += reasons["srm"] if when == "better" else 0
            if pt <= pc:
                is_wrong = pt < pc - p.promote.margin if when == "not_worse" else True
                label = pct(share) if is_wrong else f"({pct(share)}, allowed)"
                wrong.append(f"| {pc:.2f} → {pt:.2f} ({name}) | {when} | {label} | {rejected} |")
            else:
                med_n = np.median([d.outcomes for d in promoted]) if promoted else float("nan")
                med_h = np.median([d.at for d in promoted]) / HOUR if promoted else float("nan")
                power.append(
                    f"| {pc:.2f} → {pt:.2f} ({name}) | {when} | {pct(1 - share)} | {rejected} | "
                    f"{med_n:,.0f} | {med_h:.1f} |"
                )
    return wrong, power, srm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=2000.0, help="requests per hour")
    parser.add_argument("--label-share", type=float, default=0.3)
    parser.add_argument("--label-delay", type=float, default=1.0, help="mean hours (exponential)")
    parser.add_argument("--split", type=float, default=0.2)
    parser.add_argument("--min-outcomes", type=int, default=200)
    parser.add_argument("--max-duration", default="3d")
    parser.add_argument("--margin", type=float, default=0.01, help="not_worse margin")
    parser.add_argument("--base", type=float, default=0.80, help="champion accuracy in the A/B")
    parser.add_argument("--look", type=float, default=60.0, help="minutes between A/B looks")
    parser.add_argument("--window", default="2h", help="trigger window")
    parser.add_argument("--trigger-margin", type=float, default=0.05)
    parser.add_argument("--min-labels", type=int, default=200)
    parser.add_argument("--before", type=float, default=0.85, help="accuracy before the drift")
    parser.add_argument("--after", type=float, default=0.75, help="champion accuracy after it")
    parser.add_argument("--challenger", type=float, default=0.82, help="the refit's accuracy")
    parser.add_argument("--refit", type=float, default=600.0, help="seconds to refit")
    parser.add_argument("--shadow-requests", type=int, default=500)
    parser.add_argument("--agreement", type=float, default=0.85, help="shadow label agreement")
    parser.add_argument("--step", type=float, default=15.0, help="minutes between loop steps")
    args = parser.parse_args()
    began = time.monotonic()
    rng = np.random.default_rng(args.seed)
    policies = {"better": policy(args, "better"), "not_worse": policy(args, "not_worse")}
    wrong, power, srm = ab_rows(rng, args, policies)
    cycles = [drift_cycle(rng, policies["better"], args) for _ in range(args.cycles)]
    lines = report(args, policies["better"], (wrong, power, srm), cycles, time.monotonic() - began)
    out = Path(__file__).resolve().parent / "results" / "autopilot.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


def report(
    args: argparse.Namespace,
    p: Policy,
    tables: tuple[list[str], list[str], int],
    cycles: list[dict[str, float | str]],
    seconds: float,
) -> list[str]:
    wrong, power, srm = tables
    promoted = [c for c in cycles if c["outcome"] == "promote"]
    others = sorted({str(c["outcome"]) for c in cycles} - {"promote"})
    missed = ", ".join(f"{sum(c['outcome'] == o for c in cycles)} {o}" for o in others) or "none"

    def hours(key: str, q: float) -> str:
        values = [float(c[key]) / HOUR for c in promoted]
        return f"{np.quantile(values, q):.1f}" if values else "–"

    days = p.experiment.max_duration / 86400
    return [
        "# Autopilot: wrong promotions, missed improvements, time from drift to promotion",
        "",
        f"Command: `{' '.join(['python bench/autopilot_sim.py', *sys.argv[1:]])}` "
        f"({seconds:.0f} s, seed {args.seed}).",
        "",
        f"Each figure is over {args.cycles} simulated cycles, decided by the real "
        "`mlwright.autopilot.decide` functions on analyses from the real experiment statistics "
        "(`mlwright.experiment.stats.compare`, always-valid 95%, and the sample-ratio check).",
        "",
        "## Stream model (assumptions)",
        "",
        f"- Requests arrive as a Poisson stream of {args.rate:,.0f} an hour; the A/B sends "
        f"{args.split:.0%} to the challenger. {args.label_share:.0%} of predictions get a label, "
        f"after an exponential delay of mean {args.label_delay:g} h; outcomes are 1/0 (accuracy) "
        "and enter the analysis in the order their labels arrive.",
        f"- A/B: at least {args.min_outcomes} outcomes per arm before any decision, rejected at "
        f"{days:g} days (`max_duration`). In the first two tables the A/B is looked at every "
        f"{args.look:g} min ({int(p.experiment.max_duration / (args.look * 60))} looks over "
        f"{days:g} days): the peeking the loop does. No guardrail stops are simulated.",
        f"- Drift to promotion: accuracy {args.before:.2f} before the drift (the champion's "
        f"training score), {args.after:.2f} after it; the refit challenger scores "
        f"{args.challenger:.2f}. Trigger: `metric_drop` (accuracy more than "
        f"{args.trigger_margin:g} below training, at least {args.min_labels} labels) over a "
        f"{args.window} window of labels. The loop steps every {args.step:g} min from a random "
        f"phase; the refit takes {args.refit:g} s; the shadow needs {args.shadow_requests} "
        f"requests (label agreement {args.agreement:.0%}, limit 50% disagreement); then the A/B "
        f"(`when: better`), judged at every step.",
        "",
        "## Challenger no better: share promoted (wrong promotions)",
        "",
        f"`better` must never promote here. `not_worse` (margin {args.margin:g}) may promote an "
        f"equal challenger (shown in brackets, allowed); a wrong promotion is one worse than the "
        f"margin. Rejected: shown worse / out of time / sample-ratio mismatch.",
        "",
        "| champion → challenger | when | promoted | rejected (worse / time / SRM) |",
        "|---|---|---:|---:|",
        *wrong,
        "",
        "## Challenger better: share missed (not promoted within max_duration)",
        "",
        "The sample-ratio check runs at every look; it is always-valid (a Dirichlet-multinomial "
        f"Bayes factor at p < 0.001): it rejected {srm} of the {4 * args.cycles} A/Bs above and "
        "here (`when: better`), where the simulated split is always right.",
        "",
        "| champion → challenger | when | missed | rejected (worse / time / SRM) | median "
        "outcomes at promotion | median hours to promotion |",
        "|---|---|---:|---:|---:|---:|",
        *power,
        "",
        "## Time from drift onset to promotion",
        "",
        f"{len(promoted)} of {len(cycles)} cycles promoted (not: {missed}).",
        "",
        "| phase ends | median hours | 90th percentile |",
        "|---|---:|---:|",
        f"| trigger fires | {hours('trigger', 0.5)} | {hours('trigger', 0.9)} |",
        f"| refit + shadow (after the trigger) | {hours('shadow', 0.5)} | {hours('shadow', 0.9)} |",
        f"| A/B decided (after the shadow) | {hours('ab', 0.5)} | {hours('ab', 0.9)} |",
        f"| **drift onset → promotion** | **{hours('total', 0.5)}** | **{hours('total', 0.9)}** |",
        "",
    ]


if __name__ == "__main__":
    main()
