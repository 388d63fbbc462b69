"""Benchmark: how OpenMP's waiting policy and the thread count change one LightGBM fit, on an idle
machine and with one CPU-bound process beside it: what mlwright's thread defaults rest on
(``src/mlwright/train/threads.py``).

Usage:  python bench/threads_bench.py [--repeats 3] [--out bench/results/threads.md]

Each cell runs in a fresh Python process (the OpenMP runtime reads its settings once, when it
loads): LightGBM regression, 300 rounds at learning rate 0.05, on 12,800 rows x 13 columns of
seeded synthetic data (the size of one fold of a 20,000-row table), fitted ``--repeats`` times;
the table gives the fastest and the slowest fit.
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

ROOT = Path(__file__).resolve().parent

CELL = r"""
import json, sys, time
import numpy as np
import lightgbm as lgb
threads, repeats = int(sys.argv[1]), int(sys.argv[2])
r = np.random.default_rng(0)
X = r.normal(size=(12800, 13))
y = X[:, 0] + X[:, 1] * X[:, 2] + r.normal(size=12800)
times = []
for _ in range(repeats):
    t = time.perf_counter()
    lgb.LGBMRegressor(n_estimators=300, learning_rate=0.05, n_jobs=threads, verbose=-1).fit(X, y)
    times.append(time.perf_counter() - t)
print(json.dumps(times))
"""

POLICIES = {
    "GNU OpenMP default (spin 300,000)": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
}


def cell(policy: dict[str, str], threads: int, repeats: int, busy: bool) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(policy)
    other = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        out = subprocess.run(
            [sys.executable, "-c", CELL, str(threads), str(repeats)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        if other is not None:
            other.kill()
            other.wait()
    return [float(t) for t in json.loads(out.stdout)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "threads.md")
    args = parser.parse_args()
    rows = []
    for busy in (False, True):
        for name, policy in POLICIES.items():
            for threads in (2, 1):
                times = cell(policy, threads, args.repeats, busy)
                rows.append(
                    f"| {'one busy process beside' if busy else 'idle'} | {name} | {threads} | "
                    f"{min(times):.2f} | {max(times):.2f} |"
                )
                print(rows[-1], flush=True)
    lines = [
        "# Threads: OpenMP's waiting policy and the thread count, idle and busy",
        "",
        f"Command: `python bench/threads_bench.py --repeats {args.repeats}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d')}",
        "",
        "One LightGBM fit (300 rounds, 12,800 x 13), seconds, fastest / slowest of the repeats.",
        "",
        "| machine | OpenMP setting | threads | fastest s | slowest s |",
        "|---|---|---:|---:|---:|",
        *rows,
        "",
        "Reading: sleeping at once (`PASSIVE`) makes a two-thread fit several times slower on an "
        "idle machine, so mlwright leaves OpenMP's waiting policy alone. With another process "
        "busy, one thread is the fastest whatever the policy: so a run with a time budget counts "
        "the cores other programs keep busy and leaves them alone, and a small search fits each "
        "trial on one thread (`src/mlwright/train/threads.py`).",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
