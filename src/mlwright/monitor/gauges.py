"""The Prometheus gauges of a server's ``/metrics`` that monitoring computes from the store:
drift and live performance of each variant's version that serves now, over a recent window."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlwright.monitor.counts import window_drift
from mlwright.monitor.performance import live_performance
from mlwright.monitor.settings import DriftSettings
from mlwright.package.model import Model
from mlwright.store.counts import Watched


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
        settings: DriftSettings | None = None,
    ) -> None:
        self.store = store
        self.serving = serving  # [(variant, model name, version, model)]
        self.minutes = minutes
        self.cache_seconds = cache_seconds
        self.settings = settings or DriftSettings()
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
