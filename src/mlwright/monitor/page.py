"""The monitoring report of a serving store: what `mlwright monitor --html` writes.

One self-contained page (the ML Solution report's renderer) with four sections: a summary per
served version and variant, drift over time, each feature's served distribution against its
training reference (drifting features first), and live performance from feedback; and a fifth,
when the continuous-training loop has decided anything: its decisions on a timeline, over the
champion's live metric, and in a table with the reason of each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwright.evaluate import plots
from mlwright.monitor.counts import PREDICTION
from mlwright.monitor.drift import UNSEEN, sketch_cdf
from mlwright.monitor.overview import Monitored, Overview
from mlwright.monitor.performance import LIVE_METRICS
from mlwright.report.document import Document, Figure, Section, code, plain
from mlwright.report.document import when as when  # `mlwright monitor` prints times so too

MAX_FEATURE_PLOTS = 60  # per served version: drifting features first, then by statistic
MAX_LEVELS = 15
MAX_DECISION_ROWS = 200  # the latest decisions in the table, per model
# the loop's actions, in the order of a rollout: the rows of the decisions timeline
ACTIONS = (
    "trigger",
    "retrain",
    "shadow",
    "experiment",
    "approval",
    "promote",
    "keep",
    "reject",
    "rollback",
    "error",
)
# the markers' colours: good outcomes green, bad ones red, steps on the way blue
ACTION_COLOURS = {"promote": "#2e933c", "keep": "#2e933c", "reject": "#d1495b"}
ACTION_COLOURS |= {"rollback": "#d1495b", "error": "#000000"}


def number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:
            return "—"
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    return str(value)


def label(m: Monitored | dict[str, Any]) -> str:
    if isinstance(m, Monitored):
        model, version, variant = m.model, m.version, m.variant
    else:
        model, version, variant = m["model"], m["version"], m["variant"]
    return f"{model}" + (f"/{version}" if version else "") + f" ({variant})"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")[:60] or "x"


def monitoring_report(result: Overview) -> Document:
    window = (
        f"since {when(result.since)}"
        if result.since is not None
        else (f"the latest {result.last:,} rows" if result.last else "everything recorded")
    )
    sections = [
        _summary(result, window),
        _over_time(result),
        _features(result),
        _performance(result),
    ]
    if result.decisions:
        sections.append(_decisions(result))
    models = sorted(
        {m.model for m in result.monitored}
        | {p["model"] for p in result.performance}
        | {d["model"] for d in result.decisions}
    )
    return Document(
        title=f"Monitoring report: {plain(', '.join(models)) or 'no traffic'}",
        subtitle=f"Serving store {code(result.store)} · window: {window} · "
        f"generated {when(result.generated)}",
        sections=sections,
    )


def _summary(result: Overview, window: str) -> Section:
    s = Section("Summary", "summary")
    if not result.monitored:
        s.p(
            "The store holds no monitored traffic in this window: serve a model with `--store` "
            "(monitoring is on by default) and send it requests."
        )
    rows = []
    for m in result.monitored:
        d = m.drift
        prediction = d["prediction"]
        rows.append(
            [
                plain(label(m)),
                f"{d['rows']:,}",
                f"{when(m.first)} – {when(m.last)}",
                f"{len(d['drifted_features'])} of {len(d['features'])}",
                "**yes**" if d["dataset_drift"] else "no",
                "—" if prediction is None else ("**yes**" if prediction["drifted"] else "no"),
            ]
        )
    s.table(
        [
            "served version (variant)",
            "rows",
            "window",
            "drifting features",
            "dataset drift",
            "prediction drift",
        ],
        rows,
        caption=f"Drift of served traffic against each version's training reference ({window})",
    )
    for m in result.monitored:
        if m.drift["drifted_features"]:
            top = sorted(
                m.drift["drifted_features"],
                key=lambda f: -(m.drift["features"][f].get("statistic") or 0),
            )
            s.p(
                f"{plain(label(m))}: drifting — "
                + ", ".join(code(f) for f in top[:12])
                + (" …" if len(top) > 12 else "")
            )
    settings = result.monitored[0].drift["settings"] if result.monitored else None
    if settings:
        s.h("How drift is decided")
        s.bullets(
            [
                f"windows of up to {settings['small_window']:,} values: Kolmogorov–Smirnov "
                f"(numeric) and chi-square (categorical) tests, drift at p < "
                f"{settings['p_value']}",
                f"larger windows: Wasserstein distance normed by the reference's standard "
                f"deviation ≥ {settings['wasserstein']} (numeric), Jensen–Shannon distance ≥ "
                f"{settings['jensen_shannon']} (categorical)",
                "a column whose missing-value rate rose by more than 0.5 drifts whatever its test",
                f"the dataset drifts when at least {settings['dataset_share']:.0%} of its "
                "features do (Evidently's documented defaults)",
            ]
        )
    return s


def _over_time(result: Overview) -> Section:
    s = Section("Drift over time", "over-time")
    if not result.monitored:
        s.p("No traffic in this window.")
    for m in result.monitored:
        s.h(plain(label(m)))
        points = m.timeline
        if len(points) < 2:
            s.p("One step of traffic so far: see the summary.")
        else:
            threshold = m.drift["settings"]["dataset_share"]
            s.figure(
                Figure(
                    f"timeline_{_slug(label(m))}.png",
                    f"Share of drifting features per step, {plain(label(m))} (grey: rows)",
                    plots.drift_timeline_png(points, threshold, label(m)),
                )
            )
        flagged = [p for p in points if p["drifted_features"]]
        settings = m.drift["settings"]
        s.p(
            f"{len(flagged)} of {len(points)} steps had a drifting feature"
            + (
                f"; the dataset drifted in {sum(p['dataset_drift'] for p in points)}."
                if flagged
                else "."
            )
            + f" In steps of up to {settings['small_window']:,} values a test flags about "
            f"{settings['p_value']:.0%} of undrifted steps per feature by chance."
        )
        s.table(
            ["step start", "rows", "drift share", "dataset drift", "drifting features"],
            [
                [
                    when(p["start"]),
                    f"{p['rows']:,}",
                    f"{p['drift_share']:.0%}",
                    "**yes**" if p["dataset_drift"] else "no",
                    ", ".join(p["drifted_features"][:8])
                    + (" …" if len(p["drifted_features"]) > 8 else ""),
                ]
                for p in flagged[-24:]
            ],
            caption="Steps with a drifting feature (the latest 24)",
        )
    return s


def _features(result: Overview) -> Section:
    s = Section("Features", "features")
    if not result.monitored:
        s.p("No traffic in this window.")
    for m in result.monitored:
        s.h(plain(label(m)))
        features = m.drift["features"]
        order = sorted(
            features,
            key=lambda f: (not features[f]["drifted"], -(features[f].get("statistic") or 0)),
        )
        s.table(
            [
                "feature",
                "method",
                "statistic",
                "p-value",
                "PSI",
                "missing (reference → served)",
                "unknown",
                "out of range",
                "drift",
            ],
            [
                [
                    code(f),
                    features[f].get("method") or "—",
                    number(features[f].get("statistic")),
                    number(features[f].get("p_value")),
                    number(features[f].get("psi")),
                    f"{number(features[f].get('reference_missing_rate'))} → "
                    f"{number(features[f].get('missing_rate'))}",
                    number(features[f].get("unknown_rate")),
                    number(features[f].get("out_of_range_rate")),
                    "**yes**" if features[f]["drifted"] else "no",
                ]
                for f in order
            ],
        )
        entries = [(f, m.reference["columns"][f], features[f]) for f in order]
        prediction = m.drift["prediction"]
        if prediction is not None and PREDICTION in m.counts:
            entries.insert(0, (PREDICTION, m.reference["prediction"], prediction))
        for name, entry, drift in entries[: MAX_FEATURE_PLOTS + 1]:
            s.figure(_distribution(m, name, entry, drift))
        if len(entries) > MAX_FEATURE_PLOTS + 1:
            s.p(f"{len(entries) - MAX_FEATURE_PLOTS - 1} more features are in the table only.")
    return s


def _distribution(m: Monitored, name: str, entry: dict[str, Any], drift: dict[str, Any]) -> Figure:
    counted = m.counts[name]
    what = "predictions" if name == PREDICTION else name
    verdict = "drifts" if drift["drifted"] else "no drift"
    stat = drift.get("statistic")
    title = f"{'predictions' if name == PREDICTION else name}: {verdict}" + (
        f" ({drift['method']} {stat:.3g})" if isinstance(stat, float) else ""
    )
    slug = f"{_slug(label(m))}_{_slug(name)}.png"
    if entry["kind"] == "numeric":
        edges, reference = sketch_cdf(entry)
        bins = np.asarray(counted["counts"], dtype="float64")
        n = bins.sum()
        current = np.cumsum(bins)[:-1] / n if n else np.zeros_like(reference)
        png = plots.cdf_png(edges, reference, current, title, name)
        caption = f"Distribution of {plain(what)}, {plain(label(m))}: training reference vs served"
    else:
        cells = counted["counts"]
        n = sum(cells.values()) or 1
        ref = entry["frequencies"]
        levels = sorted(
            set(ref) | set(cells), key=lambda k: -max(ref.get(k, 0.0), cells.get(k, 0) / n)
        )[:MAX_LEVELS]
        png = plots.shares_png(
            levels, [ref.get(k, 0.0) for k in levels], [cells.get(k, 0) / n for k in levels], title
        )
        caption = f"Levels of {plain(what)}, {plain(label(m))}: training reference vs served" + (
            f" ({UNSEEN}: levels not seen in training)" if UNSEEN in cells else ""
        )
    return Figure(f"feature_{slug}", caption, png)


def _performance(result: Overview) -> Section:
    s = Section("Live performance", "performance")
    if not result.performance:
        s.p(
            "No feedback in this window. Send outcomes to `POST /v1/feedback` with the "
            "`prediction_id` of each answer (a true `label`, a true `value` or a `reward`)."
        )
        return s
    metrics = [k for k in LIVE_METRICS if any(k in p["metrics"] for p in result.performance)]
    s.table(
        ["served version (variant)", "feedback", *metrics, "first", "last"],
        [
            [
                plain(label(p)),
                f"{p['feedback']:,}",
                *(number(p["metrics"].get(k)) for k in metrics),
                when(p["first"]),
                when(p["last"]),
            ]
            for p in result.performance
        ],
        caption="Metrics of the predictions that received feedback, by prediction time",
    )
    for metric in metrics:
        series = {
            label(p): [(t["start"], t[metric]) for t in p["timeline"] if metric in t]
            for p in result.performance
        }
        series = {k: v for k, v in series.items() if v}
        if series and max(len(v) for v in series.values()) > 1:
            s.figure(
                Figure(
                    f"live_{metric}.png",
                    f"Live {metric} per step, by served version",
                    plots.live_metric_png(series, metric, f"live {metric}"),
                )
            )
    return s


def _decisions(result: Overview) -> Section:
    """The continuous-training loop's decisions per model: a timeline (over the champion's live
    metric, when feedback gives one) and a table, each with the reason it was taken."""
    s = Section("Decisions", "decisions")
    s.p(
        "What the continuous-training loop (`mlwright autopilot`) decided, and why: each "
        "decision is also an MLflow run holding its evidence."
    )
    models = sorted({d["model"] for d in result.decisions})
    for model in models:
        taken = [d for d in result.decisions if d["model"] == model]
        if len(models) > 1:
            s.h(plain(model))
        live = _champion_metric(result, model)
        s.figure(
            Figure(
                f"decisions_{_slug(model)}.png",
                f"Decisions of the loop for {plain(model)} by kind"
                + (f" (grey: the champion's live {live[0]})" if live else ""),
                _decisions_png(taken, live, f"decisions: {model}"),
            )
        )
        shown = taken[-MAX_DECISION_ROWS:]
        s.table(
            ["when", "action", "version", "reason", "MLflow run"],
            [
                [
                    when(d["ts"]),
                    f"**{plain(d['action'])}**"
                    if d["action"] in ("promote", "reject", "rollback", "error")
                    else plain(d["action"]),
                    plain(d["version"]) if d["version"] else "—",
                    plain(d["reason"]),
                    code(d["run_id"]) if d["run_id"] else "—",
                ]
                for d in reversed(shown)
            ],
            caption=f"Decisions for {plain(model)}, latest first"
            + (f" (the latest {len(shown)} of {len(taken)})" if len(shown) < len(taken) else ""),
        )
    return s


def _champion_metric(result: Overview, model: str) -> tuple[str, list[tuple[float, float]]] | None:
    """The champion's live metric over the window, every version it served in turn as one
    series: the first of :data:`LIVE_METRICS` its feedback gives."""
    served = [p for p in result.performance if p["model"] == model and p["variant"] == "champion"]
    for metric in LIVE_METRICS:
        points = sorted(
            (float(t["start"]), float(t[metric]))
            for p in served
            for t in p["timeline"]
            if t.get(metric) is not None
        )
        if points:
            return metric, points
    return None


def _decisions_png(
    taken: list[dict[str, Any]], live: tuple[str, list[tuple[float, float]]] | None, title: str
) -> bytes:
    """One row per kind of action, a marker per decision at its time; the champion's live
    metric in grey behind them on its own axis."""
    kinds = [a for a in ACTIONS if any(d["action"] == a for d in taken)]
    kinds += sorted({d["action"] for d in taken} - set(kinds))  # a kind this page predates
    with plots._figure(plots.WIDTH + 1.5, 1.6 + 0.3 * len(kinds)) as fig:
        ax = fig.add_subplot()
        if live is not None:
            metric, points = live
            behind = ax.twinx()
            behind.plot(
                plots._dates([t for t, _ in points]),
                [v for _, v in points],
                color="#a6a6a6",
                marker=".",
            )
            behind.set_ylabel(f"champion's live {metric}", color="#7f7f7f")
            ax.set_zorder(behind.get_zorder() + 1)
            ax.patch.set_visible(False)
        for row, kind in enumerate(kinds):
            stamps = [d["ts"] for d in taken if d["action"] == kind]
            ax.scatter(
                plots._dates(stamps),
                [row] * len(stamps),
                color=ACTION_COLOURS.get(kind, plots.COLOURS[0]),
                marker="D" if kind in ACTION_COLOURS else "o",
                s=36,
                zorder=3,
            )
        ax.set_yticks(range(len(kinds)), labels=[k[:20] for k in kinds])
        ax.set_ylim(len(kinds) - 0.5, -0.5)
        ax.grid(axis="y", color="#eeeeee")
        plots._time_axis(ax)
        ax.set_title(title[:80])
        return plots._png(fig)
