"""Benchmark: `mlwright train` at a fixed time budget against LightGBM defaults, same split.

Usage:  python bench/train_bench.py [--budget 60] [--datasets Mroz,Benefits,...]
        [--out bench/results/train.md]

Each dataset is split once (80/20, stratified for classification, seed 0). mlwright trains on the
80% through its public API with the time budget (it holds out its own test split inside that and
refits on all of it); LightGBM with default parameters trains on the same 80% (string columns as
pandas categories). Both are scored on the same 20% with the task's default metric. Columns that
leak the target are dropped for both before anything runs (listed in the table).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

import mlwright as mw
from mlwright.data.bundled import DATASETS
from mlwright.data.tasks import METRICS
from mlwright.evaluate.metrics import score

ROOT = Path(__file__).resolve().parent
# columns recorded after or from the outcome (see each dataset's R documentation)
LEAKS = {
    "Mroz": [
        "hoursw",
        "hearnw",
        "wagew",
    ],  # hours / earnings / wage of the wife: 0 when not working
    "Fishing": ["price", "catch"],  # price and catch rate of the mode that was chosen
}
DEFAULT = ["Mroz", "Participation", "Benefits", "Fishing", "Cracker", "DoctorContacts", "Males"]


def lightgbm_default(
    train: pd.DataFrame,
    test: pd.DataFrame,
    target: str,
    task: str,
    classes: list[object],
    threads: int,
) -> np.ndarray:
    import lightgbm as lgb

    def prepare(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.drop(columns=[target]).copy()
        for col in out.columns:
            if not pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col]):
                levels = sorted(train[col].dropna().astype(str).unique())
                out[col] = pd.Categorical(out[col].astype(str), categories=levels)
        return out

    x_train, x_test = prepare(train), prepare(test)
    if task == "regression":
        model = lgb.LGBMRegressor(random_state=0, n_jobs=threads, verbose=-1)
        model.fit(x_train, train[target])
        return np.asarray(model.predict(x_test))
    y = train[target].map({c: i for i, c in enumerate(classes)})
    model = lgb.LGBMClassifier(random_state=0, n_jobs=threads, verbose=-1)
    model.fit(x_train, y)
    proba = np.zeros((len(test), len(classes)))
    proba[:, model.classes_] = model.predict_proba(x_test)
    return proba


def split(frame: pd.DataFrame, target: str, task: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    stratify = frame[target] if task != "regression" else None
    a, b = train_test_split(frame, test_size=0.2, random_state=0, stratify=stratify)
    return a.reset_index(drop=True), b.reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--datasets", default=",".join(DEFAULT))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "train.md")
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    work = ROOT / ".work"
    work.mkdir(exist_ok=True)
    # runs are tracked and registered as usual (inside the budget), into a store of the bench's own
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    rows = []
    for name in args.datasets.split(","):
        spec = DATASETS[name]
        frame = mw.load_dataset(name).drop(columns=LEAKS.get(name, []))
        frame = frame[frame[spec.target].notna()].reset_index(drop=True)
        train, test = split(frame, spec.target, spec.task)
        started = time.monotonic()
        model = mw.train(train, target=spec.target, time_budget=args.budget, seed=0)
        wall = time.monotonic() - started
        metric = model.plan.metric
        pred = model.predict(test)
        if spec.task == "regression":
            ours = pred["prediction"].to_numpy()
            y = test[spec.target].to_numpy(dtype="float64")
            classes: list[object] = []
        else:
            classes = list(model.classes or ())
            ours = pred[[f"proba_{c}" for c in classes]].to_numpy()
            y = test[spec.target].map({c: i for i, c in enumerate(classes)}).to_numpy()
        t0 = time.monotonic()
        theirs = lightgbm_default(train, test, spec.target, spec.task, classes, threads)
        lgb_wall = time.monotonic() - t0
        s_ours, s_lgb = score(metric, y, ours), score(metric, y, theirs)
        better = s_ours >= s_lgb if METRICS[metric].greater_is_better else s_ours <= s_lgb
        chosen = model.recipe["chosen"]["family"]
        rows.append(
            f"| {name} | {spec.task} | {len(train):,} / {len(test):,} | {metric} | {s_ours:.4f} | "
            f"{s_lgb:.4f} | {'yes' if better else 'no'} | {chosen} ({len(model.trials)} trials) | "
            f"{wall:.1f} | {lgb_wall:.1f} | {', '.join(LEAKS.get(name, [])) or '—'} |"
        )
        print(rows[-1], flush=True)
        limit = args.budget * 1.1 + 10
        assert wall <= limit, f"{name}: {wall:.1f} s is over {limit:.1f} s"

    lines = [
        f"# `mlwright train` at a {args.budget:g} s budget vs LightGBM defaults",
        "",
        f"Command: `python bench/train_bench.py --budget {args.budget:g} --datasets "
        f"{args.datasets}`",
        "",
        f"Machine: {threads} cores ({platform.machine()}), Python {platform.python_version()}, "
        f"mlwright {mw.__version__}. Same 80/20 split (seed 0) for both; scores on the 20%. "
        "mlwright tracks each run in MLflow (SQLite) and registers it, inside the budget.",
        "",
        "| dataset | task | train / test rows | metric | mlwright | LightGBM default | "
        "mlwright as good or better | chosen family | mlwright wall (s) | LightGBM wall (s) | "
        "leaking columns dropped for both |",
        "|---|---|---|---|---:|---:|---|---|---:|---:|---|",
        *rows,
        "",
        "Metrics: roc_auc higher is better; log_loss and rmse lower is better. mlwright's wall "
        "time is the whole `mlwright.train` call (profile, plan, search, test scoring, refit); "
        f"the limit is {args.budget:g} × 1.1 + 10 s.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
