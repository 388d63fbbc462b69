"""Monitoring from the serving store alone: drift per served version and variant, live
performance, and what the continuous-training loop decided, over a window: what `mlwright
monitor` prints and its report shows.

The store keeps every monitoring reference it counted against (``drift_references``) beside the
counts, so `mlwright monitor` needs no package: any version that was ever served can be read back,
on any machine that has the store file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwright.errors import ConfigError
from mlwright.monitor.counts import drift_of, timeline, total, window_buckets
from mlwright.monitor.performance import live_performance
from mlwright.monitor.settings import DriftSettings
from mlwright.store.autopilot import decisions as loop_decisions
from mlwright.store.counts import BUCKET_SECONDS, monitored, stored_reference


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
    # the continuous-training loop's decisions, oldest first (none in a store it never wrote)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "since": self.since,
            "last": self.last,
            "generated": self.generated,
            "monitored": [m.to_dict() for m in self.monitored],
            "performance": self.performance,
            "decisions": self.decisions,
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
    settings: DriftSettings | None = None,
) -> Overview:
    """Drift and live performance of everything ``store`` has served (of ``model`` only, if
    given), since ``since`` or over each version's latest ``last`` rows, and the decisions of
    the continuous-training loop since ``since`` (all of them in a window by rows)."""
    s = settings or DriftSettings()
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
    decided = loop_decisions(store, model=model, since=since)
    return Overview(str(store), since, last, time.time(), out, performance, decided)


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
