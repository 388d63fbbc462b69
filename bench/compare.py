"""Benchmark: mlwright against FLAML, AutoGluon-Tabular and LightGBM defaults, same splits,
same budget, same machine.

Usage:
    python bench/compare.py [--half judging|tuning|all] [--budgets 60,300] [--seeds 0,1,2]
                            [--systems ...] [--datasets ...]
    python bench/compare.py --setup        # only build the peers' virtualenvs
    python bench/compare.py --report       # only rewrite the report from the cells on record

The datasets come from the catalogue, ``bench/catalogue.py`` (``bench/results/datasets.md``):
by default its judging half, which ``bench/results/accuracy.md`` reports; ``--half tuning``
(or ``all``) writes ``accuracy-tuning.md`` (``accuracy-all.md``) instead, so the accuracy page
only ever shows tables nothing was tuned on. ``--datasets`` picks tables of the chosen half.

Systems: ``mlwright``; ``lightgbm`` (LightGBM's defaults, no budget); ``flaml`` (FLAML at the
budget); ``autogluon`` (AutoGluon-Tabular, ``presets="best_quality"``) and ``autogluon_v150``
(AutoGluon's zero-shot portfolio preset ``best_quality_v150``, in AutoGluon 1.5 and later; the
runner refuses to start if the installed AutoGluon lacks it).

FLAML and AutoGluon are installed by this script into their own virtualenvs under
``bench/.venvs`` (torch pinned to the local CPU wheel there), so they never enter mlwright's
dependencies. Every (system, dataset, budget, seed) cell runs in its own process and writes its
result to ``bench/results/compare/<cell>.json``; a cell with a result is skipped, so an
interrupted run resumes where it stopped (in the background, across sessions). A cell records
the catalogue digest of its dataset (source, target, drops, group, codes); a cell whose digest
no longer matches is run again. LightGBM with default parameters has no budget: one cell per
(dataset, seed) serves both budgets. The cells of the older 10-dataset benchmark are kept in
``bench/results/compare-10datasets/`` and are not read.

Each seed is its own outer 80/20 split (stratified for classification; grouped by the
catalogue's group column where the rows repeat an entity, with that column dropped), and the
systems' seed. Every system fits on the same 80% and is scored on the same 20% with the task's
metric (AUC, log loss, RMSE); every system is told the task. The catalogue's drops (columns
that leak or restate the target) apply to all systems first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from catalogue import BY_NAME, HALVES, Entry, select
from catalogue import load as load_table

ROOT = Path(__file__).resolve().parent
CELLS = ROOT / "results" / "compare"
OLDER = ROOT / "results" / "accuracy-10datasets.md"  # the older benchmark's page, kept as it was
WORK = ROOT / ".work" / "compare"
VENVS = ROOT / ".venvs"
RUNNER = ROOT / "compare_run.py"
PEERS: dict[str, list[str]] = {
    "flaml": [
        "flaml==2.7.0",
        "lightgbm==4.7.0",
        "xgboost-cpu==3.2.0",
        "scikit-learn==1.9.1",
        "pandas==2.3.3",
        "pyarrow==24.0.0",
    ],
    "autogluon": [
        # 1.6.3 has both presets the benchmark runs: best_quality and best_quality_v150
        "autogluon.tabular[lightgbm,catboost,xgboost,fastai]==1.6.3",
        "torch==2.13.0",  # the local CPU wheel; a looser pin fetches a CUDA build
    ],
    # RealMLP and TabM for bench/mlp_compare.py (pytabkit's base install has both)
    "pytabkit": ["pytabkit==1.7.3", "torch==2.13.0", "pandas==2.3.3", "pyarrow==24.0.0"],
}
SYSTEMS = ("mlwright", "flaml", "autogluon", "autogluon_v150", "lightgbm")
VENV = {
    "flaml": "flaml",
    "autogluon": "autogluon",
    "autogluon_v150": "autogluon",
    "realmlp": "pytabkit",
    "tabm": "pytabkit",
}
TIMEOUT_FACTOR, TIMEOUT_SLACK = 3.0, 180.0


# --- data ---------------------------------------------------------------------------------------


def prepare_split(name: str, seed: int) -> Path:
    """Write the (dataset, seed) split once; every system reads the same files."""
    entry = BY_NAME[name]
    folder = WORK / "data" / f"{name}-{entry.digest()}-{seed}"
    if (folder / "meta.json").exists():
        return folder
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    from mlwright.data.tasks import DEFAULT_METRIC

    frame = load_table(entry)  # drops applied, codes as text, rows without a target removed
    target, group = entry.target, entry.group
    classes: list[str] = []
    if entry.task != "regression":
        classes = sorted(frame[target].unique())
    if group:
        splitter = GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=seed)
        train_idx, test_idx = next(splitter.split(frame, groups=frame[group]))
        frame = frame.drop(columns=[group])
        train, test = frame.iloc[train_idx], frame.iloc[test_idx]
    else:
        stratify = frame[target] if entry.task != "regression" else None
        train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=stratify)
    folder.mkdir(parents=True, exist_ok=True)
    train.reset_index(drop=True).to_parquet(folder / "train.parquet")
    test.reset_index(drop=True).to_parquet(folder / "test.parquet")
    meta = {
        "dataset": name,
        "source": entry.source,
        "half": entry.half,
        "catalogue": entry.digest(),
        "target": target,
        "task": entry.task,
        "classes": classes,
        "metric": DEFAULT_METRIC[entry.task],  # type: ignore[index]
        "rows": [len(train), len(test)],
        "dropped": [*entry.drop, *([group] if group else [])],
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    return folder


# --- systems ------------------------------------------------------------------------------------


def interpreter(system: str) -> Path:
    if system not in VENV:
        return Path(sys.executable)
    return VENVS / VENV[system] / "bin" / "python"


def setup(peer: str) -> None:
    """Create the peer's virtualenv with its pinned requirements (once)."""
    venv = VENVS / peer
    stamp = venv / "mlwright-bench.json"
    wanted = PEERS[peer]
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return
    print(f"installing {peer} into {venv.relative_to(ROOT.parent)} …", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *wanted], check=True)
    stamp.write_text(json.dumps(wanted))


def cell_name(system: str, dataset: str, budget: float, seed: int) -> str:
    return f"{system}-{dataset}-{budget:g}s-seed{seed}"


def run_cell(system: str, dataset: str, budget: float, seed: int) -> dict[str, Any]:
    """Run one cell in its own process; its peak memory comes from the kernel (ru_maxrss)."""
    data = prepare_split(dataset, seed)
    meta = json.loads((data / "meta.json").read_text())
    name = cell_name(system, dataset, budget, seed)
    work = WORK / "runs" / name
    out = work / "result.json"
    work.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONHASHSEED="0", MLFLOW_TRACKING_URI=f"sqlite:///{work}/mlflow.db")
    command = [str(interpreter(system)), str(RUNNER), system, "--data", str(data)]
    command += ["--budget", str(budget), "--seed", str(seed), "--work", str(work)]
    command += ["--out", str(out)]
    limit = budget * TIMEOUT_FACTOR + TIMEOUT_SLACK
    started = time.monotonic()
    log = (work / "log.txt").open("w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    status, rusage = _wait(proc, limit)
    wall = time.monotonic() - started
    result: dict[str, Any] = {
        "system": system,
        "dataset": dataset,
        "catalogue": meta["catalogue"],
        "budget": budget,
        "seed": seed,
        "metric": meta["metric"],
        "wall_s": round(wall, 2),
        "peak_mb": round(rusage.ru_maxrss / 1024, 1),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
    }
    if status == 0 and out.exists():
        result.update(json.loads(out.read_text()))
        result["status"] = "ok"
        result["score"] = _score(meta, data, Path(result.pop("pred")))
    else:
        tail = (work / "log.txt").read_text()[-2000:]
        result["status"] = "timeout" if status is None else "failed"
        result["error"] = tail
    return result


def _wait(proc: subprocess.Popen[bytes], limit: float) -> tuple[int | None, Any]:
    deadline = time.monotonic() + limit
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return os.waitstatus_to_exitcode(status), rusage
        if time.monotonic() > deadline:
            proc.send_signal(signal.SIGKILL)
            _, _, rusage = os.wait4(proc.pid, 0)
            return None, rusage
        time.sleep(0.2)


def _score(meta: dict[str, Any], data: Path, pred_path: Path) -> float:
    from mlwright.evaluate.metrics import score

    y, pred = _truth(meta, data), np.load(pred_path)
    return float(score(meta["metric"], y, pred))


def _truth(meta: dict[str, Any], data: Path) -> np.ndarray:
    test = pd.read_parquet(data / "test.parquet")
    if meta["task"] == "regression":
        return test[meta["target"]].to_numpy(dtype="float64")
    return test[meta["target"]].map({c: i for i, c in enumerate(meta["classes"])}).to_numpy()


def constant_score(meta: dict[str, Any], data: Path) -> float:
    """The AutoML Benchmark's zero: a constant predictor (class priors, or the training mean)."""
    from mlwright.evaluate.metrics import score

    train = pd.read_parquet(data / "train.parquet")[meta["target"]]
    y = _truth(meta, data)
    if meta["task"] == "regression":
        pred: np.ndarray = np.full(len(y), float(train.mean()))
    else:
        prior = train.value_counts(normalize=True).reindex(meta["classes"]).fillna(0).to_numpy()
        pred = np.tile(prior, (len(y), 1))
    return float(score(meta["metric"], y, pred))


# --- report -------------------------------------------------------------------------------------


def is_current(cell: dict[str, Any]) -> bool:
    """A cell of a catalogue dataset whose data have not changed since it ran."""
    entry = BY_NAME.get(cell.get("dataset", ""))
    return entry is not None and cell.get("catalogue") == entry.digest()


def load_cells(entries: list[Entry]) -> list[dict[str, Any]]:
    """The current cells of these datasets (a cell of changed data is left out)."""
    names = {e.name for e in entries}
    cells = [json.loads(p.read_text()) for p in sorted(CELLS.glob("*.json"))]
    return [c for c in cells if c.get("dataset") in names and is_current(c)]


def report(budgets: list[float], out: Path, command: str, half: str) -> str:
    from mlwright.data.tasks import METRICS

    entries = select(half)
    cells = load_cells(entries)
    which = {
        "judging": "the judging half",
        "tuning": "the tuning half (not a report of accuracy: portfolios and rules are "
        "learned on these tables)",
        "all": "both halves (the tuning half is where portfolios and rules are learned, so "
        "this is not a report of accuracy)",
    }[half]
    lines = [
        "# Accuracy at a fixed time budget: mlwright, FLAML, AutoGluon, LightGBM defaults",
        "",
        f"Command: `{command}` (cells resume; this page is rewritten from every cell on record "
        f"by `python bench/compare.py --half {half} --report`).",
        "",
        f"Datasets: {which} of the catalogue, `bench/catalogue.py`, whose tables, targets, "
        "dropped columns and coverage are in [datasets.md](datasets.md): "
        + ", ".join(e.name for e in entries)
        + ". The catalogue was split once into a tuning half, on which portfolios, thresholds "
        "and rules are learned (`bench/portfolio.py` refuses judging tables), and a judging "
        "half, which only this page reports.",
        "",
        'Systems: mlwright; FLAML; AutoGluon-Tabular with `presets="best_quality"` '
        "(`autogluon`) and with its zero-shot portfolio preset `best_quality_v150` "
        "(`autogluon_v150`); LightGBM with default parameters (no budget). Each system is told "
        "the task.",
        "",
        "Each seed is its own outer 80/20 split and the systems' seed; all systems fit the same "
        "80% and are scored on the same 20%. Normalized score as in the AutoML Benchmark: a "
        "constant predictor (class priors, or the training mean) scores 0 and the best system "
        "of that split 1. Ranks are per split (1 = best). ± is the half-width of a 95% "
        "t-interval over the cells. Wall time is the whole process (fit, predict, scoring), "
        "peak memory the process's maximum resident set, latency the median of 50 single-row "
        "predict calls in process.",
        "",
    ]
    for budget in budgets:
        rows = [c for c in cells if c["budget"] in (budget, 0) and c["status"] == "ok"]
        failed = [c for c in cells if c["budget"] == budget and c["status"] != "ok"]
        lines += _budget_section(budget, rows, failed, METRICS)
    machine = next((c["machine"] for c in cells), f"{os.cpu_count()} cores")
    lines += [f"Machine: {machine}, Python {platform.python_version()}.", ""]
    if half == "judging" and OLDER.exists():
        lines += _older_section()
    text = "\n".join(lines)
    out.write_text(text)
    return text


def _older_section() -> list[str]:
    """The older 10-dataset benchmark's page, kept as it was (headings one level down)."""
    body = OLDER.read_text().split("\n")
    body = body[1:] if body and body[0].startswith("# ") else body
    return [
        "## The older 10-dataset benchmark (before the catalogue)",
        "",
        f"Kept as it was, from [{OLDER.name}]({OLDER.name}):",
        *[("#" + line) if line.startswith("## ") else line for line in body],
    ]


def _budget_section(
    budget: float, rows: list[dict[str, Any]], failed: list[dict[str, Any]], metrics: Any
) -> list[str]:
    by_split: dict[tuple[str, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    for c in rows:
        by_split[(c["dataset"], c["seed"])][c["system"]] = c
    systems = [s for s in SYSTEMS if any(s in v for v in by_split.values())]
    if not systems:
        return [f"## {budget:g} s", "", "No cells yet.", ""]
    norm: dict[str, list[float]] = defaultdict(list)
    norm_lgbm: dict[str, list[float]] = defaultdict(list)  # zero: LightGBM's defaults
    behind_lgbm: list[str] = []  # splits where a system is > 1% worse than LightGBM defaults
    ranks: dict[str, list[float]] = defaultdict(list)
    per_dataset: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    compared: list[dict[str, Any]] = []  # the cells of splits every system has
    unbeaten: list[str] = []
    waiting = 0
    for (dataset, seed), got in sorted(by_split.items()):
        if set(got) != set(systems):
            waiting += 1
            continue  # every figure compares systems on the same splits only
        compared += got.values()
        for system, c in got.items():
            per_dataset[dataset][system].append(c["score"])
        meta = json.loads((prepare_split(dataset, seed) / "meta.json").read_text())
        higher = metrics[meta["metric"]].greater_is_better
        zero = constant_score(meta, prepare_split(dataset, seed))
        scores = {s: got[s]["score"] for s in systems}
        best = max(scores.values()) if higher else min(scores.values())
        if (best - zero if higher else zero - best) > 0:
            for s, v in scores.items():
                norm[s].append((v - zero) / (best - zero))
        else:  # no system beats a constant: the normalized score is undefined there
            unbeaten.append(f"{dataset} seed {seed}")
        if "lightgbm" in scores:
            base = scores["lightgbm"]
            if (best - base if higher else base - best) > 0:  # undefined when LightGBM is best
                for s, v in scores.items():
                    norm_lgbm[s].append((v - base) / (best - base))
            for s, v in scores.items():
                worse = (base - v) / abs(base) if higher else (v - base) / abs(base)
                if s != "lightgbm" and worse > 0.01:
                    behind_lgbm.append(f"{s} on {dataset} seed {seed} ({worse:.1%})")
        signed = {s: (v if higher else -v) for s, v in scores.items()}
        for s in systems:
            ranks[s].append(
                1
                + sum(signed[o] > signed[s] for o in systems)
                + 0.5 * sum(signed[o] == signed[s] for o in systems if o != s)
            )
    head = "| dataset | metric | " + " | ".join(systems) + " |"
    lines = [
        f"## {budget:g} s budget",
        "",
        f"{len(compared) // len(systems)} splits with every system ({len(per_dataset)} "
        "datasets); every figure below is over these splits"
        + (f" ({waiting} more split(s) wait for a system's cell)" if waiting else "")
        + ". Test score, mean ± 95% CI over seeds (AUC higher is better; log loss and RMSE "
        "lower):",
        "",
        head,
        "|---|---|" + "---:|" * len(systems),
    ]
    for dataset, got in sorted(per_dataset.items()):
        metric = next(c["metric"] for c in compared if c["dataset"] == dataset)
        cells = [_mean_ci(got.get(s, []), 4) for s in systems]
        lines.append(f"| {dataset} | {metric} | " + " | ".join(cells) + " |")

    def column(key: str, digits: int, system: str) -> str:
        return _mean_ci([c[key] for c in compared if c["system"] == system and key in c], digits)

    lines += [
        "",
        "| system | mean normalized score | normalized vs LightGBM defaults | average rank | "
        "wall (s) | peak memory (MB) | single-row predict (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in systems:
        lines.append(
            f"| {s} | {_mean_ci(norm[s], 3)} | {_mean_ci(norm_lgbm[s], 3)} | "
            f"{_mean_ci(ranks[s], 2)} | {column('wall_s', 1, s)} | {column('peak_mb', 0, s)} | "
            f"{column('latency_ms', 2, s)} |"
        )
    lines += [
        "",
        "Normalized vs LightGBM defaults: (score − LightGBM defaults) / (best − LightGBM "
        "defaults) per split; splits where LightGBM's defaults are the best are left out of it "
        f"({len(compared) // len(systems) - len(norm_lgbm.get(systems[0], []))} here).",
        "",
        "More than 1% worse than LightGBM defaults: "
        + (", ".join(behind_lgbm) if behind_lgbm else "none")
        + ".",
    ]
    if unbeaten:
        lines += [
            "",
            "Left out of the normalized score (no system beat the constant predictor on the test "
            "split, so the scale is undefined; ranks still count): " + ", ".join(unbeaten) + ".",
        ]
    if failed:
        lines += [
            "",
            "Cells that did not finish: "
            + ", ".join(
                f"{c['system']}/{c['dataset']}/seed {c['seed']} ({c['status']})" for c in failed
            ),
        ]
    return [*lines, ""]


def _mean_ci(values: list[float], digits: int) -> str:
    if not values:
        return "—"
    mean = float(np.mean(values))
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    from scipy import stats

    half = (
        stats.t.ppf(0.975, len(values) - 1) * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    )
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--half",
        default="judging",
        choices=[*HALVES, "all"],
        help="the catalogue's half to run (default judging: what accuracy.md reports)",
    )
    parser.add_argument("--budgets", default="60,300")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--datasets", default=None, help="comma-separated tables of the half (default: all)"
    )
    parser.add_argument("--setup", action="store_true", help="only build the virtualenvs")
    parser.add_argument("--report", action="store_true", help="only rewrite the report")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the report (default: results/accuracy.md for the judging half, "
        "results/accuracy-HALF.md otherwise)",
    )
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    systems = args.systems.split(",")
    pool = [e.name for e in select(args.half)]
    datasets = args.datasets.split(",") if args.datasets else pool
    unknown = [s for s in systems if s not in SYSTEMS] + [d for d in datasets if d not in BY_NAME]
    if unknown:
        parser.error(f"unknown system or dataset: {', '.join(unknown)}")
    elsewhere = [d for d in datasets if d not in pool]
    if elsewhere:
        parser.error(
            "not in the "
            + args.half
            + " half: "
            + ", ".join(f"{d} ({BY_NAME[d].half})" for d in elsewhere)
            + ". Pass --half tuning or --half all to run tuning tables; accuracy.md reports "
            "the judging half only"
        )
    page = "accuracy.md" if args.half == "judging" else f"accuracy-{args.half}.md"
    out = args.out or ROOT / "results" / page
    if args.half != "judging" and out.resolve() == (ROOT / "results" / "accuracy.md").resolve():
        parser.error("accuracy.md reports the judging half only: pick another --out")
    # the command that produces the cells (a --report run only rewrites this page from them)
    command = "python bench/compare.py " + " ".join(a for a in sys.argv[1:] if a != "--report")
    command = command.strip()
    if not args.report:
        for peer in sorted({VENV[s] for s in systems if s in VENV}):
            setup(peer)
        if args.setup:
            return
        CELLS.mkdir(parents=True, exist_ok=True)
        for budget in budgets:
            for seed in seeds:
                for dataset in datasets:
                    for system in systems:
                        b = 0.0 if system == "lightgbm" else budget
                        path = CELLS / f"{cell_name(system, dataset, b, seed)}.json"
                        if path.exists() and is_current(json.loads(path.read_text())):
                            continue
                        result = run_cell(system, dataset, b, seed)
                        path.write_text(json.dumps(result, indent=1))
                        shown = f"{result.get('score', float('nan')):.4f}"
                        print(
                            f"{path.stem}: {result['status']} score {shown} "
                            f"wall {result['wall_s']:.1f} s",
                            flush=True,
                        )
    print(report(budgets, out, command, args.half))


if __name__ == "__main__":
    main()
