"""Sections 4 and 5 of the ML Solution report: Evaluation and Deployment."""

from __future__ import annotations

import json
import shlex
from typing import Any

from mlwright.evaluate import plots
from mlwright.package.model import Model
from mlwright.report.document import Figure, Section, code, plain
from mlwright.report.sections import IMPORTANCE_ROWS, fmt
from mlwright.report.summary import LEAK_RULE, held_out, naive_baseline, near_leak

# (series, what, the tasks it is served for)
SERVER_SERIES = (
    ("mlwright_requests_total", "HTTP requests by route, status, model and version", ""),
    ("mlwright_request_seconds", "request latency histogram by route, model and version", ""),
    ("mlwright_predictions_total", "predictions by predicted label", "binary multiclass"),
    ("mlwright_prediction_value", "histogram of predicted values", "regression"),
    ("mlwright_model_ready", "1 once the model passed its deployment gate", ""),
)


# --- 4. Evaluation --------------------------------------------------------------------------------


def evaluation_section(model: Model) -> Section:
    s = Section("Evaluation", "evaluation")
    evidence = model.evidence
    if not evidence:
        s.p(
            "This package carries no evaluation evidence (it was written by an earlier release); "
            "retrain it to get the full evaluation. Recorded metrics:"
        )
        s.code(json.dumps(model.metrics, indent=2), "json")
        return s
    validation: dict[str, Any] = evidence["validation"]
    test: dict[str, Any] | None = evidence.get("test")
    ensemble = model.recipe.chosen.kind != "single"
    s.p(
        "Validation: out-of-fold predictions of the chosen model"
        + (" (cross-fitted for an ensemble)" if ensemble else "")
        + ". "
        + (
            "Test: the held-out split, predicted by the chosen model fit without it. "
            if test
            else ""
        )
        + f"Intervals: {validation['confidence']:.0%} percentile bootstrap over rows "
        f"({validation['bootstrap_samples']} resamples). Naive baseline: the same constant "
        "answer for every row, the best one for those rows ("
        + ("their mean" if model.task == "regression" else "their class shares")
        + ")."
    )
    base = naive_baseline(model.task, held_out(evidence)[0])
    where_base = "test" if test else "validation"
    rows = []
    for name, v in validation["metrics"].items():
        t = (test or {}).get("metrics", {}).get(name)
        rows.append(
            [
                f"{name} ({'higher' if v['greater_is_better'] else 'lower'} is better)",
                _with_interval(v),
                *([_with_interval(t) if t else "—"] if test else []),
                fmt(base.get(name)),
            ]
        )
    s.table(
        [
            "metric",
            f"validation ({validation['rows']:,} rows)",
            *([f"test ({test['rows']:,} rows)"] if test else []),
            f"naive baseline ({where_base})",
        ],
        rows,
    )
    main, where = (test, "test") if test is not None else (validation, "validation")
    if model.task == "regression":
        _regression(s, main, where)
    else:
        _classification(s, main, where)
    _importance(s, model, evidence)
    curves = evidence.get("learning_curves") or {}
    if curves:
        s.h("Learning curves")
        for i, (label, series) in enumerate(sorted(curves.items())):
            s.figure(
                Figure(
                    f"learning_curve_{i}.png",
                    f"Neural net {label}: per-epoch losses and scores on its first fold",
                    plots.learning_curve_png(series, f"Learning curve, {label}"),
                )
            )
    return s


def _with_interval(v: dict[str, Any]) -> str:
    if v.get("value") is None:
        return "—"
    if v.get("low") is None:
        return fmt(v["value"])
    return f"{v['value']:.4f} [{v['low']:.4f}, {v['high']:.4f}]"


def _classification(s: Section, diag: dict[str, Any], where: str) -> None:
    s.h(f"Per class ({where})")
    s.table(
        ["class", "precision", "recall", "F1", "support"],
        [
            [plain(c["class"]), fmt(c["precision"]), fmt(c["recall"]), fmt(c["f1"]), c["support"]]
            for c in diag["per_class"]
        ],
    )
    if diag.get("threshold") is not None:
        s.p(f"Labels use the tuned threshold {diag['threshold']:.4f} on the positive class.")
    s.figure(
        Figure(
            f"confusion_{where}.png",
            f"Confusion matrix on the {where} rows (counts; colour: share of the true class)",
            plots.confusion_png(diag, f"Confusion matrix ({where})"),
        )
    )
    if diag["curves"]:
        binary = len(diag["classes"]) == 2
        what = "positive class" if binary else "one class against the rest"
        s.figure(
            Figure(
                f"roc_{where}.png",
                f"ROC curve on the {where} rows ({what})",
                plots.roc_png(diag, f"ROC ({where})"),
            )
        )
        s.figure(
            Figure(
                f"pr_{where}.png",
                f"Precision-recall curve on the {where} rows ({what}; dotted: base rate)",
                plots.pr_png(diag, f"Precision-recall ({where})"),
            )
        )
    s.figure(
        Figure(
            f"calibration_{where}.png",
            f"Calibration on the {where} rows: predicted probability of the "
            f"{plain(diag['calibration']['of'])} against how often it happened (equal-count bins)",
            plots.calibration_png(diag, f"Calibration ({where})"),
        )
    )


def _regression(s: Section, diag: dict[str, Any], where: str) -> None:
    res = diag["residuals"]
    quantiles = res["quantiles"]
    quantiles = quantiles.get("quantiles", quantiles)  # nested in packages of earlier releases
    s.h(f"Residuals ({where})")
    s.table(
        ["quantile", *quantiles],
        [["residual", *(fmt(v) for v in quantiles.values())]],
        caption=f"Residual (actual − predicted) quantiles; mean {res['mean']:.4f}, "
        f"standard deviation {res['std']:.4f}",
    )
    s.figure(
        Figure(
            f"residuals_{where}.png",
            f"Predicted against actual, residuals against predicted, and the residuals' "
            f"distribution on the {where} rows",
            plots.residuals_png(diag, f"Residuals ({where})"),
        )
    )


def _importance(s: Section, model: Model, evidence: dict[str, Any]) -> None:
    importance = evidence.get("importance")
    if not importance:
        return
    s.h("Feature importance")
    s.p(
        f"Permutation importance on {importance['on']}: the drop in `{importance['metric']}` "
        f"when a column's values are shuffled ({importance['rows']:,} rows, "
        f"{importance['repeats']} repeat(s); the model's score on them "
        f"{importance['baseline']:.4f}). A value near zero means the model does not rely on the "
        "column."
    )
    leak = near_leak(model.task, evidence)
    found = (
        "no column is flagged."
        if leak is None
        else f"**flagged:** {code(leak.column)} — {leak.share:.0%} of the total importance, "
        f"{min(leak.of_lift, 1.0):.0%} of the lift over the naive baseline, in a model "
        f"{leak.skill:.0%} of the way from the naive baseline to a perfect score. Check that it "
        "is known when a prediction is made and not recorded after, or from, the outcome."
    )
    s.p(f"Near-leak check: {LEAK_RULE}; {found}")
    s.table(
        ["column", "importance", "± std"],
        [
            [
                plain(c["column"]),
                fmt(c["mean"]),
                fmt(c["std"]) if importance["repeats"] > 1 else "—",
            ]
            for c in importance["columns"][:IMPORTANCE_ROWS]
        ],
    )
    if importance.get("not_computed"):
        s.p(
            f"{len(importance['not_computed'])} column(s) were not reached within the time "
            "allowed: " + ", ".join(code(c) for c in importance["not_computed"][:20])
        )
    if importance["columns"]:
        s.figure(
            Figure(
                "importance_permutation.png",
                "Permutation importance (top columns; bars: ± one standard deviation)",
                plots.importance_png(importance, "Permutation importance"),
            )
        )
    shap = evidence.get("shap")
    if shap and shap["columns"]:
        s.p(
            f"SHAP values from the booster's own TreeSHAP on {shap['on']}"
            + (f", {shap['rows']:,} of them" if shap["rows"] < importance["rows"] else "")
            + ": the mean absolute contribution of each column to the model's raw output."
        )
        s.figure(
            Figure(
                "importance_shap.png",
                "Mean |SHAP value| per column (TreeSHAP)",
                plots.importance_png(shap, "SHAP importance"),
            )
        )


def page_json(value: Any, indent: int | None = None) -> str:
    """JSON for a report page: ``<``, ``>`` and ``&`` in strings are written as ``\\u003c``,
    ``\\u003e`` and ``\\u0026`` (the same JSON), so no value reads as markup."""
    text = json.dumps(value, indent=indent, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --- 5. Deployment --------------------------------------------------------------------------------


def deployment_section(model: Model, package_path: str) -> Section:
    s = Section("Deployment", "deployment")
    registry = model.registry or {}
    name = registry.get("name") or model.name
    s.p(
        "Serve the model over HTTP. The server validates every request against the schema, "
        "refuses to go ready until the golden examples reproduce"
        + (" and the latency budget holds" if model.recipe.options.get("latency_budget_ms") else "")
        + ", and records every prediction in its store:"
    )
    shell = shlex.quote(str(name))  # names and paths in commands are shell-quoted
    lines = [f"mlwright serve {shlex.quote(package_path)} --port 8000"]
    if registry.get("version"):
        version = shlex.quote(f"{name}/{registry['version']}")
        lines.append(f"mlwright serve {version} --port 8000")
    lines.append(f"mlwright serve {shlex.quote(f'{name}@champion')} --port 8000   # once promoted")
    s.code("\n".join(lines), "bash")
    golden = model.golden or {}
    inputs, expected = golden.get("inputs") or [], golden.get("expected") or []
    if inputs:
        body = page_json({"records": inputs[:1]})
        quoted = body.replace("'", "'\\''")
        s.p("A request built from the package's first golden example:")
        s.code(
            "curl -s http://127.0.0.1:8000/v1/predict -H 'content-type: application/json' \\\n"
            f"  -d '{quoted}'",
            "bash",
        )
        s.p("What the server must answer for it (checked by the deployment gate):")
        s.code(page_json(expected[:1], indent=2), "json")
    latency = (model.evidence or {}).get("latency") or {}
    budget = model.recipe.options.get("latency_budget_ms")
    facts = []
    if latency.get("p99_ms") is not None:
        facts.append(
            f"measured single-row p99 latency: {latency['p99_ms']:.3f} ms "
            f"({latency['path']}, {latency['calls']} calls)"
        )
    facts.append(
        f"latency budget: {budget:g} ms, enforced by the gate" if budget else "no latency budget"
    )
    facts.append(f"deployment gate: {len(inputs)} golden rows (labels exact, numbers within 1e-6)")
    s.bullets(facts)
    s.h("Monitoring")
    s.p(
        "`GET /metrics` serves Prometheus series; `GET /health` is liveness and `GET /ready` "
        "readiness. Every prediction is written to the serving store (SQLite) with its "
        "`prediction_id`, so outcomes can be joined to it later. `GET /v1/monitor/drift` "
        "compares the served features with the training data, and `GET /v1/monitor/performance` "
        "scores the predictions whose outcomes were posted to `/v1/feedback`."
    )
    s.table(
        ["series", "what"],
        [[name, what] for name, what, tasks in SERVER_SERIES if not tasks or model.task in tasks],
    )
    s.h("The next version")
    s.p(
        f"Train the next version under the same name ({code(f'--name {name}')}): it becomes a "
        "new registry version. Point the champion alias at it, or back, with:"
    )
    s.code(
        f"mlwright models promote {shell} VERSION --alias champion\n"
        f"mlwright models rollback {shell} --alias champion",
        "bash",
    )
    s.p(
        "Or A/B test it against this one first: the server sends a share of the traffic to the "
        "challenger (sticky per `entity_key`), a challenger that fails is answered by the "
        "champion, and outcomes posted to `/v1/feedback` are compared with an always-valid "
        "sequential test that may be read at any time:"
    )
    s.code(
        f"mlwright serve {shlex.quote(f'{name}@champion')} "
        f"--challenger {shlex.quote(f'{name}/VERSION')} --split 0.1\n"
        "curl -s http://127.0.0.1:8000/v1/feedback -H 'content-type: application/json' \\\n"
        '  -d \'{"prediction_id": "<from the predict response>", "label": ...}\'\n'
        "curl -s http://127.0.0.1:8000/v1/experiments/<experiment id>",
        "bash",
    )
    return s
