"""The five sections of the ML Solution report, built from a model package's own records:
the recipe (problem, plan, trials, choice), the metrics, the schema, the golden examples and
the evaluation evidence gathered at training time."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from typing import Any

from mlwright.data.tasks import METRICS
from mlwright.evaluate import plots
from mlwright.package.model import Model
from mlwright.package.recipe import ChosenRecord, CvRecord, Recipe, TrialRecord
from mlwright.report.document import Figure, Section, code, plain

LEADERBOARD_ROWS = 15
IMPORTANCE_ROWS = 15

# what each view does with each kind of column (numbers: numeric, integer and boolean columns)
VIEW_TEXT: dict[str, dict[str, str]] = {
    "tree": {
        "number": "numbers as they are (missing values left to the trees)",
        "categorical": "categories as integer codes (split natively by LightGBM, XGBoost and "
        "histogram gradient boosting; as ordered codes by forests)",
        "datetime": "dates as year / month / day / weekday parts",
        "text": "text as TF-IDF",
    },
    "dense": {
        "number": "numbers median-imputed with a missing-value indicator and standardized",
        "categorical": "categories one-hot (rare levels as one `(other)` column, plus a frequency "
        "column for many levels)",
        "datetime": "dates as scaled parts and elapsed time",
        "text": "text as TF-IDF",
    },
    "embed": {
        "number": "numbers as for linear models",
        "categorical": "categories as learned embeddings",
        "datetime": "dates as scaled parts and elapsed time",
        "text": "text as TF-IDF",
    },
}


def view_text(view: str, kinds: Iterable[str]) -> str:
    """What ``view`` does with the kinds of column the model has, and nothing else."""
    present = {"number" if k in ("numeric", "integer", "boolean") else k for k in kinds}
    return ", ".join(text for kind, text in VIEW_TEXT[view].items() if kind in present)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _params(params: dict[str, Any] | None) -> str:
    if not params:
        return "defaults"
    return ", ".join(f"{k}={_short(v)}" for k, v in sorted(params.items()))


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= 60 else text[:57] + "…"


# --- 1. Problem Definition ------------------------------------------------------------------------


def problem_section(model: Model) -> Section:
    recipe, s = model.recipe, Section("Problem Definition", "problem")
    plan, problem, options = recipe.plan, recipe.problem, recipe.options
    target = model.schema.target
    s.p(
        f"Predict {code(target)} — a **{model.task}** task"
        + (f": {plain(problem['task_reason'])}." if problem.get("task_reason") else ".")
    )
    metric = plan.get("metric", "")
    s.p(f"Metric: `{metric}` — {plain(plan.get('metric_reason') or METRICS[metric].why)}.")
    s.h("Constraints")
    constraints = [
        f"time budget: {_seconds(options.get('time_budget'))}",
        f"trials: {options.get('max_trials') or 'as many as the budget allows'}",
        f"single-row latency budget: {_ms(options.get('latency_budget_ms'))}",
        f"model size budget: {_mb(options.get('max_model_mb'))}",
        f"seed: {recipe.seed}",
    ]
    s.bullets(constraints)
    s.h("Data")
    data = recipe.data
    source = data.source
    facts = [
        f"source: {source.get('kind', '?')} {code(source.get('location', '?'))}",
        f"{_count(data.rows)} rows used for training",
        f"{len(model.schema.features)} feature columns: "
        + ", ".join(f"{n} {k}" for k, n in sorted(_kinds(model).items())),
    ]
    if problem.get("n_target_missing"):
        facts.append(f"{problem['n_target_missing']:,} rows without a target were left out")
    s.bullets(facts)
    balance = problem.get("class_balance")
    if balance:
        s.table(
            ["class", "rows", "share"],
            [[plain(c["label"]), f"{c['count']:,}", f"{c['share']:.1%}"] for c in balance],
            caption="Class balance",
        )
    summary = problem.get("target_summary")
    if summary:
        s.table(
            list(summary),
            [[fmt(v) for v in summary.values()]],
            caption=f"Target {code(target)}",
        )
    s.h("What the profile found, and what was done")
    warnings = problem.get("warnings")
    if warnings is None:
        s.p("The profile's findings were not recorded with this model (an earlier release).")
    elif not warnings:
        s.p("The profile found nothing to warn about.")
    else:
        done = decisions_by_column(plan)
        rows = []
        for w in warnings:
            taken = [done[c] for c in w.get("columns", []) if c in done]
            rows.append(
                [
                    w["severity"],
                    w["code"],
                    plain(w["message"]),
                    plain(_evidence(w.get("evidence") or {})),
                    plain("; ".join(taken) if taken else f"suggested: {w['action']}"),
                ]
            )
        s.table(["severity", "finding", "what", "evidence", "what was done"], rows)
    return s


def _kinds(model: Model) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in model.schema.features:
        out[c.kind] = out.get(c.kind, 0) + 1
    return out


def decisions_by_column(plan: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, verb in (("dropped_columns", "dropped"), ("feature_actions", "")):
        for d in plan.get(key, []):
            text = f"{verb}: {d['reason']}" if verb else d["reason"]
            for column in str(d["subject"]).split(", "):
                out[column] = text
    return out


def _evidence(evidence: dict[str, Any]) -> str:
    parts = []
    for k, v in list(evidence.items())[:6]:
        parts.append(f"{k}={_short(round(v, 4) if isinstance(v, float) else v)}")
    return "; ".join(parts) or "—"


def _count(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else "?"


def _seconds(v: Any) -> str:
    return "none" if v is None else f"{v:g} s"


def _ms(v: Any) -> str:
    return "none" if v is None else f"{v:g} ms (p99)"


def _mb(v: Any) -> str:
    return "none" if v is None else f"{v:g} MB"


# --- 2. Architecture ------------------------------------------------------------------------------


def architecture_section(model: Model) -> Section:
    recipe, s = model.recipe, Section("Architecture", "architecture")
    chosen = recipe.chosen
    trials = {t.number: t for t in recipe.trials}
    metric = recipe.cv.metric or ""
    _final_model(s, chosen, trials, metric, recipe.cv)
    _post_processing(s, model, chosen, recipe)
    s.h("The plan and its reasons")
    s.table(["decision", "reason"], [[plain(k), plain(v)] for k, v in _plan_lines(recipe)])
    _search_tables(s, chosen, trials, metric)
    _tradeoff(s, chosen, metric)
    return s


def _spread(cv: CvRecord) -> str:
    """The "± std" of a cross-validated score; nothing when one fold left no spread to show."""
    return "" if cv.std is None else f" ± {fmt(cv.std)}"


def _final_model(
    s: Section,
    chosen: ChosenRecord,
    trials: dict[int, TrialRecord],
    metric: str,
    cv: CvRecord,
) -> None:
    """What the final model is: one trial's hyperparameters, or an ensemble's members."""
    kind = chosen.kind
    if kind == "single":
        t = trials.get(chosen.trial) if chosen.trial is not None else None
        s.p(
            f"The final model is one **{chosen.family}** model (trial "
            f"{chosen.trial}), cross-validated {metric} {fmt(cv.mean)}" + _spread(cv) + "."
        )
        s.table(
            ["hyperparameter", "value"],
            [[k, _short(v)] for k, v in sorted(chosen.refit_params.items())],
            caption=f"Hyperparameters of the refit ({_source(t)} configuration)",
        )
    else:
        refit = chosen.refit_params
        blend = refit.get("blend") or {}
        stacked = blend.get("method") == "stacked"
        members = chosen.members
        weights = blend.get("weights") or []
        if stacked:  # one coefficient per member for binary and regression stackers
            coef = blend.get("coef") or []
            rows_of = coef[0] if coef and isinstance(coef[0], list) else coef
            weights = rows_of if len(rows_of) == len(members) else []
        s.p(
            f"The final model is a **{kind}** ensemble of {len(members)} "
            f"trials, cross-fitted {metric} {fmt(cv.mean)}"
            + _spread(cv)
            + ": "
            + (
                "a stacking layer fitted on the members' out-of-fold predictions combines "
                "them (its coefficients are in `recipe.json`, `chosen.refit_params.blend`)."
                if stacked
                else "greedy ensemble selection (Caruana et al., 2004) averages the members' "
                "predictions with the weights below."
            )
        )
        refit_members = refit.get("members") or []
        rows = []
        for i, number in enumerate(members):
            t = trials.get(number)
            if i < len(refit_members):
                params = refit_members[i]["params"]
            else:
                params = None if t is None else t.params
            weight = fmt(weights[i], 3) if i < len(weights) else "—"
            family, mean = (None, None) if t is None else (t.family, t.mean)
            rows.append([number, family, weight, fmt(mean), _params(params)])
        s.table(
            [
                "trial",
                "family",
                "stacking coefficient" if stacked else "weight",
                f"cv {metric}",
                "hyperparameters of the refit",
            ],
            rows,
        )


def _post_processing(s: Section, model: Model, chosen: ChosenRecord, recipe: Recipe) -> None:
    """A warning when the budget bit, then calibration and the decision threshold."""
    if recipe.cv.note:
        s.p(f"**Warning:** {plain(recipe.cv.note)}.")
    calibration = chosen.calibration or {}
    if calibration.get("applied"):
        s.p(
            f"Probabilities are calibrated by temperature scaling (T = "
            f"{calibration['temperature']:.3f}): cross-fitted log loss "
            f"{calibration['log_loss_before']:.5f} → {calibration['log_loss_after']:.5f}, each "
            f"fold scored with the temperature learned on the other folds."
        )
    elif calibration:
        s.p(
            "Temperature calibration is not applied: cross-fitted (each fold scored with the "
            "temperature learned on the other folds), it did not lower the log loss by more than "
            "its standard error across folds."
        )
    cut = chosen.threshold or {}
    if model.threshold is not None:
        s.p(
            f"Decision threshold on the positive class: {model.threshold:.4f}, tuned out of fold "
            f"to maximise `{recipe.plan.get('threshold_metric')}`"
            + (
                f" (cross-fitted {cut['at_default']:.5f} at 0.5 → {cut['at_threshold']:.5f})."
                if cut
                else "."
            )
        )
    elif cut:
        s.p(
            f"The decision threshold stays at 0.5: a threshold tuned for `{cut['metric']}` "
            f"({cut['threshold']:.4f}) did not beat it on held folds by more than the noise "
            f"across folds ({cut['at_default']:.5f} → {cut['at_threshold']:.5f})."
        )


def _search_tables(
    s: Section, chosen: ChosenRecord, trials: dict[int, TrialRecord], metric: str
) -> None:
    """The leaderboard and the combinations judged by cross-fitting."""
    kind = chosen.kind
    s.h("Leaderboard")
    ranked = sorted(
        (t for t in trials.values() if t.status == "ok" and t.mean is not None),
        key=lambda t: t.mean or 0,
        reverse=METRICS[metric].greater_is_better if metric in METRICS else True,
    )
    total = len(trials)
    s.table(
        ["rank", "trial", "family", "source", f"cv {metric}", "± std", "seconds", "predict ms"],
        [
            [
                i,
                t.number,
                t.family,
                t.source,
                fmt(t.mean),
                fmt(t.std),
                fmt(t.seconds, 1),
                fmt(t.predict_ms, 3),
            ]
            for i, t in enumerate(ranked[:LEADERBOARD_ROWS], 1)
        ],
        caption=f"Best {min(LEADERBOARD_ROWS, len(ranked))} of {total} trials "
        f"({_status_counts(trials.values())})",
    )
    combos = chosen.combinations or []
    if combos:
        s.table(
            ["combination", "members", f"cv {metric}", "note"],
            [
                [
                    c.get("kind"),
                    len(c.get("trials") or []),
                    fmt(c.get("cv")),
                    c.get("skipped")
                    or "; ".join(
                        note
                        for note in (
                            "chosen" if c.get("kind") == kind else "",
                            c.get("limited_by_time", ""),
                        )
                        if note
                    ),
                ]
                for c in combos
            ],
            caption="Combinations judged by cross-fitting",
        )


def _tradeoff(s: Section, chosen: ChosenRecord, metric: str) -> None:
    """Each candidate's score against its single-row predict time."""
    s.h("Accuracy and latency")
    points = _tradeoff_points(chosen)
    if points:
        s.table(
            ["candidate", f"cv {metric}", "single-row predict (ms)", "measured as served"],
            [[p["label"], fmt(p["cv"]), fmt(p["predict_ms"], 3), p["measured"]] for p in points],
        )
        s.figure(
            Figure(
                "tradeoff.png",
                "Candidates: cross-validated score against single-row predict time",
                plots.tradeoff_png(points, metric, "Accuracy / latency trade-off"),
            )
        )


def _plan_lines(recipe: Recipe) -> list[tuple[str, str]]:
    from mlwright.design.plan import SolutionPlan

    try:
        return SolutionPlan.from_dict(recipe.plan).lines()
    except (KeyError, TypeError):
        return []


def _source(trial: TrialRecord | None) -> str:
    return "?" if trial is None or trial.source is None else trial.source


def _status_counts(trials: Iterable[TrialRecord]) -> str:
    counts: dict[str, int] = {}
    for t in trials:
        status = t.status or "?"
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def _tradeoff_points(chosen: ChosenRecord) -> list[dict[str, Any]]:
    measured = {c["label"]: c for c in chosen.constraints_checked}
    points = []
    for i, p in enumerate(chosen.tradeoff or []):
        m = measured.get(p["label"])
        points.append(
            {
                "label": p["label"],
                "cv": p.get("cv"),
                "predict_ms": m["p99_ms"] if m else p.get("predict_ms_estimate"),
                "measured": f"p99 {m['p99_ms']} ms, {m['size_mb']} MB" if m else "—",
                "chosen": (m is not None and m.get("ok")) or (not measured and i == 0),
            }
        )
    return points


# --- 3. Training Pipeline -------------------------------------------------------------------------


def pipeline_section(model: Model, package_path: str) -> Section:
    recipe, s = model.recipe, Section("Training Pipeline", "pipeline")
    data, source, plan = recipe.data, recipe.data.source, recipe.plan
    s.h("Data loading")
    s.bullets(
        [
            f"read from {source.get('kind')} {code(source.get('location'))}"
            + (f" (encoding {source['encoding']})" if source.get("encoding") else ""),
            f"data digest `{data.digest}`: `mlwright reproduce` refuses other data",
            f"the input schema (types, categories, ranges, policies) is `schema.json`; "
            f"{len(model.schema.features)} features enter the model",
            *(plain(d) for d in data.decisions),
        ]
    )
    s.h("Preprocessing per family")
    views = {}
    for component in model.family.components:
        from mlwright.train.models import get_family

        views[component] = get_family(component).view
    kinds = _kinds(model)
    s.table(["family", "features it sees"], [[f, view_text(v, kinds)] for f, v in views.items()])
    s.h("Validation")
    validation = plan.get("validation", {})
    metrics = model.metrics
    test_rows = metrics.get("test_rows") or 0
    if recipe.scale:
        lines = [
            f"{_validation_text(validation)} on the sample: {plain(validation.get('reason', ''))}",
            *_scale_lines(recipe.scale),
        ]
    else:
        lines = [
            f"{_validation_text(validation)}: {plain(validation.get('reason', ''))}",
            f"test split: {test_rows:,} rows held out and scored before the final refit"
            if test_rows
            else "no test split"
            + (f": {plain(plan['test_reason'])}" if plan.get("test_reason") else ""),
            f"the final model was refit on {_count(recipe.final_rows)} rows"
            + (
                " (the test split included)"
                if metrics.get("refit_on_test")
                else " (without the test split)"
                if test_rows
                else ""
            ),
        ]
    s.bullets(lines)
    s.h("Search")
    trials = recipe.trials
    sources: dict[str, int] = {}
    for t in trials:
        sources[_source(t)] = sources.get(_source(t), 0) + 1
    s.bullets(
        [
            f"{len(trials)} trials ({', '.join(f'{n} {k}' for k, n in sorted(sources.items()))}) "
            f"over {', '.join(d['subject'] for d in plan.get('families', []))}",
            "defaults and the portfolio of strong configurations first, then each family's "
            "seeded Optuna TPE study with median pruning"
            if "tuned" in sources
            else "the families' defaults and configurations from the portfolio of strong "
            "configurations only: the search ended before any tuning study began",
            _where_searched(recipe.search),
            f"{recipe.elapsed_s or 0:.1f} s from reading the data to the package",
        ]
    )
    s.h("Reproducibility")
    versions = recipe.library_versions
    s.bullets(
        [
            f"seed {recipe.seed}, {recipe.threads} thread(s)",
            "library versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
        ]
    )
    if recipe.scale:
        s.p(
            "A model trained on a file set is rebuilt by training again on the same files with "
            f"the same options and seed (data digest `{recipe.scale.get('digest')}`); "
            "`mlwright reproduce` rebuilds models trained on one table."
        )
        return s
    s.p("Rebuild the final model from its recipe (no search) and check its predictions:")
    s.code(f"mlwright reproduce {shlex.quote(package_path)}", "bash")
    s.p(
        "The package also carries `report/rebuild.py`, a standalone script that does the same "
        "with mlwright's Python API:"
    )
    s.code(f"python {shlex.quote(package_path + '/report/rebuild.py')}", "bash")
    return s


def _scale_lines(scale: dict[str, Any]) -> list[str]:
    """Where a file set's training ran, and on how many rows."""
    files, sample, held = scale["files"], scale["sample"], scale["held_out"]
    enc, fit = scale["encoders"], scale["fit"]
    where = {"driver": "on the training machine", "ray tasks": "as Ray tasks"}
    fitted = (
        "on the training machine"
        if fit["where"] == "driver"
        else f"with Ray Train ({fit.get('address')}) on {fit['workers']} worker(s)"
    )
    nodes = {w.get("node") for w in fit.get("per_worker", [])}
    peak = max((w.get("peak_mib") or 0 for w in fit.get("per_worker", [])), default=0)
    return [
        f"{files['rows']:,} rows in {files['files']} Parquet file(s), {files['row_groups']} row "
        f"group(s)",
        f"a seeded sample of {sample['rows']:,} rows (seed {sample['seed']}), read "
        f"{where.get(sample['where'], sample['where'])}: profiling, the plan, the leakage "
        "checks, the search and the test split",
        f"test split: {held['test']:,} rows of the sample, kept out of every fit and scored on "
        f"the final model; {held['early_stopping']:,} more kept out for its early stopping "
        "and its post-processing",
        f"the encoders learned from all {enc['rows']:,} training rows "
        f"{where.get(enc['where'], enc['where'])} ({enc['tasks']} row group(s), "
        f"{enc['seconds']:.1f} s)",
        f"the final XGBoost model boosted over {fit['rows']:,} rows {fitted}"
        + (f" on {len(nodes)} node(s)" if fit["where"] != "driver" else "")
        + f", {fit['threads']} thread(s) each: {fit['rounds']} rounds in {fit['seconds']:.1f} s"
        + (f", at most {peak:,.0f} MiB per worker" if peak else "")
        + ("; the time budget stopped it" if fit.get("stopped_by_clock") else ""),
    ]


def _where_searched(search: dict[str, Any]) -> str:
    if search.get("backend") != "ray":
        return "trials ran one at a time on the training machine"
    return (
        f"trials ran as Ray tasks ({search.get('address')}, {search.get('nodes')} node(s)): "
        f"{search.get('workers')} at a time, {search.get('threads')} thread(s) each; the final "
        "refit ran on the training machine"
    )


def _validation_text(v: dict[str, Any]) -> str:
    kind = str(v.get("kind", "?"))
    if kind == "holdout":
        return f"holdout ({v.get('holdout_fraction', 0):.0%} of the training rows)"
    extra = f" by {code(v['group_column'])}" if v.get("group_column") else ""
    extra += f" ordered by {code(v['time_column'])}" if v.get("time_column") else ""
    return f"{kind.replace('_', ' ')}, {v.get('n_splits')} folds{extra}"
