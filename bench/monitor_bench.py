"""Benchmark: drift over a window of 1,000,000 logged predictions with 50 features.

Usage:  python bench/monitor_bench.py [--rows 1000000] [--features 50] [--hours 24]
        [--raw] [--out bench/results/monitor.md]

Builds a training reference (40 numeric and 10 categorical features, 50,000 training rows), then
writes ``--rows`` served predictions into a fresh serving store through the server's own writer
code (:class:`mlwright.store.StoreWriter` with the monitor's binning: JSON request bodies parsed,
every request stored, every value counted into the reference's bins), 100 rows a request, spread
evenly over ``--hours`` hours; in the last quarter of the window five features drift (three
numeric shifted by half a standard deviation, one numeric column breaks to all-missing, one
categorical gains a new dominant level). Then times, each in a fresh process-free call:

- the drift of the whole window from the store (`GET /v1/monitor/drift`'s computation);
- `mlwright monitor`'s overview (the window's drift plus drift per step, and live performance);
- the HTML monitoring report;
- with ``--raw``, the same drift recomputed by re-reading every logged prediction's inputs from
  the store (what a drift library fed from the prediction log has to do).

The writer's own time is measured too (requests made beforehand, then written), with and without
counting, on a tenth of the rows, and for all of them.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

import mlwright as mw
from mlwright.data.schema import infer_schema
from mlwright.monitor.counts import count_batch, window_drift
from mlwright.monitor.drift import DriftSettings as Settings
from mlwright.monitor.drift import frame_drift
from mlwright.package.reference import build_reference
from mlwright.store import PredictionBatch, StoreWriter, Watch, read_predictions
from mlwright.store.counts import Watched, monitored

ROOT = Path(__file__).resolve().parent
BATCH = 100
LEVELS = [f"level_{i}" for i in range(12)]


def columns(features: int) -> tuple[list[str], list[str]]:
    categorical = max(1, features // 5)
    numeric = features - categorical
    return [f"x{i}" for i in range(numeric)], [f"c{i}" for i in range(categorical)]


def sample(
    rng: np.random.Generator, n: int, numeric: list[str], categorical: list[str], drift: bool
) -> pd.DataFrame:
    scales = np.linspace(1.0, 50.0, len(numeric))
    data = {
        name: rng.normal(10.0 * i, scales[i], n) + (0.5 * scales[i] if drift and i < 3 else 0.0)
        for i, name in enumerate(numeric)
    }
    frame = pd.DataFrame(data)
    if drift:
        frame[numeric[3]] = np.nan  # an upstream column broke
    p = np.linspace(1, 2, len(LEVELS))
    for j, name in enumerate(categorical):
        frame[name] = rng.choice(LEVELS, n, p=p / p.sum())
        if drift and j == 0:
            frame.loc[rng.random(n) < 0.6, name] = "new_level"
    return frame


def ingest(
    store: Path,
    reference_file: Path | None,
    rows: int,
    hours: float,
    numeric: list[str],
    categorical: list[str],
    seed: int,
    start: float,
) -> float:
    """Write ``rows`` predictions as the server's writer would; the seconds the writer took
    (the requests are made first, so their making is not timed)."""
    rng = np.random.default_rng(seed)
    span = hours * 3600.0
    ids = itertools.count()
    names = (*numeric, *categorical)
    chunk = 20_000
    batches = []
    for first in range(0, rows, chunk):
        n = min(chunk, rows - first)
        late = first >= rows * 3 // 4
        frame = sample(rng, n, numeric, categorical, drift=late)
        records = orjson.loads(frame.to_json(orient="records"))
        predictions = rng.normal(0, 1, n)
        for at in range(0, n, BATCH):
            rid = f"r{next(ids)}"
            part = records[at : at + BATCH]
            ts = start + span * (first + at) / rows
            answer = {
                "predictions": [
                    {"prediction_id": f"{rid}:{k}", "prediction": float(predictions[at + k])}
                    for k in range(len(part))
                ]
            }
            batches.append(
                PredictionBatch(
                    rid,
                    ts,
                    "bench",
                    "1",
                    "champion",
                    None,
                    names,
                    len(part),
                    orjson.dumps({"records": part}),
                    orjson.dumps(answer),
                )
            )
        print(f"  made {first + n:,} rows", flush=True, file=sys.stderr)
    began = time.perf_counter()
    writer = StoreWriter(store, count=count_batch)
    if reference_file is not None:
        writer.watch(Watch("champion", "1", str(reference_file)))
    for batch in batches:
        writer.add(batch)
    writer.close()  # returns once every batch is written
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "monitor.md")
    args = parser.parse_args()
    work = ROOT / ".work" / "monitor"
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("*.db*"):
        old.unlink()
    numeric, categorical = columns(args.features)
    rng = np.random.default_rng(0)
    train = sample(rng, 50_000, numeric, categorical, drift=False)
    train["y"] = rng.normal(size=len(train))
    schema = infer_schema(train, target="y")
    reference = build_reference(
        train.drop(columns="y"), schema, "regression", rng.normal(size=len(train)), None
    )
    reference_file = work / "reference.json"
    reference_file.write_bytes(orjson.dumps(reference))
    start = float(int(time.time() // 3600) * 3600 - args.hours * 3600)

    sample_rows = max(args.rows // 10, BATCH)
    print("ingesting a tenth without counting…", file=sys.stderr)
    plain = ingest(
        work / "plain.db", None, sample_rows, args.hours / 10, numeric, categorical, 1, start
    )
    print("ingesting a tenth with counting…", file=sys.stderr)
    counted = ingest(
        work / "counted.db",
        reference_file,
        sample_rows,
        args.hours / 10,
        numeric,
        categorical,
        1,
        start,
    )
    print(f"ingesting {args.rows:,} rows…", file=sys.stderr)
    store = work / "serve.db"
    full = ingest(store, reference_file, args.rows, args.hours, numeric, categorical, 2, start)
    size_mb = store.stat().st_size / 1e6

    digest = Watched.load(reference_file).digest
    began = time.perf_counter()
    drift = window_drift(store, reference, digest)
    drift_s = time.perf_counter() - began
    assert drift["rows"] == args.rows, drift["rows"]
    began = time.perf_counter()
    recent = window_drift(store, reference, digest, since=start + 0.75 * args.hours * 3600)
    recent_s = time.perf_counter() - began

    from mlwright.monitor.overview import overview
    from mlwright.monitor.page import monitoring_report
    from mlwright.report.document import write

    began = time.perf_counter()
    result = overview(store)
    overview_s = time.perf_counter() - began
    began = time.perf_counter()
    page = work / "monitor.html"
    write(monitoring_report(result), page)
    html_s = time.perf_counter() - began

    raw_s = None
    raw_drift = None
    if args.raw:
        began = time.perf_counter()
        inputs = [p["inputs"] for p in read_predictions(store)]
        frame = pd.DataFrame.from_records(inputs)
        del inputs
        raw_drift = frame_drift(reference, frame, Settings())
        raw_s = time.perf_counter() - began
    assert len(monitored(store)) == 1
    with sqlite3.connect(store) as conn:
        count_rows = conn.execute("SELECT COUNT(*) FROM drift_counts").fetchone()[0]

    planted = {numeric[0], numeric[1], numeric[2], numeric[3], categorical[0]}
    found = set(drift["drifted_features"])
    lines = [
        "# Monitoring: drift over 1,000,000 logged predictions",
        "",
        f"Command: `python bench/monitor_bench.py --rows {args.rows} --features {args.features} "
        f"--hours {args.hours:g}{' --raw' if args.raw else ''}`",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, mlwright {mw.__version__}. {args.rows:,} predictions of "
        f"{len(numeric)} numeric and {len(categorical)} categorical features, {BATCH} rows a "
        f"request, spread over {args.hours:g} hours; written through the serving store's writer "
        f"(store: {size_mb:,.0f} MB, {count_rows:,} rows of drift counts). Drift planted in the "
        f"last quarter: {', '.join(sorted(planted))}.",
        "",
        "| step | seconds |",
        "|---|---:|",
        f"| drift of the whole window (`/v1/monitor/drift`) | {drift_s:.2f} |",
        f"| drift of the last quarter ({recent['rows']:,} rows) | {recent_s:.2f} |",
        f"| `mlwright monitor` overview (window + {len(result.monitored[0].timeline)} steps + "
        f"live performance) | {overview_s:.2f} |",
        f"| HTML monitoring report | {html_s:.2f} |",
    ]
    if raw_s is not None:
        lines.append(f"| the same drift re-reading every logged row's inputs | {raw_s:.2f} |")
    lines += [
        "",
        f"Target: drift over 1,000,000 predictions × 50 features in ≤ 30 s: "
        f"{'met' if drift_s <= 30 else 'not met'} ({drift_s:.2f} s)"
        + (f"; {raw_s / drift_s:,.0f}× faster than re-reading the rows." if raw_s else "."),
        "",
        f"Found drifting over the whole window: {', '.join(sorted(found)) or 'none'} "
        f"(planted: {', '.join(sorted(planted))}; dataset drift: {drift['dataset_drift']}). "
        f"Over the last quarter alone: {', '.join(sorted(recent['drifted_features']))} "
        f"(dataset drift: {recent['dataset_drift']}).",
    ]
    if raw_drift is not None:
        same = set(raw_drift["drifted_features"]) == found
        lines.append(
            f"Re-reading the rows finds: {', '.join(sorted(raw_drift['drifted_features']))} "
            f"({'the same' if same else 'different'})."
        )
    lines += [
        "",
        f"The store's writer took {plain:.1f} s to write {sample_rows:,} predictions without "
        f"counting them and {counted:.1f} s with ({sample_rows / plain:,.0f} vs "
        f"{sample_rows / counted:,.0f} rows/s), and {full:.1f} s for all {args.rows:,} "
        f"({args.rows / full:,.0f} rows/s). The writer is a process of its own (one per server "
        "worker): this is not time on the request path (see serving.md for the server with "
        "monitoring on and off).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
