"""Monitoring from the serving store alone: drift per served version and variant, and live
performance, over a window; and the Prometheus gauges the server exposes from them.

The store keeps every monitoring reference it counted against (``drift_references``) beside the
counts, so `mlwright monitor` needs no package: any version that was ever served can be read back,
on any machine that has the store file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwright.errors import ConfigError
from mlwright.package.model import Model
from mlwright.serve.drift import Settings
from mlwright.serve.drift_counts import (
    BUCKET_SECONDS,
    Watched,
    drift_of,
    monitored,
    stored_reference,
    timeline,
    total,
    window_buckets,
)
from mlwright.serve.performance import live_performance


@dataclass
class Monitored:
    """One served version of one variant over the window: its reference, its counts (for the
    plots) and its drift, per feature and overall, plus drift per step of the window."""

    model: str
    version: str | None
    variant: str
    digest: str
    reference: dict[str, Any] = field(repr=False)
    counts: dict[str, dict[str, Any]] = field(repr=False)
    drift: dict[str, Any]
    first: int | None
    last: int | None
    timeline: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "variant": self.variant,
            "reference": self.digest,
            "first": self.first,
            "last": self.last,
            **self.drift,
            "timeline": self.timeline,
        }


@dataclass
class Overview:
    store: str
    since: float | None
    last: int | None
    generated: float
    monitored: list[Monitored]
    performance: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "since": self.since,
            "last": self.last,
            "generated": self.generated,
            "monitored": [m.to_dict() for m in self.monitored],
            "performance": self.performance,
        }


def step_for(span: float) -> int:
    """A timeline step giving about 24 points over ``span`` seconds, in whole minutes."""
    for step in (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400):
        if span / step <= 36:
            return step
    return 7 * 86400


def overview(
    store: Path,
    *,
    model: str | None = None,
    since: float | None = None,
    last: int | None = None,
    settings: Settings | None = None,
) -> Overview:
    """Drift and live performance of everything ``store`` has served (of ``model`` only, if
    given), since ``since`` or over each version's latest ``last`` rows."""
    s = settings or Settings()
    found = monitored(store, model)
    if model is not None and not found:
        known = sorted({m["model"] for m in monitored(store)})
        raise ConfigError(
            f"the serving store {store} has no monitored traffic of model {model!r}",
            fix=f"models it has: {', '.join(known)}" if known else "serve the model with --store",
        )
    out = []
    for entry in found:
        reference = stored_reference(store, entry["digest"])
        buckets = window_buckets(store, entry["digest"], entry["variant"], since=since, last=last)
        if not buckets:
            continue
        first, end = min(buckets), max(buckets) + BUCKET_SECONDS
        counts = total(buckets.values())
        out.append(
            Monitored(
                model=entry["model"],
                version=entry["version"],
                variant=entry["variant"],
                digest=entry["digest"],
                reference=reference,
                counts=counts,
                drift=drift_of(counts, reference, s),
                first=first,
                last=end,
                timeline=timeline(buckets, reference, step_for(end - first), s),
            )
        )
    span = [m.first for m in out if m.first is not None]
    ends = [m.last for m in out if m.last is not None]
    step = step_for(max(ends) - min(span)) if span else 3600
    performance = live_performance(store, model=model, since=since, step_seconds=step)
    return Overview(str(store), since, last, time.time(), out, performance)


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """``30m``, ``6h``, ``2d``, ``1w`` ago, or an ISO date/time (UTC unless it says), as epoch
    seconds."""
    if text is None or not text.strip():
        return None
    now = time.time() if now is None else now
    value = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    if value[-1:].lower() in units and value[:-1].replace(".", "", 1).isdigit():
        return now - float(value[:-1]) * units[value[-1].lower()]
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise ConfigError(
            f"--since {text!r} is neither a duration nor a date",
            fix="give e.g. 30m, 6h, 2d or 2026-11-01T12:00",
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return float(stamp.timestamp())


# --- Prometheus gauges ----------------------------------------------------------------------------


class MonitorGauges:
    """The drift and live-performance gauges of ``/metrics``: computed from the store when
    scraped (at most every ``cache_seconds``), over the last ``minutes``, for each variant's
    version that serves now."""

    def __init__(
        self,
        store: Path,
        serving: Callable[[], list[tuple[str, str, str | None, Model]]],
        *,
        minutes: float = 60.0,
        cache_seconds: float = 15.0,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        self.serving = serving  # [(variant, model name, version, model)]
        self.minutes = minutes
        self.cache_seconds = cache_seconds
        self.settings = settings or Settings()
        self._lock = threading.Lock()
        self._at = -float("inf")
        self._families: list[Any] = []

    @staticmethod
    def _reference(model: Model) -> tuple[dict[str, Any], str] | None:
        if model.path is None or not (model.path / "reference.json").is_file():
            return None
        watched = Watched.cached(str(model.path / "reference.json"))
        return watched.reference, watched.digest

    def refresh(self) -> None:
        """Recompute the gauges when the cached ones are older than ``cache_seconds``."""
        with self._lock:
            if time.monotonic() - self._at < self.cache_seconds:
                return
            self._families = list(self._compute()) if self.store.is_file() else []
            self._at = time.monotonic()

    def _compute(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        since = time.time() - 60 * self.minutes
        base = ("model", "version", "variant")
        per_feature = (*base, "feature")
        g = {
            "rows": GaugeMetricFamily(
                "mlwright_monitor_window_rows", "Rows in the drift window", labels=base
            ),
            "dataset": GaugeMetricFamily(
                "mlwright_dataset_drift", "1 when the dataset drifts", labels=base
            ),
            "share": GaugeMetricFamily(
                "mlwright_drift_share", "Share of features that drift", labels=base
            ),
            "drifted": GaugeMetricFamily(
                "mlwright_feature_drifted", "1 when the feature drifts", labels=per_feature
            ),
            "statistic": GaugeMetricFamily(
                "mlwright_feature_drift_statistic",
                "The feature's drift statistic (method label: ks, wasserstein_normed, "
                "chi_square, jensen_shannon)",
                labels=(*per_feature, "method"),
            ),
            "p_value": GaugeMetricFamily(
                "mlwright_feature_drift_p_value", "p-value of the drift test", labels=per_feature
            ),
            "psi": GaugeMetricFamily(
                "mlwright_feature_psi", "Population stability index", labels=per_feature
            ),
            "missing": GaugeMetricFamily(
                "mlwright_feature_missing_rate", "Share of missing values", labels=per_feature
            ),
            "unknown": GaugeMetricFamily(
                "mlwright_feature_unknown_rate", "Share of unseen categories", labels=per_feature
            ),
            "range": GaugeMetricFamily(
                "mlwright_feature_out_of_range_rate",
                "Share of values outside the training range",
                labels=per_feature,
            ),
            "prediction": GaugeMetricFamily(
                "mlwright_prediction_drifted", "1 when the predictions drift", labels=base
            ),
            "prediction_statistic": GaugeMetricFamily(
                "mlwright_prediction_drift_statistic",
                "The predictions' drift statistic",
                labels=(*base, "method"),
            ),
            "feedback": GaugeMetricFamily(
                "mlwright_live_feedback", "Predictions with feedback in the window", labels=base
            ),
            "live": GaugeMetricFamily(
                "mlwright_live_metric",
                "Live performance from feedback (metric label: accuracy, log_loss, rmse, mae, "
                "reward)",
                labels=(*base, "metric"),
            ),
        }
        from mlwright.serve.drift_counts import window_drift

        for variant, name, version, model in self.serving():
            found = self._reference(model)
            if found is None:
                continue
            reference, digest = found
            labels = [name, version or "", variant]
            result = window_drift(
                self.store,
                reference,
                digest,
                variant=variant,
                since=since,
                settings=self.settings,
            )
            g["rows"].add_metric(labels, result["rows"])
            if not result["rows"]:
                continue
            g["dataset"].add_metric(labels, float(result["dataset_drift"]))
            g["share"].add_metric(labels, result["drift_share"])
            for feature, d in result["features"].items():
                at = [*labels, feature]
                g["drifted"].add_metric(at, float(d["drifted"]))
                _add(g["statistic"], [*at, str(d.get("method"))], d.get("statistic"))
                _add(g["p_value"], at, d.get("p_value"))
                _add(g["psi"], at, d.get("psi"))
                _add(g["missing"], at, d.get("missing_rate"))
                _add(g["unknown"], at, d.get("unknown_rate"))
                _add(g["range"], at, d.get("out_of_range_rate"))
            prediction = result["prediction"]
            if prediction is not None:
                g["prediction"].add_metric(labels, float(prediction["drifted"]))
                _add(
                    g["prediction_statistic"],
                    [*labels, str(prediction.get("method"))],
                    prediction.get("statistic"),
                )
        serving = {(name, version or "", variant) for variant, name, version, _ in self.serving()}
        for perf in live_performance(self.store, since=since, step_seconds=86400):
            labels = [perf["model"], perf["version"] or "", perf["variant"]]
            if tuple(labels) not in serving:
                continue
            g["feedback"].add_metric(labels, perf["feedback"])
            for metric, value in perf["metrics"].items():
                g["live"].add_metric([*labels, metric], value)
        yield from g.values()

    def collect(self) -> Iterator[Any]:
        """For a prometheus_client registry."""
        yield from self._families


def _add(family: Any, labels: list[str], value: Any) -> None:
    if isinstance(value, (int, float)) and value == value and abs(value) != float("inf"):
        family.add_metric(labels, float(value))
