"""One benchmark cell: fit one system on a train file within a budget, predict the test file.

Run by ``bench/compare.py`` with each system's own interpreter (FLAML and AutoGluon live in
their own virtualenvs), so this file imports only NumPy and pandas at the top; each system is
imported inside its function.

    python bench/compare_run.py SYSTEM --data DIR --budget S --seed N --work DIR --out FILE

``DIR`` holds ``train.parquet``, ``test.parquet`` and ``meta.json`` (target, task, classes,
metric). The result is a JSON file: fit seconds, single-row predict latency (median of 50
calls on one test row after 5 warm-up calls) and the path of the test predictions (``.npy``:
probabilities in ``classes`` order, or values).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Predict = Callable[[pd.DataFrame], np.ndarray]
LATENCY_CALLS = 50
THREADS = 2


def fit_mlwright(
    train: pd.DataFrame,
    meta: dict[str, Any],
    budget: float,
    seed: int,
    work: Path,
    families: list[str] | None = None,
):
    import mlwright as mw

    task = meta["task"]  # told, as every system is: "0"…"10" could otherwise read as a count
    # restricted to some families (the MLP study), it is compared with bare fits: no tracking
    extra: dict[str, Any] = {"families": families, "tracker": "none"} if families else {}
    model = mw.train(
        train, target=meta["target"], task=task, time_budget=budget, seed=seed, **extra
    )
    classes = [str(c) for c in model.classes or ()]

    def predict(frame: pd.DataFrame) -> np.ndarray:
        out = model.predict(frame)
        if meta["task"] == "regression":
            return out["prediction"].to_numpy(dtype="float64")
        return _ordered(out[[f"proba_{c}" for c in classes]].to_numpy(), classes, meta)

    chosen = model.recipe["chosen"]
    return predict, {"version": mw.__version__, "chosen": chosen.get("family")}


def fit_lightgbm(train: pd.DataFrame, meta: dict[str, Any], budget: float, seed: int, work: Path):
    import lightgbm as lgb

    target, task = meta["target"], meta["task"]
    categories = _levels(train, target, bools=True)

    def prepare(frame: pd.DataFrame) -> pd.DataFrame:
        return _categorical(frame, target, categories)

    x = prepare(train)
    if task == "regression":
        model = lgb.LGBMRegressor(random_state=seed, n_jobs=THREADS, verbose=-1)
        model.fit(x, train[target])
        return lambda frame: np.asarray(model.predict(prepare(frame)), dtype="float64"), {
            "version": lgb.__version__
        }
    classes = meta["classes"]
    model = lgb.LGBMClassifier(random_state=seed, n_jobs=THREADS, verbose=-1)
    model.fit(x, train[target].map({c: i for i, c in enumerate(classes)}))

    def predict(frame: pd.DataFrame) -> np.ndarray:
        proba = np.zeros((len(frame), len(classes)))
        proba[:, model.classes_] = model.predict_proba(prepare(frame))
        return proba

    return predict, {"version": lgb.__version__}


def fit_flaml(train: pd.DataFrame, meta: dict[str, Any], budget: float, seed: int, work: Path):
    import flaml
    from flaml import AutoML

    target, task = meta["target"], meta["task"]
    metric = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]
    automl = AutoML()
    automl.fit(
        X_train=train.drop(columns=[target]),
        y_train=train[target],
        task="regression" if task == "regression" else "classification",
        metric=metric,
        time_budget=budget,
        seed=seed,
        n_jobs=THREADS,
        verbose=0,
        log_file_name=str(work / "flaml.log"),
    )

    def predict(frame: pd.DataFrame) -> np.ndarray:
        x = frame.drop(columns=[target], errors="ignore")
        if task == "regression":
            return np.asarray(automl.predict(x), dtype="float64")
        proba = np.asarray(automl.predict_proba(x))
        return _ordered(proba, [str(c) for c in automl.classes_], meta)

    return predict, {"version": flaml.__version__, "chosen": automl.best_estimator}


def fit_autogluon(
    train: pd.DataFrame,
    meta: dict[str, Any],
    budget: float,
    seed: int,
    work: Path,
    presets: str = "best_quality",
):
    import autogluon.tabular as ag
    from autogluon.tabular import TabularPredictor

    try:
        from autogluon.tabular.configs.presets_configs import tabular_presets_dict
    except ImportError:  # moved: let fit() judge the preset name
        tabular_presets_dict = {presets: None}
    if presets not in tabular_presets_dict:
        sys.exit(
            f"AutoGluon {ag.__version__} has no preset {presets!r} (best_quality_v150 came with "
            "AutoGluon 1.5): run `python bench/compare.py --setup` to install the pinned one"
        )
    target, task = meta["target"], meta["task"]
    metric = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]
    predictor = TabularPredictor(
        label=target,
        problem_type=task,
        eval_metric=metric,
        path=str(work / "autogluon"),
        verbosity=0,
    ).fit(
        train,
        time_limit=budget,
        presets=presets,
        num_cpus=THREADS,
        num_gpus=0,
        ag_args_fit={"random_seed": seed},
    )

    def predict(frame: pd.DataFrame) -> np.ndarray:
        x = frame.drop(columns=[target], errors="ignore")
        if task == "regression":
            return np.asarray(predictor.predict(x), dtype="float64")
        proba = predictor.predict_proba(x)
        return _ordered(proba.to_numpy(), [str(c) for c in proba.columns], meta)

    best = predictor.model_best
    return predict, {"version": ag.__version__, "chosen": best, "presets": presets}


def fit_pytabkit(
    train: pd.DataFrame,
    meta: dict[str, Any],
    budget: float,
    seed: int,
    work: Path,
    method: str = "RealMLP_TD",
):
    """pytabkit's RealMLP-TD or TabM-D with their tuned defaults (they take no time budget:
    the cell records how long the fit took). Text columns are passed as categoricals."""
    import pytabkit

    target, task = meta["target"], meta["task"]
    kind = "Regressor" if task == "regression" else "Classifier"
    cls = getattr(pytabkit, f"{method}_{kind}")
    levels = _levels(train, target, bools=False)
    # pytabkit refuses missing numbers: the training median, and an indicator column
    gaps = [c for c in train.columns if c != target and c not in levels and train[c].isna().any()]
    medians = {c: float(train[c].astype("float64").median()) for c in gaps}

    def prepare(frame: pd.DataFrame) -> pd.DataFrame:
        out = _categorical(frame, target, levels)
        for col in out.columns[[pd.api.types.is_bool_dtype(t) for t in out.dtypes]]:
            out[col] = out[col].astype("float64")  # pytabkit reads booleans as objects
        for col in gaps:
            out[f"{col}__missing"] = out[col].isna().astype("float64")
            out[col] = out[col].astype("float64").fillna(medians[col])
        return out

    model = cls(device="cpu", random_state=seed, n_threads=THREADS, verbosity=0)
    y = train[target] if task == "regression" else train[target].astype(str)
    model.fit(prepare(train), y)

    def predict(frame: pd.DataFrame) -> np.ndarray:
        if task == "regression":
            return np.asarray(model.predict(prepare(frame)), dtype="float64").reshape(-1)
        proba = np.asarray(model.predict_proba(prepare(frame)))
        return _ordered(proba, [str(c) for c in model.classes_], meta)

    from importlib.metadata import version

    return predict, {"version": version("pytabkit"), "chosen": method}


SYSTEMS = {
    "mlwright": fit_mlwright,
    "lightgbm": fit_lightgbm,
    "flaml": fit_flaml,
    # best_quality at every budget; best_quality_v150: AutoGluon's zero-shot portfolio preset
    "autogluon": partial(fit_autogluon, presets="best_quality"),
    "autogluon_v150": partial(fit_autogluon, presets="best_quality_v150"),
    # the MLP study: mlwright's MLP family alone at the budget, against pytabkit's RealMLP and
    # TabM with their defaults (bench/mlp_compare.py)
    "mlwright_mlp": partial(fit_mlwright, families=["mlp"]),
    "realmlp": partial(fit_pytabkit, method="RealMLP_TD"),
    "tabm": partial(fit_pytabkit, method="TabM_D"),
}


def _levels(train: pd.DataFrame, target: str, *, bools: bool) -> dict[str, list[str]]:
    """The levels of the text columns (and of the boolean ones, with ``bools``), as text,
    learned on the training rows."""
    types = pd.api.types
    return {
        col: sorted(train[col].dropna().astype(str).unique())
        for col in train.columns
        if col != target
        and (not types.is_numeric_dtype(train[col]) or (bools and types.is_bool_dtype(train[col])))
    }


def _categorical(frame: pd.DataFrame, target: str, levels: dict[str, list[str]]) -> pd.DataFrame:
    """The features of ``frame`` with the columns of ``levels`` as pandas categoricals."""
    out = frame.drop(columns=[target], errors="ignore").copy()
    for col, known in levels.items():
        out[col] = pd.Categorical(out[col].astype(str), categories=known)
    return out


def _ordered(proba: np.ndarray, columns: list[str], meta: dict[str, Any]) -> np.ndarray:
    """Probability columns in the benchmark's class order (a class a system never saw: 0)."""
    out = np.zeros((proba.shape[0], len(meta["classes"])))
    for j, cls in enumerate(columns):
        out[:, meta["classes"].index(cls)] = proba[:, j]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    meta = json.loads((args.data / "meta.json").read_text())
    train = pd.read_parquet(args.data / "train.parquet")
    test = pd.read_parquet(args.data / "test.parquet")
    args.work.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    predict, info = SYSTEMS[args.system](train, meta, args.budget, args.seed, args.work)
    fit_s = time.monotonic() - started
    pred = predict(test)
    np.save(args.work / "pred.npy", pred)

    row = test.drop(columns=[meta["target"]]).iloc[[0]]
    for _ in range(5):
        predict(row)
    times = []
    for _ in range(LATENCY_CALLS):
        t0 = time.perf_counter()
        predict(row)
        times.append((time.perf_counter() - t0) * 1000)
    result = {
        "fit_s": round(fit_s, 2),
        "latency_ms": round(statistics.median(times), 3),
        "pred": str(args.work / "pred.npy"),
        "python": sys.version.split()[0],
        **info,
    }
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
