"""The monitoring report of a serving store: what `mlwright monitor --html` writes.

One self-contained page (the ML Solution report's renderer) with four sections: a summary per
served version and variant, drift over time, each feature's served distribution against its
training reference (drifting features first), and live performance from feedback.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from mlwright.evaluate import plots
from mlwright.monitor.counts import PREDICTION
from mlwright.monitor.drift import UNSEEN, sketch_cdf
from mlwright.monitor.overview import Monitored, Overview
from mlwright.monitor.performance import LIVE_METRICS
from mlwright.report.document import Document, Figure, Section, code, plain

MAX_FEATURE_PLOTS = 60  # per served version: drifting features first, then by statistic
MAX_LEVELS = 15


def when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


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
    models = sorted({m.model for m in result.monitored} | {p["model"] for p in result.performance})
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
