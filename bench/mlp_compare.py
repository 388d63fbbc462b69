"""Benchmark: mlwright's MLP family against RealMLP and TabM (pytabkit) at RealMLP's time, on the
catalogue's tuning half, to decide which neural network mlwright's search should carry.

Usage:
    python bench/mlp_compare.py [--seeds 0] [--datasets ...] [--report]

Per (dataset, seed): pytabkit's RealMLP-TD and TabM-D fit with their tuned defaults (neither
takes a time budget; the cell records the fit's seconds); then mlwright, restricted to its MLP
family (``families=["mlp"]``, untracked like the others), runs with a time budget equal to
RealMLP's fit time on that split (at least MIN_BUDGET s), so mlwright's whole run — profiling,
search, refit, package — takes as long as RealMLP's single fit. LightGBM's defaults are the
reference row. Splits, scoring and the normalization (a constant predictor 0, the best of the
split 1) are ``bench/compare.py``'s; the cells go to ``bench/results/compare-mlp/`` and the
page to ``bench/results/mlp.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from collections import defaultdict
from typing import Any

import numpy as np

from catalogue import BY_NAME, select
from compare import (
    ROOT,
    TIMEOUT_SLACK,
    cell_name,
    constant_score,
    is_current,
    prepare_split,
    run_cell,
    setup,
)

CELLS = ROOT / "results" / "compare-mlp"
OUT = ROOT / "results" / "mlp.md"
PEERS = ("realmlp", "tabm")
MIN_BUDGET = 20.0  # mlwright's run includes profiling, the refit and the package
SYSTEMS = ("mlwright_mlp", *PEERS, "lightgbm")


def run(datasets: list[str], seeds: list[int]) -> None:
    setup("pytabkit")
    CELLS.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for dataset in datasets:
            for system in (*PEERS, "lightgbm", "mlwright_mlp"):
                budget = 0.0
                if system == "mlwright_mlp":
                    realmlp = _cell("realmlp", dataset, 0.0, seed)
                    fit_s = realmlp.get("fit_s") if realmlp else None
                    budget = float(max(MIN_BUDGET, math.ceil(fit_s or MIN_BUDGET)))
                path = CELLS / f"{cell_name(system, dataset, budget, seed)}.json"
                if path.exists():
                    cell = json.loads(path.read_text())
                    if is_current(cell) and cell["status"] == "ok":
                        continue
                result = run_cell(system, dataset, budget, seed)
                path.write_text(json.dumps(result, indent=1))
                shown = f"{result.get('score', float('nan')):.4f}"
                print(
                    f"{path.stem}: {result['status']} score {shown} wall {result['wall_s']:.1f} s",
                    flush=True,
                )


def _cell(system: str, dataset: str, budget: float, seed: int) -> dict[str, Any] | None:
    path = CELLS / f"{cell_name(system, dataset, budget, seed)}.json"
    if not path.exists():
        return None
    cell = json.loads(path.read_text())
    return cell if is_current(cell) else None


def report(command: str) -> str:
    from mlwright.data.tasks import METRICS

    names = {e.name for e in select("tuning")}
    cells = [json.loads(p.read_text()) for p in sorted(CELLS.glob("*.json"))]
    cells = [c for c in cells if c.get("dataset") in names and is_current(c)]
    by_split: dict[tuple[str, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    for c in cells:
        by_split[(c["dataset"], c["seed"])][c["system"]] = c
    lines = [
        "# The MLP study: mlwright's MLP family at RealMLP's time against RealMLP and TabM",
        "",
        f"Command: `{command}`.",
        "",
        "Datasets: the tuning half of the catalogue ([datasets.md](datasets.md)); decisions "
        "about what the search carries are made on it, never on the judging half. Splits, "
        "scoring and normalization are `bench/compare.py`'s (80/20 per seed; a constant "
        "predictor 0, the best of the four systems on the split 1).",
        "",
        "Systems: `realmlp` and `tabm` are pytabkit's RealMLP-TD and TabM-D with their tuned "
        "defaults (no time budget: their fit seconds are shown); `mlwright_mlp` is "
        "`mlwright.train(..., families=['mlp'], tracker='none')` with a time budget equal to "
        f"RealMLP's fit on that split, but at least {MIN_BUDGET:g} s (more than RealMLP took "
        "on its fastest tables), for the whole run; `lightgbm` is LightGBM's defaults, the "
        "reference. Mean seconds are over the splits every system finished.",
        "",
        "| dataset | metric | mlwright_mlp | realmlp | tabm | lightgbm | mlwright budget (s) "
        "| realmlp fit (s) | tabm fit (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    norm: dict[str, list[float]] = defaultdict(list)
    scored: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    wins: dict[str, list[int]] = {peer: [0, 0, 0] for peer in PEERS}  # mlwright better/tie/worse
    for (dataset, seed), row in sorted(by_split.items()):
        ok = {s: c for s, c in row.items() if c["status"] == "ok"}
        if len(ok) < len(SYSTEMS):
            missing = ", ".join(
                f"{s} ({row[s]['status']})" if s in row else f"{s} (not run)"
                for s in SYSTEMS
                if s not in ok
            )
            lines.append(f"| {dataset} (seed {seed}) | | {missing} | | | | | | |")
            continue
        scored[(dataset, seed)] = ok
        metric = ok["lightgbm"]["metric"]
        higher = METRICS[metric].greater_is_better
        sign = 1.0 if higher else -1.0
        base = constant_score(
            json.loads((prepare_split(dataset, seed) / "meta.json").read_text()),
            prepare_split(dataset, seed),
        )
        best = max(sign * ok[s]["score"] for s in SYSTEMS)
        for s in SYSTEMS:
            span = best - sign * base
            norm[s].append((sign * ok[s]["score"] - sign * base) / span if span else 1.0)
        for peer in PEERS:
            gap = sign * (ok["mlwright_mlp"]["score"] - ok[peer]["score"])
            wins[peer][0 if gap > 1e-9 else 1 if gap > -1e-9 else 2] += 1
        lines.append(
            f"| {dataset}"
            + (f" (seed {seed})" if seed else "")
            + f" | {metric} | "
            + " | ".join(f"{ok[s]['score']:.4f}" for s in SYSTEMS)
            + f" | {ok['mlwright_mlp']['budget']:g} | {ok['realmlp']['fit_s']:.1f} "
            f"| {ok['tabm']['fit_s']:.1f} |"
        )
    lines += [
        "",
        "| system | mean normalized score | splits | mean seconds (budget or fit) | not done |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in SYSTEMS:
        values = norm[s]
        shown = f"{np.mean(values):.3f}" if values else "—"
        key = "budget" if s == "mlwright_mlp" else "fit_s"
        seconds = [
            row[s][key] for row in scored.values() if s in row
        ]  # over the splits every system finished, as the scores
        spent = f"{np.mean(seconds):.1f}" if seconds else "—"
        missed = sum(1 for c in cells if c["system"] == s and c["status"] != "ok")
        lines.append(f"| {s} | {shown} | {len(values)} | {spent} | {missed} |")
    lines.append("")
    for peer in PEERS:
        better, tie, worse = wins[peer]
        lines.append(
            f"mlwright_mlp against {peer}: better on {better} split(s), level on {tie}, "
            f"worse on {worse}."
        )
    lines.append("")
    if norm["mlwright_mlp"]:
        ranked = sorted(("mlwright_mlp", *PEERS), key=lambda s: -float(np.mean(norm[s])))
        lines.append(f"Highest mean normalized score among the three networks: `{ranked[0]}`.")
        lines.append("")
    absent = [e for e in select("tuning") if e.name not in {c["dataset"] for c in cells}]
    if absent:
        lines += ["Tuning tables not run: " + ", ".join(e.name for e in absent) + ".", ""]
    undone = [c for c in cells if c["status"] != "ok"]
    if undone:
        lines += [
            "Cells that did not end: "
            + ", ".join(f"{c['system']} on {c['dataset']} ({c['status']})" for c in undone)
            + f" (the limit: {TIMEOUT_SLACK:g} s for a fit without a budget).",
            "",
        ]
    machine = next((c["machine"] for c in cells), "")
    lines.append(f"Machine: {machine}, Python {platform.python_version()}.")
    text = "\n".join(lines) + "\n"
    OUT.write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--datasets", default=None, help="tables of the tuning half")
    parser.add_argument("--report", action="store_true", help="only rewrite the page")
    args = parser.parse_args()
    pool = [e.name for e in select("tuning")]
    datasets = args.datasets.split(",") if args.datasets else pool
    wrong = [d for d in datasets if d not in pool]
    if wrong:
        parser.error(
            "not tuning-half tables: "
            + ", ".join(f"{d} ({BY_NAME[d].half})" if d in BY_NAME else d for d in wrong)
        )
    command = "python bench/mlp_compare.py " + " ".join(a for a in sys.argv[1:] if a != "--report")
    if not args.report:
        run(datasets, [int(s) for s in args.seeds.split(",")])
    print(report(command.strip()))


if __name__ == "__main__":
    main()
