"""Benchmark: `mlwright profile` on a generated 1,000,000-row × 50-column CSV.

Usage:  python bench/profile_bench.py [--rows 1000000] [--out bench/results/profile.md]

The table has known structure (planted leak, ID, constant, datetime, high-cardinality and
missing columns), so the run also checks that the profile finds them. Wall time and peak RSS are
measured on the `mlwright profile` process; `pandas.read_csv` of the same file, in its own
process, is measured beside it as the floor that any profiler has to pay.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent


def generate(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    signal = np.zeros(rows)
    for i in range(29):
        x = rng.normal(size=rows)
        if i < 5:
            signal += x * (0.5 - 0.1 * i)
        if i % 7 == 0:
            x[rng.random(rows) < 0.05] = np.nan
        cols[f"num_{i:02d}"] = x
    for i in range(8):
        cols[f"int_{i}"] = rng.integers(0, 10 ** (i % 4 + 1), rows)
    for i in range(6):
        cols[f"cat_{i}"] = rng.choice([f"level_{k}" for k in range(3 + 2 * i)], rows)
    cols["zip_code"] = np.char.add("Z", rng.integers(0, 5000, rows).astype(str))
    start = np.datetime64("2015-01-01T00:00:00")
    stamps = start + np.sort(rng.integers(0, 10 * 365 * 86400, rows)).astype("timedelta64[s]")
    cols["event_time"] = np.datetime_as_string(stamps, unit="s")
    cols["row_id"] = rng.permutation(rows) + 1
    cols["region"] = np.full(rows, "EU")
    y = (signal + rng.normal(size=rows) > 0).astype(int)
    cols["refund_issued"] = np.where(y == 1, rng.uniform(5, 50, rows).round(2), 0.0)
    cols["mostly_missing"] = np.where(rng.random(rows) < 0.8, np.nan, rng.normal(size=rows))
    cols["target"] = y
    table = pa.table(cols)
    assert table.num_columns == 50, table.num_columns
    pacsv.write_csv(table, path)


def run_measured(cmd: list[str], stdout: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process, from its own rusage."""
    started = time.perf_counter()
    with stdout.open("w") as out, stdout.with_suffix(".err").open("w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        message = stdout.with_suffix(".err").read_text()
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{message}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "profile.md")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".work")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / f"profile_{args.rows}.csv"
    if not data.exists():
        t = time.perf_counter()
        generate(data, args.rows)
        print(f"generated {data} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    size_mb = data.stat().st_size / 1e6

    read_wall, read_rss = run_measured(
        [sys.executable, "-c", f"import pandas; pandas.read_csv({str(data)!r}, low_memory=False)"],
        args.workdir / "read.out",
    )
    mlwright = Path(sys.executable).with_name("mlwright")
    out_json = args.workdir / "profile.json"
    prof_wall, prof_rss = run_measured(
        [str(mlwright), "profile", str(data), "--target", "target", "--json"], out_json
    )
    result = json.loads(out_json.read_text())
    found = sorted({(w["code"], ",".join(w["columns"])) for w in result["warnings"]})
    expected = {
        ("target_leakage", "refund_issued"),
        ("id_column", "row_id"),
        ("constant_column", "region"),
        ("time_order", "event_time"),
        ("heavy_missing", "mostly_missing"),
        ("high_cardinality", "zip_code"),
    }
    missing = expected - set(found)

    import pandas
    import sklearn

    import mlwright

    lines = [
        "# `mlwright profile` on 1M rows × 50 columns",
        "",
        f"Command: `python bench/profile_bench.py --rows {args.rows}`",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, mlwright {mlwright.__version__}, "
        f"pandas {pandas.__version__}, scikit-learn {sklearn.__version__}.",
        "",
        f"Data: generated CSV, {args.rows:,} rows × 50 columns, {size_mb:,.0f} MB "
        "(29 float, 8 integer, 7 categorical incl. one with 5,000 levels, 1 datetime, "
        "1 row ID, 1 constant, 1 planted leak, 1 mostly missing, binary target).",
        "",
        "| step | wall (s) | peak RSS (MiB) |",
        "|---|---:|---:|",
        f"| `pandas.read_csv` alone (floor) | {read_wall:.1f} | {read_rss:,.0f} |",
        f"| `mlwright profile --json` (whole CLI run) | {prof_wall:.1f} | {prof_rss:,.0f} |",
        "",
        f"Profile / read_csv wall-time ratio: {prof_wall / read_wall:.2f}×. "
        f"Budget from the issue: ≤ 60 s and ≤ 4,096 MiB → "
        f"{'met' if prof_wall <= 60 and prof_rss <= 4096 else 'NOT met'}.",
        "",
        f"Leakage check rows used: {result['leakage']['rows_used']:,} (seeded sample). "
        f"Profile's own elapsed_s: {result['elapsed_s']:.1f}.",
        "",
        "Planted problems found: "
        + ("all " + str(len(expected)) if not missing else f"MISSING {sorted(missing)}")
        + ".",
        "",
        "Warnings reported:",
        "",
        *[f"- `{code}` {cols}" for code, cols in found],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
