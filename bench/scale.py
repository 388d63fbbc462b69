"""Scoring data bigger than memory: rows/s and peak memory of `mlwright predict` on a directory
of Parquet files, here and on Ray, against reading one table whole.

A LightGBM model on 20 numeric features and one categorical; the data is written as files of
500,000 rows (about 80 MB of values each in memory, 45 MB on disk). Each measure is one
`mlwright predict` process (its peak resident memory is the child's ``ru_maxrss``); on Ray,
the driver starts a local runtime and the scoring actors run in their own processes, whose peak
memory is read from their ``/proc`` status while they run.

    python bench/scale.py              # writes bench/results/scale.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "scale.md"
FEATURES = 20
FILE_ROWS = 500_000


def frame(n: int, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    data = {f"x{i}": r.normal(size=n) for i in range(FEATURES)}
    data["segment"] = r.choice(["a", "b", "c", "d"], size=n)
    out = pd.DataFrame(data)
    logit = out["x0"] - 0.5 * out["x1"] + 0.3 * out["x2"] * out["x3"] + (out["segment"] == "a")
    out["y"] = np.where(r.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return out


def lake(root: Path, files: int) -> Path:
    for i in range(files):
        part = root / f"part={i:03d}" / "data.parquet"
        part.parent.mkdir(parents=True, exist_ok=True)
        frame(FILE_ROWS, 100 + i).drop(columns="y").to_parquet(part, index=False)
    return root


def run(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(seconds, the process's peak RSS in MiB, the largest Ray worker's peak RSS in MiB)."""
    workers: dict[int, float] = {}
    stop = threading.Event()

    def watch() -> None:  # Ray's workers are not this process's children: read /proc
        while not stop.is_set():
            for status in Path("/proc").glob("[0-9]*/status"):
                try:
                    text = status.read_text()
                except OSError:
                    continue
                if "ray::" in text.split("\n", 1)[0] or "Name:\tray::" in text:
                    for line in text.splitlines():
                        if line.startswith("VmHWM:"):
                            pid = int(status.parent.name)
                            workers[pid] = max(workers.get(pid, 0.0), int(line.split()[1]) / 1024)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # a fresh wrapper per command: RUSAGE_CHILDREN is the high-water mark of its one child
    wrapper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *command], env=env, check=True, capture_output=True
    )
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    peak = int(done.stdout.decode().split()[-1])
    return seconds, peak / 1024, max(workers.values(), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    mlwright = str(Path(sys.executable).parent / "mlwright")
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlwright-scale-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, MLWRIGHT_CACHE_DIR=str(work / "cache"), RAY_TMPDIR=str(work))
        frame(50_000, 0).to_parquet(work / "train.parquet", index=False)
        subprocess.run(
            [mlwright, "train", str(work / "train.parquet"), "-t", "y", "--max-trials", "2",
             "--family", "lightgbm", "-o", str(work / "model"), "--tracker", "none", "-q"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        model = str(work / "model")
        small, large = lake(work / "small", 2), lake(work / "large", args.files)
        frame(FILE_ROWS * 2, 7).drop(columns="y").to_parquet(work / "one.parquet", index=False)
        ray = ["--backend", "ray", "--concurrent-files"]
        cases = [
            (
                "one table read whole (`predict one.parquet`)",
                [work / "one.parquet"],
                2,
                "x.parquet",
            ),
            ("streamed, local", [small], 2, "out-small"),
            ("streamed, local", [large], args.files, "out-large"),
            ("streamed, Ray, 1 worker", [large, *ray, "1"], args.files, "r1"),
            ("streamed, Ray, 2 workers", [large, *ray, "2"], args.files, "r2"),
        ]
        for label, extra, files, out in cases:
            n = files * FILE_ROWS
            command = [mlwright, "predict", model, str(extra[0]), "-o", str(work / out)]
            command += [str(e) for e in extra[1:]]
            seconds, peak, worker = run(command, env)
            rows.append(
                f"| {label} | {n:,} | {seconds:.1f} | {n / seconds:,.0f} | {peak:,.0f} | "
                + (f"{worker:,.0f} |" if worker else "— |")
            )
            print(rows[-1], flush=True)
    write(rows, args)


def write(rows: list[str], args: argparse.Namespace) -> None:
    lines = [
        "# Scoring data bigger than memory",
        "",
        f"Command: `python bench/scale.py --files {args.files}` "
        f"({time.strftime('%Y-%m-%d', time.gmtime())}, a 2-core machine with 24 GiB).",
        "",
        f"A LightGBM model (2 trials) on {FEATURES} numeric features and one categorical; "
        f"Parquet files of {FILE_ROWS:,} rows each. Each row is one `mlwright predict` process; "
        "the wall time includes starting it and loading the model (and, on Ray, starting a "
        "local runtime). Peak memory: the process's resident high-water mark; on Ray, the "
        "largest scoring actor's too.",
        "",
        "| how | rows | seconds | rows/s | peak MiB (process) | peak MiB (largest Ray worker) |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Streaming holds one batch (65,536 rows) and the model at a time, so its peak memory does "
        "not grow with the data; reading one table whole holds all of it. On Ray each actor "
        "scores with one thread where the local process uses both cores, and the wall time "
        "includes starting a Ray runtime: on one 2-core machine Ray is slower; it pays where "
        "the cluster has more cores than one machine.",
        "",
    ]
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    mark = "<!-- training: bench/scale_train.py -->"  # what bench/scale_train.py wrote stays
    tail = "\n" + mark + text.split(mark, 1)[1] if mark in text else ""
    RESULTS.write_text("\n".join(lines) + tail, encoding="utf-8")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
