"""The report's plain-language summary, for the reader who reads nothing else: what the model
predicts, how good it is against a naive baseline, what drives it, the risks and what to do next.

Every number comes from what the package already holds: the evaluation evidence gathered at
training time (``report/evaluation.json``: metrics on the held-out rows, the naive baseline on
the same rows, permutation importance), the recipe and the schema.

A **near-leak** is one column worth most of the model's skill in a model that is strong: a column
known only after the outcome, or derived from it, looks exactly like that. The rule (stated in
the report and in the docs) is :func:`near_leak`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlwright.data.tasks import METRICS, Task
from mlwright.package.model import Model
from mlwright.report.document import Section, code, plain
from mlwright.report.lineage import retrains_sentence

SMALL_HELD_OUT = 500  # held-out rows below which the summary gives the score's interval
DRIVERS = 3  # columns named as the main drivers
MINOR_SHARE = 0.05  # a driver below this share of the total importance "matters little"
LEAK_SHARE = 0.75  # a near-leak: more than this share of the total importance,
LEAK_LIFT = 0.5  # more than this share of the model's lift over the naive baseline,
LEAK_SKILL = 0.5  # in a model that closes at least this share of the gap to a perfect score
WEAK_SKILL = 0.05  # a model that closes less of that gap is no better than guessing
MANY_LEVELS = 50  # a categorical column with more distinct values drifts as new ones appear
LISTED = 5  # findings and columns listed by name in a risk
PERCENT_METRICS = frozenset({"roc_auc", "accuracy", "balanced_accuracy", "r2", "mape"})

LEAK_RULE = (
    "one column is flagged as a possible near-leak when shuffling it costs more than three "
    "quarters of the total permutation importance and more than half of the model's lift over "
    "the naive baseline, in a model that closes at least half of the gap between the naive "
    "baseline and a perfect score"
)


@dataclass(frozen=True)
class NearLeak:
    column: str
    share: float  # of the total positive permutation importance
    of_lift: float  # of the model's lift over the naive baseline
    skill: float  # the share of the gap between the naive baseline and a perfect score closed


def summary_section(model: Model) -> Section:
    s = Section("Summary", "summary", numbered=False)
    s.h("What it predicts")
    s.p(_what(model))
    retrained = retrains_sentence(model)
    if retrained:
        s.p(retrained)
    evidence = model.evidence
    if not evidence:
        s.p(
            "This package carries no evaluation evidence (it was written by an earlier release): "
            "retrain it to get a summary of how good it is."
        )
        return s
    diag, rows_text = held_out(evidence)
    baseline = naive_baseline(model.task, diag)
    metric = model.recipe.cv.metric or next(iter(diag["metrics"]))
    s.h("How good it is")
    s.p(rows_text + " the model " + _how_good(model, diag, baseline, metric) + ".")
    leak = near_leak(model.task, evidence)
    s.h("What drives it")
    s.p(_drivers(evidence))
    risks, steps = _risks(model, diag, baseline, metric, leak)
    s.h("Risks")
    s.bullets(risks or ["None found in the data checks, the search or the evaluation."])
    s.h("What to do next")
    s.bullets(steps)
    return s


# --- the numbers ----------------------------------------------------------------------------------


def held_out(evidence: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The diagnostics the summary reads (the test split's, else the out-of-fold validation
    predictions'), and how to say where they come from."""
    test = evidence.get("test")
    if test is not None:
        return test, f"On {test['rows']:,} rows held out from training,"
    validation = evidence["validation"]
    return validation, (
        f"In cross-validation on its {validation['rows']:,} training rows (none was held out),"
    )


def naive_baseline(task: Task, diag: dict[str, Any]) -> dict[str, float | None]:
    """Each metric of the naive baseline on the rows of ``diag``: recorded at training time, or
    (packages written before it was) recomputed from the class counts of a classification."""
    recorded = diag.get("baseline")
    if recorded is not None:
        return dict(recorded)
    from mlwright.evaluate.diagnostics import baseline_metrics

    if task == "regression":
        actual = (diag.get("residuals") or {}).get("actual") or []
        whole = len(actual) == diag["rows"]  # the residual sample is every row up to 2,000
        return baseline_metrics(task, np.asarray(actual, dtype="float64")) if whole else {}
    if not diag.get("per_class"):
        return {}
    supports = [c["support"] for c in diag["per_class"]]
    y = np.repeat(np.arange(len(supports)), supports)
    return baseline_metrics(task, y, len(supports))


def skill(metric: str, value: float | None, baseline: float | None) -> float | None:
    """The share of the gap between the naive baseline and a perfect score (1, or 0 for an error
    metric) that ``value`` closes: 0 is no better than guessing, 1 is perfect."""
    if value is None or baseline is None:
        return None
    perfect = 1.0 if METRICS[metric].greater_is_better else 0.0
    gap = perfect - baseline
    return None if abs(gap) < 1e-12 else (value - baseline) / gap


def near_leak(task: Task, evidence: dict[str, Any]) -> NearLeak | None:
    """The column flagged as a possible near-leak, if one is (:data:`LEAK_RULE`): on the rows
    permutation importance was measured on, its importance is more than three quarters of the
    total of the columns' positive importances and more than half the model's lift over the
    naive baseline, and the model closes at least half the gap between that baseline and a
    perfect score."""
    importance = evidence.get("importance")
    if not importance or not importance.get("columns"):
        return None
    metric = importance["metric"]
    base = naive_baseline(task, held_out(evidence)[0]).get(metric)
    model_skill = skill(metric, importance["baseline"], base)
    if base is None or model_skill is None or model_skill < LEAK_SKILL:
        return None
    lift = abs(importance["baseline"] - base)
    total = sum(c["mean"] for c in importance["columns"] if c["mean"] > 0)
    top = max(importance["columns"], key=lambda c: c["mean"])
    if total <= 0 or lift <= 0:
        return None
    share, of_lift = top["mean"] / total, top["mean"] / lift
    if share > LEAK_SHARE and of_lift > LEAK_LIFT:
        return NearLeak(str(top["column"]), share, of_lift, model_skill)
    return None


# --- the words ------------------------------------------------------------------------------------


def _what(model: Model) -> str:
    target = code(model.schema.target)
    features = [c.name for c in model.schema.features]
    uses = f"{len(features)} column(s): " + ", ".join(code(f) for f in features[:8])
    uses += ", …" if len(features) > 8 else ""
    rows = model.recipe.data.rows
    learned = f"It learned from {rows:,} rows and uses {uses}." if rows else f"It uses {uses}."
    classes = [str(c) for c in model.classes or ()]
    if model.task == "binary" and len(classes) == 2:
        return (
            f"For each row, the probability that {target} is {code(classes[1])} (rather than "
            f"{code(classes[0])}), and the answer it leads to. {learned}"
        )
    if model.task == "multiclass":
        listed = ", ".join(code(c) for c in classes[:8]) + (", …" if len(classes) > 8 else "")
        return (
            f"For each row, which of {len(classes)} values {target} takes ({listed}), with the "
            f"probability of each. {learned}"
        )
    summary = model.recipe.problem.get("target_summary") or {}
    seen = (
        f" (from {_number(summary['min'])} to {_number(summary['max'])} in the training data, "
        f"typically about {_number(summary['median'])})"
        if {"min", "max", "median"} <= set(summary)
        else ""
    )
    return f"For each row, the value of {target}, a number{seen}. {learned}"


def _how_good(
    model: Model, diag: dict[str, Any], baseline: dict[str, float | None], metric: str
) -> str:
    """The chosen metric in words against the naive baseline, then the most familiar one."""
    second = "r2" if model.task == "regression" else "accuracy"
    names = [metric] + ([second] if second != metric and second in diag["metrics"] else [])
    said = []
    for name in names:
        value = diag["metrics"].get(name, {}).get("value")
        if value is not None:
            said.append(_in_words(model, diag, name, value, baseline.get(name)))
    verdict = skill(metric, diag["metrics"].get(metric, {}).get("value"), baseline.get(metric))
    text = "; and it ".join(said) if said else "has no score to show"
    if verdict is not None and verdict < WEAK_SKILL:
        text += (
            ". **That is no better than the naive baseline**: the model has not found a pattern "
            "that beats always giving the same answer"
        )
    return text


def _in_words(
    model: Model, diag: dict[str, Any], name: str, value: float, base: float | None
) -> str:
    classes = [str(c) for c in model.classes or diag.get("classes") or ()]
    majority = _majority(diag, classes)
    target = code(model.schema.target)
    if base is None:
        return f"scores {name} {_number(value)} (no naive baseline was recorded)"
    if name == "roc_auc" and len(classes) == 2:
        return (
            f"ranks a randomly chosen {code(classes[1])} row above a randomly chosen "
            f"{code(classes[0])} row {_pct(value)} of the time, against {_pct(base)} for guessing"
        )
    if name == "roc_auc":
        return (
            f"tells a row of one class from a row of another {_pct(value)} of the time (averaged "
            f"over the classes), against {_pct(base)} for guessing"
        )
    if name == "accuracy":
        return (
            f"gets the answer right for {_pct(value)} of the rows, against {_pct(base)} for "
            f"always answering {majority}"
        )
    if name == "balanced_accuracy":
        return (
            f"recognises {_pct(value)} of each class's rows on average, against {_pct(base)} for "
            f"always answering {majority}"
        )
    if name in ("f1", "f1_macro"):
        what = f"the {code(classes[1])} class" if name == "f1" else "the classes, averaged"
        return (
            f"scores F1 {value:.2f} on {what} (1 is perfect: every row of it found, no false "
            f"alarm), against {base:.2f} for always answering {majority}"
        )
    if name == "average_precision":
        return (
            f"has average precision {value:.2f} for {code(classes[1])} rows (1 is perfect), "
            f"against {base:.2f} — the share of {code(classes[1])} rows — for guessing"
        )
    if name == "r2":
        return (
            f"explains {_pct(value)} of the variation in {target}, against {_pct(base)} for "
            "always predicting the average"
        )
    if name == "mape":
        return (
            f"is off by {_pct(value)} of the true value on average, against {_pct(base)} for "
            "always predicting the average"
        )
    smaller = _relative(value, base)
    if name == "log_loss":
        return (
            f"gives probabilities whose log loss is {smaller} than always giving each class its "
            f"share of the rows ({value:.3f} against {base:.3f}; lower is better)"
        )
    if name == "rmse":
        return (
            f"makes errors {smaller} than always predicting the average (root mean squared "
            f"error {_number(value)} against {_number(base)})"
        )
    if name == "mae":
        return (
            f"is off by {_number(value)} on average, {smaller} than always predicting the "
            f"average ({_number(base)})"
        )
    return f"scores {name} {_number(value)}, against {_number(base)} for the naive baseline"


def _drivers(evidence: dict[str, Any]) -> str:
    importance = evidence.get("importance") or {}
    helpful = [c for c in importance.get("columns") or [] if c["mean"] > 0]
    total = sum(c["mean"] for c in helpful)
    if total <= 0:
        return (
            "No column stands out: shuffling the values of any one of them barely changes the "
            "model's score."
        )
    top = [c for c in helpful[:DRIVERS] if c["mean"] / total >= MINOR_SHARE] or helpful[:1]
    named = [f"{code(c['column'])} ({_pct(c['mean'] / total)})" for c in top]
    lead = "mostly on " if top[0]["mean"] / total > 0.5 else "on "
    text = (
        f"The model's answers depend {lead}{_join(named)}: each share is how much of the score it "
        "loses when that column's values are shuffled, out of the total over all columns."
    )
    rest = len(importance.get("columns") or []) - len(top)
    left = 1.0 - sum(c["mean"] for c in top) / total
    if rest > 0 and left < 2 * MINOR_SHARE:
        text += f" The other {rest} column(s) matter little."
    elif rest > 0:
        text += f" The other {rest} column(s) share the remaining {_pct(left)}."
    return text


def _risks(
    model: Model,
    diag: dict[str, Any],
    baseline: dict[str, float | None],
    metric: str,
    leak: NearLeak | None,
) -> tuple[list[str], list[str]]:
    """What could make the model worse than it looks, and what to do about it."""
    risks: list[str] = []
    steps: list[str] = []
    recipe = model.recipe
    if leak is not None:
        column = code(leak.column)
        risks.append(
            f"**Possible near-leak:** {column}. This one column carries {_pct(leak.share)} of "
            f"the model's measured importance and {_pct(min(leak.of_lift, 1.0))} of its lift "
            f"over the naive baseline, in a model that is {_pct(leak.skill)} of the way from "
            "guessing to perfect. A column recorded after the outcome, or derived from it, "
            "looks exactly like this (the rule is under Evaluation, Feature importance)."
        )
        steps.append(
            f"Confirm that {column} is known at the moment a prediction is made and is not "
            "recorded after, or from, the outcome. If it is not, retrain without it "
            f"({code('--drop-col ' + leak.column)})."
        )
    verdict = skill(metric, diag["metrics"].get(metric, {}).get("value"), baseline.get(metric))
    weak = verdict is not None and verdict < WEAK_SKILL
    if weak:
        steps.append(
            "Do not deploy it as it is: look for columns that carry more information about the "
            "outcome, or for more rows."
        )
    risks += _profile_risks(recipe.problem.get("warnings") or [])
    searched = _search_risk(model)
    if searched:
        risks.append(searched)
        steps.append(
            "Train again with a larger `--time-budget` (or `--max-trials`): a longer search may "
            "find a better model."
        )
    small = _small_data_risk(model, diag, baseline, metric)
    if small:
        risks.append(small)
        steps.append("Collect more labelled rows and train again: the estimate will tighten.")
    drifting = _drift_prone(model, model.evidence or {})
    if drifting:
        risks.append(
            "These columns are likely to change after deployment, and the model has only seen "
            f"their past values: {'; '.join(drifting)}."
        )
        steps.append(
            "Once it serves, watch the drift of those columns (`GET /v1/monitor/drift`, see "
            "Deployment)."
        )
    if not weak:
        steps.append(
            "Before it replaces the model in use, compare the two on live traffic (an A/B test, "
            "see Deployment) and post the real outcomes to `/v1/feedback` so that its live "
            "performance is tracked."
        )
    return risks, steps


def _profile_risks(warnings: list[dict[str, Any]]) -> list[str]:
    serious = [w for w in warnings if w.get("severity") in ("high", "medium")]
    out = [f"The data check found: {plain(w['message'])}." for w in serious[:LISTED]]
    if len(serious) > LISTED:
        out.append(
            f"The data check found {len(serious) - LISTED} more issue(s) (see Problem Definition)."
        )
    return out


def _search_risk(model: Model) -> str | None:
    recipe = model.recipe
    cv, trials = recipe.cv, recipe.trials
    cut = cv.trials_cut + cv.trials_capped
    if cv.note or cut:
        return (
            f"The time budget cut the search short ({cv.trials_cut} of {len(trials)} trial(s) "
            f"stopped by the clock, {cv.trials_capped} with their training capped)."
        )
    limit = recipe.options.get("max_trials")
    if limit is not None and len(trials) >= limit:
        return (
            f"The search stopped at {len(trials)} trial(s), the limit set "
            f"({code(f'--max-trials {limit}')}): a better configuration may exist."
        )
    return None


def _small_data_risk(
    model: Model, diag: dict[str, Any], baseline: dict[str, float | None], metric: str
) -> str | None:
    rows = diag["rows"]
    held = model.evidence is not None and model.evidence.get("test") is not None
    if held and rows >= SMALL_HELD_OUT:
        return None
    scored = diag["metrics"].get(metric, {})
    text = (
        f"The score rests on only {rows:,} held-out rows."
        if held
        else "No rows were held out: the score comes from cross-validation only."
    )
    low, high, base = scored.get("low"), scored.get("high"), baseline.get(metric)
    if low is not None and high is not None:
        text += (
            f" With 95% confidence its {metric} lies between {_score(metric, low)} and "
            f"{_score(metric, high)}"
        )
        if base is not None and low <= base <= high:
            text += (
                f", a range that includes the naive baseline's {_score(metric, base)}: these "
                "rows cannot show that the model beats guessing"
            )
        text += "."
    return text


def _drift_prone(model: Model, evidence: dict[str, Any]) -> list[str]:
    """Feature columns whose values move on by nature, most important first: dates (new rows
    come from after the training period), categories with many distinct values (new ones
    appear) and free text (new words)."""
    order = {
        c["column"]: i
        for i, c in enumerate((evidence.get("importance") or {}).get("columns") or [])
    }
    found = []
    for c in model.schema.features:
        if c.kind == "datetime":
            seen = (
                f" (seen from {_day(c.minimum)} to {_day(c.maximum)})"
                if c.minimum and c.maximum
                else ""
            )
            found.append((c.name, f"{code(c.name)}, a date{seen}"))
        elif c.kind == "categorical" and (c.n_unique > MANY_LEVELS or c.other_count > 0):
            found.append((c.name, f"{code(c.name)}, {c.n_unique:,} distinct values"))
        elif c.kind == "text":
            found.append((c.name, f"{code(c.name)}, free text"))
    found.sort(key=lambda item: order.get(item[0], len(order)))
    listed = [text for _, text in found[:LISTED]]
    if len(found) > LISTED:
        listed.append(f"and {len(found) - LISTED} more")
    return listed


def _day(value: Any) -> str:
    return plain(str(value).removesuffix("T00:00:00"))


def _majority(diag: dict[str, Any], classes: list[str]) -> str:
    per_class = diag.get("per_class") or []
    if not per_class:
        return "the most common class"
    top = max(per_class, key=lambda c: c["support"])
    return f"{code(top['class'])}, the most common class"


def _relative(value: float, base: float) -> str:
    if base == 0:
        return "no smaller"
    change = (base - value) / base
    return f"{_pct(change)} smaller" if change >= 0 else f"{_pct(-change)} larger"


def _pct(value: float) -> str:
    """A share as a whole percentage; one decimal near 0% and 100% (99.6% is not 100%)."""
    near_end = 0 < abs(value) < 0.01 or 0.99 < abs(value) < 1
    return f"{value:.1%}" if near_end else f"{value:.0%}"


def _score(metric: str, value: float) -> str:
    """A metric's value as the summary says it: a percentage where it reads as one."""
    return _pct(value) if metric in PERCENT_METRICS else _number(value)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else plain(value)


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
