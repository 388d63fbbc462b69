"""Benchmark: how long the registry commands take on a store with many versions.

Usage:  python bench/registry_bench.py [--versions 20] [--rounds 3]
        [--out bench/results/registry.md] [--store DIR]

Registers ``--versions`` versions of one model (a linear model on the bundled Benefits table),
and one version of a LightGBM model beside them, in a private SQLite MLflow store, then times,
as a user runs them (each a fresh process): ``mlwright models list``, ``mlwright models show``,
and ``mlwright predict NAME@champion`` of each model on the table's 99 first rows, the first
time (the version is downloaded into mlwright's cache) and again (from the cache). ``--store
DIR`` keeps the store in DIR and reuses the versions already there. Beside them, the same
process's floor: ``python -c "import mlflow"`` and ``mlwright --help``. Each command runs
``--rounds`` times; the median is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlwright as mw

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "registry.md")
    parser.add_argument("--store", type=Path, help="keep the store here and reuse its versions")
    args = parser.parse_args()

    work = args.store or Path(tempfile.mkdtemp(prefix="mlwright-registry-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    reused = (work / "mlflow.db").is_file()
    env = dict(os.environ)
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
        MLWRIGHT_CACHE_DIR=str(work / "cache"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    os.environ.update(env)
    frame = mw.load_dataset("Benefits")
    data = work / "benefits.csv"
    frame.head(99).drop(columns="ui").to_csv(data, index=False)
    started = time.perf_counter()
    for seed in range(0 if reused else args.versions):
        mw.train(frame, target="ui", name="benefits", max_trials=1, families=("linear",), seed=seed)
    registering = time.perf_counter() - started
    if not (work / "gbm-registered").exists():  # one LightGBM version beside them
        mw.train(frame, target="ui", name="benefitsgbm", max_trials=1, families=("lightgbm",))
        (work / "gbm-registered").touch()

    mlwright = str(BIN / "mlwright")
    commands = {
        "`python -c 'import mlflow'` (the floor of any MLflow command)": [
            sys.executable,
            "-c",
            "import mlflow",
        ],
        "`mlwright --help`": [mlwright, "--help"],
        "`mlwright models list`": [mlwright, "models", "list"],
        "`mlwright models show benefits`": [mlwright, "models", "show", "benefits"],
    }
    rows: list[tuple[str, float]] = []
    for label, command in commands.items():
        rows.append(
            (label, statistics.median(timed(command, env, work) for _ in range(args.rounds)))
        )
    for name, kind in (("benefits", "linear"), ("benefitsgbm", "LightGBM")):
        predict = [mlwright, "predict", f"{name}@champion", str(data), "-o", str(work / "out.csv")]
        firsts, agains = [], []
        for _ in range(args.rounds):
            shutil.rmtree(work / "cache", ignore_errors=True)
            firsts.append(timed(predict, env, work))
            agains.append(timed(predict, env, work))
        label = f"`mlwright predict {name}@champion` ({kind}, 99 rows)"
        rows.append((f"{label}, first load", statistics.median(firsts)))
        rows.append((f"{label}, from the cache", statistics.median(agains)))

    lines = [
        "# Registry commands on a store with many versions",
        "",
        "Command: `python bench/registry_bench.py "
        f"--versions {args.versions} --rounds {args.rounds}"
        + (" --store DIR" if args.store else "")
        + "`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.",
        f"{args.versions} versions of one model (linear) and one of another (LightGBM) in a "
        "SQLite MLflow store"
        + ("" if reused else f" (registering them took {registering:.0f} s)")
        + f"; each command is a fresh process; median of {args.rounds}.",
        "",
        "| command | seconds |",
        "|---|---|",
        *[f"| {label} | {seconds:.2f} |" for label, seconds in rows],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    if args.store is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
