"""Training on data bigger than one machine: `mlwright train DIR` here (one process, streamed)
and on Ray Train with 1 and 2 workers, on the same files with the same seed.

The files are those of bench/scale.py (20 numeric features and one categorical, 500,000 rows a
file) with the target. Every run searches the same 2 trials on the same seeded sample with no
time budget, so all of them choose the same XGBoost configuration and early-stop it on the
same rows; they differ only in where the final model is boosted. Each run's recipe records its
rows, rounds, seconds and each worker's peak memory (``scale.fit``); the test split (rows of the
sample, kept out of every fit) scores each final model. A last run fits the chosen
configuration on the sample alone (what one machine that cannot hold the files would train).

    python bench/scale_train.py --files 4     # replaces the Training part of scale.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # bench/scale.py's data
from scale import FEATURES, FILE_ROWS, RESULTS, frame  # noqa: E402

MARK = "<!-- training: bench/scale_train.py -->"
SAMPLE = 50_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    args = parser.parse_args()
    mlwright = str(Path(sys.executable).parent / "mlwright")
    runs: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="mlwright-scale-train-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, MLWRIGHT_CACHE_DIR=str(work / "cache"), RAY_TMPDIR=str(work))
        lake = work / "lake"
        for i in range(args.files):
            part = lake / f"part={i:03d}" / "data.parquet"
            part.parent.mkdir(parents=True)
            frame(FILE_ROWS, 100 + i).to_parquet(part, index=False, row_group_size=FILE_ROWS // 4)
        common = ["-t", "y", "--max-trials", "2", "--sample-rows", str(SAMPLE), "--tracker",
                  "none", "-q"]  # fmt: skip
        cases = [
            ("here, one process, 2 threads", []),
            ("Ray Train, 1 worker", ["--backend", "ray", "--train-workers", "1"]),
            ("Ray Train, 2 workers", ["--backend", "ray", "--train-workers", "2"]),
        ]
        for label, extra in cases:
            out = work / f"m{len(runs)}"
            started = time.perf_counter()
            subprocess.run([mlwright, "train", str(lake), *common, "-o", str(out), *extra],
                           env=env, check=True, capture_output=True)  # fmt: skip
            wall = time.perf_counter() - started
            recipe = json.loads((out / "recipe.json").read_text())
            metrics = json.loads((out / "metrics.json").read_text())
            runs.append((label, {"wall": wall, "recipe": recipe, "metrics": metrics}))
            print(label, round(wall, 1), recipe["scale"]["fit"]["seconds"], flush=True)
        sample_only = _sample_only(runs[0][1]["recipe"], lake)
    write(runs, sample_only, args)


def _sample_only(recipe: dict, lake: Path) -> dict[str, Any]:
    """The same search (2 XGBoost trials) on the sample alone, its final model fitted on the
    sample's training rows and scored on the same test split: the model one machine trains
    when it can hold only the sample."""
    import pandas as pd

    import mlwright as mw
    from mlwright.data.files import open_file_set, seeded_positions
    from mlwright.distributed.datafit import sample_fragment

    files = open_file_set(lake)
    positions = seeded_positions(files.rows, SAMPLE, 0)
    parts = [sample_fragment(f, positions, list(files.columns)) for f in files.fragments]
    sample = pd.concat(parts).sort_index().reset_index(drop=True)
    model = mw.train(sample, target="y", max_trials=2, families="xgboost", tracker="none",
                     progress=False, refit_on_test=False)  # fmt: skip
    # the same seed and rows: the same test split as the file runs
    assert model.metrics["test_rows"] == recipe["test_rows"]
    scores = model.metrics["test"]
    same = model.recipe.chosen.params == recipe["chosen"]["params"]
    return {
        "roc_auc": float(scores["roc_auc"]),
        "log_loss": float(scores["log_loss"]),
        "rows": float(model.recipe.final_rows or 0),
        "same_configuration": same,
        "trial": model.recipe.chosen.trial,
    }


def projection(per_thread: float, scan_rate: float, features: int) -> list[str]:
    """Time, memory and cost of the final fit at 100M and 1B rows, from the throughput measured
    here (row-rounds per second per thread) and stated assumptions."""
    node_cpus, node_gib, price, rounds = 16, 64, 0.77, 500
    lines = [
        "## Projection for 100 million and 1 billion rows",
        "",
        "Assumptions, each stated so it can be replaced:",
        "",
        f"- the per-thread boosting throughput measured above, "
        f"**{per_thread:,.0f} row-rounds/s** per worker thread (2 workers, 1 thread each), holds "
        "per core on a cluster; histogram all-reduces (features × 256 bins × 16 bytes per tree "
        "node, a few MB per round) add little on a 10 Gb/s network;",
        f"- the encoder pass reads {scan_rate:,.0f} rows/s per task, as measured here;",
        f"- {rounds} boosting rounds (early stopping chose that order here);",
        f"- {features} features; nodes of {node_cpus} vCPUs and {node_gib} GiB at "
        f"${price:.2f} an hour (a general-purpose on-demand instance; substitute your price);",
        "- one worker per vCPU, each holding about 300 MiB plus 1 byte per value and about 60 "
        "bytes per row of its share (measured: XGBoost's quantised matrix, gradients and "
        "prediction cache), so memory is rarely what limits a node.",
        "",
        "| rows | nodes | workers | memory per worker | encoder pass | boosting | node-hours | "
        "cost |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rows, nodes in ((100_000_000, 4), (100_000_000, 16), (1_000_000_000, 16),
                        (1_000_000_000, 64)):  # fmt: skip
        workers = nodes * node_cpus
        share = rows / workers
        memory = 300 + share * (features + 60) / 2**20
        scan = rows / (scan_rate * workers)
        boost = rows * rounds / (per_thread * workers)
        hours = (scan + boost) / 3600
        lines.append(
            f"| {rows:,} | {nodes} | {workers} | {memory:,.0f} MiB | {scan / 60:,.1f} min | "
            f"{boost / 3600:,.1f} h | {hours * nodes:,.1f} | ${hours * nodes * price:,.0f} |"
        )
    lines += [
        "",
        "The sample's search is the same as for a table of its size and does not grow with the "
        "files. These are projections from one 2-core machine, not measurements of a cluster: "
        "Ray Train's start (about 10 s here) and stragglers among many workers add to them.",
        "",
    ]
    return lines


def write(
    runs: list[tuple[str, dict]], sample_only: dict[str, Any], args: argparse.Namespace
) -> None:
    rows = args.files * FILE_ROWS
    table = [
        "| where the final model was boosted | workers × threads | rows fitted | rounds | "
        "encoder pass s | final fit s | rows × rounds / s | peak MiB per worker | test ROC AUC | "
        "test log loss | whole run s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, run in runs:
        scale, test = run["recipe"]["scale"], run["metrics"]["test"]
        fit = scale["fit"]
        peaks = ", ".join(f"{w['peak_mib']:,.0f}" for w in fit["per_worker"])
        table.append(
            f"| {label} | {fit['workers']} × {fit['threads']} | {fit['rows']:,} | {fit['rounds']} "
            f"| {scale['encoders']['seconds']:.1f} | {fit['seconds']:.1f} | "
            f"{fit['rows'] * fit['rounds'] / fit['seconds']:,.0f} | {peaks} | "
            f"{test['roc_auc']:.5f} | {test['log_loss']:.5f} | {run['wall']:.1f} |"
        )
    encoders = runs[-1][1]["recipe"]["scale"]["encoders"]
    scan_rate = encoders["rows"] / encoders["seconds"] / 2  # per task: two ran at a time
    base = runs[0][1]["recipe"]["scale"]["fit"]
    two = runs[-1][1]["recipe"]["scale"]["fit"]
    ratio = (two["rows"] * two["rounds"] / two["seconds"]) / (
        base["rows"] * base["rounds"] / base["seconds"]
    )
    lines = [
        MARK,
        "",
        "# Training on data bigger than one machine",
        "",
        f"Command: `python bench/scale_train.py --files {args.files}` "
        f"({time.strftime('%Y-%m-%d', time.gmtime())}, a 2-core machine with 24 GiB).",
        "",
        f"{rows:,} rows in {args.files} Parquet files ({FEATURES} numeric features and one "
        "categorical, row groups of 125,000 rows). Every run searched the same 2 trials on the "
        f"same seeded sample of {SAMPLE:,} rows, chose the same XGBoost configuration and "
        "early-stopped it on the same rows; only where the final model was boosted differs. "
        "The test split is the same 10,000 rows of the sample, kept out of every fit. The final "
        "fit's seconds include building each worker's matrix and, on Ray, starting Ray Train.",
        "",
        *table,
        "",
        f"- Boosting throughput, 2 Ray Train workers against one process with 2 threads: "
        f"**{ratio:.2f}×**.",
        f"- The same search on the sample alone, its final model fitted on the sample's "
        f"{sample_only['rows']:,.0f} training rows (what a machine that holds only the sample "
        f"trains; trial {sample_only['trial']}, "
        + (
            "the same configuration"
            if sample_only["same_configuration"]
            else "another configuration than the file runs chose"
        )
        + f"), on the same test rows: ROC AUC {sample_only['roc_auc']:.5f}, log loss "
        f"{sample_only['log_loss']:.5f}.",
        "",
        *projection(
            two["rows"] * two["rounds"] / two["seconds"] / two["workers"],
            scan_rate,
            FEATURES + 1,
        ),
    ]
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    head = text.split(MARK)[0].rstrip() + "\n\n" if text else ""
    RESULTS.write_text(head + "\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
