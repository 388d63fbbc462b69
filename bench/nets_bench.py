"""Benchmark: the same network trained by train-torch, train-keras and train-jax.

Usage:  python bench/nets_bench.py [--epochs 20] [--out bench/results/nets.md]

On judging-half tables (bench/catalogue.py; no rule, portfolio or threshold was learned on them):
numeric columns and one-hot categories, standardised on the training rows; one seeded split into
training, validation (early stopping) and test rows shared by all three frameworks. The same
MLP (two hidden layers of ``--hidden`` units, ReLU, dropout 0.1), AdamW, one-cycle schedule,
clipping, the same epochs and patience. For each framework: the packaged model's test scores,
training seconds, the largest difference between the ONNX model and the native one on the test
rows, and the time to score 1,000 rows with the native model and with the ONNX model the server
runs, as a ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

TABLES = ("401ksubs", "airfare")  # judging half: binary, regression


def prepared(name: str, seed: int = 0) -> dict[str, Any]:
    import pandas as pd

    from catalogue import features, load, select

    entry = next(e for e in select("judging") if e.name == name)
    frame = load(entry)
    x = pd.get_dummies(features(entry, frame), dummy_na=True).astype("float64")
    y = frame[entry.target]
    order = np.random.default_rng(seed).permutation(len(frame))
    n_test, n_valid = len(frame) // 5, len(frame) // 8
    test, valid, train = order[:n_test], order[n_test : n_test + n_valid], order[n_test + n_valid :]
    median = x.iloc[train].median()
    x = x.fillna(median)
    mean, std = x.iloc[train].mean(), x.iloc[train].std().replace(0, 1)
    values = ((x - mean) / std).to_numpy("float32")
    if entry.task == "regression":
        target = y.to_numpy("float32")
        loss, metrics, width = "mse", ["rmse"], 1
    else:
        classes = sorted(y.unique())
        target = y.map({c: i for i, c in enumerate(classes)}).to_numpy("int64")
        loss, metrics, width = "cross_entropy", ["accuracy"], len(classes)
    return {"entry": entry, "x": values, "y": target, "train": train, "valid": valid,
            "test": test, "loss": loss, "metrics": metrics, "width": width}  # fmt: skip


def config(kind: str, table: dict[str, Any], epochs: int, hidden: int) -> dict[str, Any]:
    return {
        "name": f"bench-{kind}-{table['entry'].name}",
        "model": f"nets_bench:{kind}_mlp",
        "data": "nets_bench:unused",
        "loss": table["loss"],
        "metrics": table["metrics"],
        "params": {"inputs": table["x"].shape[1], "hidden": hidden, "outputs": table["width"]},
        "train": {"epochs": epochs, "batch_size": 128, "lr": 0.003, "patience": 5, "seed": 0},
        "tracker": "none",
    }


def torch_mlp(params: dict[str, Any]) -> Any:
    from torch import nn

    h = int(params["hidden"])
    layers = [nn.Linear(int(params["inputs"]), h), nn.ReLU(), nn.Dropout(0.1), nn.Linear(h, h),
              nn.ReLU(), nn.Linear(h, int(params["outputs"]))]  # fmt: skip
    return nn.Sequential(*layers)


def keras_mlp(params: dict[str, Any]) -> Any:
    import keras

    h = int(params["hidden"])
    return keras.Sequential([
        keras.Input((int(params["inputs"]),)), keras.layers.Dense(h, activation="relu"),
        keras.layers.Dropout(0.1), keras.layers.Dense(h, activation="relu"),
        keras.layers.Dense(int(params["outputs"])),
    ])  # fmt: skip


def jax_mlp(params: dict[str, Any], rngs: Any) -> Any:
    from flax import nnx

    h, n_in, n_out = int(params["hidden"]), int(params["inputs"]), int(params["outputs"])

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.a, self.b = nnx.Linear(n_in, h, rngs=rngs), nnx.Linear(h, h, rngs=rngs)
            self.out, self.drop = nnx.Linear(h, n_out, rngs=rngs), nnx.Dropout(0.1, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            return self.out(nnx.relu(self.b(self.drop(nnx.relu(self.a(x))))))

    return MLP(rngs)


def train(
    kind: str, table: dict[str, Any], epochs: int, hidden: int, out: Path
) -> tuple[Any, Any, float]:
    """(the packaged model, the native model, training seconds)."""
    x, y = table["x"], table["y"]
    tr, va = table["train"], table["valid"]
    raw = config(kind, table, epochs, hidden)
    started = time.perf_counter()
    if kind == "torch":
        import torch
        from torch.utils.data import TensorDataset

        from mlwright.torch import TorchConfig, train_torch

        def pair(rows: np.ndarray) -> TensorDataset:
            return TensorDataset(torch.from_numpy(x[rows]), torch.from_numpy(y[rows]))

        model = train_torch(TorchConfig.from_mapping(raw), out, model_factory=torch_mlp,
                            data=(pair(tr), pair(va)), verbose=False)  # fmt: skip
        native = torch_mlp(raw["params"]).eval()  # the eager module, from the package's weights
        native.load_state_dict(torch.load(out / "model" / "state_dict.pt", weights_only=True))
    elif kind == "keras":
        from mlwright.keras import KerasConfig, train_keras

        model = train_keras(KerasConfig.from_mapping(raw), out, model_factory=keras_mlp,
                            data=((x[tr], y[tr]), (x[va], y[va])), verbose=False)  # fmt: skip
        import keras

        native = keras.saving.load_model(out / "model" / "model.keras")
    else:
        from flax import nnx

        from mlwright.jax import JaxConfig, load_state, train_jax

        model = train_jax(JaxConfig.from_mapping(raw), out, model_factory=jax_mlp,
                          data=((x[tr], y[tr]), (x[va], y[va])), verbose=False)  # fmt: skip
        native = load_state(jax_mlp(raw["params"], nnx.Rngs(1)), out / "model" / "state.msgpack")
        native.eval()
    return model, native, time.perf_counter() - started


def native_scorer(kind: str, native: Any) -> Any:
    if kind == "torch":
        import torch

        def score(batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return native(torch.from_numpy(batch)).numpy()

        return score
    if kind == "keras":
        return lambda batch: np.asarray(native(batch, training=False))
    from flax import nnx

    forward = nnx.jit(lambda m, b: m(b))
    return lambda batch: np.asarray(forward(native, batch))


def timed(score: Any, batch: np.ndarray, repeats: int = 30) -> float:
    score(batch)  # compiled and warm
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        score(batch)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_scores(table: dict[str, Any], raw: np.ndarray) -> dict[str, float]:
    y = table["y"][table["test"]]
    if table["loss"] == "mse":
        return {"test RMSE": float(np.sqrt(np.mean((raw[:, 0] - y) ** 2)))}
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    proba = shifted / shifted.sum(axis=1, keepdims=True)
    chosen = np.clip(proba[np.arange(len(y)), y], 1e-15, 1)
    return {"test accuracy": float(np.mean(proba.argmax(axis=1) == y)),
            "test log loss": float(-np.mean(np.log(chosen)))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "nets.md")
    args = parser.parse_args()
    rows = []
    for name in TABLES:
        table = prepared(name)
        test_x = table["x"][table["test"]]
        batch = test_x[:1000]
        for kind in ("torch", "keras", "jax"):
            with tempfile.TemporaryDirectory() as tmp:
                model, native, seconds = train(
                    kind, table, args.epochs, args.hidden, Path(tmp) / "pkg"
                )
                served = model.raw({"input": test_x})
                native_out = native_scorer(kind, native)(test_x).reshape(len(test_x), -1)
                gap = float(np.max(np.abs(served - native_out)))
                t_native = timed(native_scorer(kind, native), batch)
                t_served = timed(lambda b, m=model: m.raw({"input": b}), batch)
                rows.append({
                    "table": name, "task": table["entry"].task, "framework": kind,
                    "epochs": len(model.recipe.history), "best": model.recipe.best_epoch,
                    "seconds": seconds, "gap": gap, "native_ms": t_native * 1e3,
                    "served_ms": t_served * 1e3, **test_scores(table, served),
                })  # fmt: skip
                print(rows[-1], flush=True)
    write(rows, args)


def write(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    lines = [
        "# One network, three frameworks: train-torch, train-keras, train-jax",
        "",
        f"Command: `python bench/nets_bench.py --epochs {args.epochs} --hidden {args.hidden}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; Keras on JAX. Tables from the judging half "
        "(bench/catalogue.py): no rule, portfolio or threshold was learned on them.",
        "",
        "Same split (test 20%, validation 12.5%, seed 0), the same MLP (2 × "
        f"{args.hidden} ReLU, dropout 0.1), AdamW, one-cycle, clipping at 1.0, batch 128, "
        "patience 5. Scores are the served model's on the test rows. *Served vs native*: the "
        "largest difference between the served outputs and the native model's on the test rows. "
        "*Scoring 1,000 rows*: median of 30 calls; the ratio is the served model's time over the "
        "native model's in the same run (below 1: the served model is faster). For torch the "
        "served model is the `torch.export` program, for Keras and JAX the ONNX model.",
        "",
    ]
    for name in dict.fromkeys(r["table"] for r in rows):
        part = [r for r in rows if r["table"] == name]
        scores = [k for k in part[0] if k.startswith("test ")]
        lines += [f"## {name} ({part[0]['task']})", "",
                  "| framework | " + " | ".join(scores) + " | epochs (best) | training s | "
                  "served vs native, max difference | scoring 1,000 rows: native ms | served ms | "
                  "served / native |",
                  "|---|" + "---:|" * (len(scores) + 6)]  # fmt: skip
        for r in part:
            lines.append(
                f"| {r['framework']} | "
                + " | ".join(f"{r[k]:.4f}" for k in scores)
                + f" | {r['epochs']} ({r['best']}) | {r['seconds']:.1f} | {r['gap']:.1e} | "
                f"{r['native_ms']:.2f} | {r['served_ms']:.2f} | "
                f"{r['served_ms'] / r['native_ms']:.2f} |"
            )
        lines.append("")
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
