"""GPU check: the digits CNN (mlwright.torch) and the tabular MLP family on CUDA with mixed
precision, against the CPU of the same machine.

Usage:  python bench/gpu_check.py [--scale 20] [--epochs 3] [--rows 200000] [--out FILE.md]

Each measurement runs in its own process; the CPU runs hide the GPU (``CUDA_VISIBLE_DEVICES=""``)
so that both families choose their device as they would for a user ("auto"). Measured:

- digits CNN: the 1,797 bundled 8×8 images repeated ``--scale`` times (each copy with a little
  noise), 80/20 split, ``--epochs`` epochs, batch 256; training throughput in images per second
  over the epochs' own time (validation included), and the final validation accuracy;
- tabular MLP: ``mlwright.train(..., families=("mlp",), max_trials=1)`` on a generated
  ``--rows`` × 30 binary table; the whole run's wall time and rows per second.

Without a CUDA device the CPU numbers are printed and nothing is written: the result file is a
GPU record.
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
from typing import Any

ROOT = Path(__file__).resolve().parent


def digits_run(scale: int, epochs: int) -> dict[str, Any]:
    import torch
    from sklearn.datasets import load_digits
    from torch.utils.data import TensorDataset

    sys.path.insert(0, str(ROOT.parent))
    from mlwright.torch import TorchConfig, fit

    images = torch.tensor(load_digits().images, dtype=torch.float32).unsqueeze(1) / 16.0
    target = torch.tensor(load_digits().target)
    g = torch.Generator().manual_seed(0)
    noisy = [images + 0.05 * torch.randn(images.shape, generator=g) for _ in range(scale)]
    data = TensorDataset(torch.cat(noisy), target.repeat(scale))
    config = TorchConfig.from_yaml(ROOT.parent / "examples" / "digits_cnn.yaml")
    loop = config.train.model_copy(update={"epochs": epochs, "batch_size": 256, "patience": None})
    config = config.model_copy(update={"train": loop, "tracker": ("none",)})
    started = time.perf_counter()
    result = fit(config, data=data, verbose=False)
    wall = time.perf_counter() - started
    seconds = sum(e.seconds for e in result.history)
    n_train = len(data) - round(len(data) * config.train.validation_share)
    return {
        "device": result.device,
        "amp": result.device.startswith("cuda"),
        "examples": n_train * epochs,
        "seconds": seconds,
        "wall": wall,
        "throughput": n_train * epochs / seconds,
        "accuracy": result.history[-1].metrics["accuracy"],
    }


def mlp_run(rows: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    import torch

    import mlwright as mw

    r = np.random.default_rng(0)
    x = r.normal(size=(rows, 30))
    logit = x[:, :10] @ r.normal(size=10) + np.sin(x[:, 10] * 2)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(30)])
    frame["y"] = r.random(rows) < 1 / (1 + np.exp(-logit))
    started = time.perf_counter()
    model = mw.train(frame, target="y", families=("mlp",), max_trials=1, seed=0, tracker="none",
                     out="/tmp/mlwright-gpu-check-mlp")  # fmt: skip
    wall = time.perf_counter() - started
    device = "cuda" if torch.cuda.is_available() else "cpu"
    cv = model.recipe.get("cv", {})
    return {
        "device": device,
        "amp": device == "cuda",
        "rows": rows,
        "wall": wall,
        "throughput": rows / wall,
        "cv": cv.get("mean"),
        "metric": cv.get("metric"),
    }


def measure(task: str, cpu: bool, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    if cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    command = [sys.executable, __file__, "--child", task, "--scale", str(args.scale),
               "--epochs", str(args.epochs), "--rows", str(args.rows)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{task} ({'cpu' if cpu else 'gpu'}) failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "gpu.md")
    parser.add_argument("--child", choices=["digits", "mlp"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "digits":
        print(json.dumps(digits_run(args.scale, args.epochs)))
        return 0
    if args.child == "mlp":
        print(json.dumps(mlp_run(args.rows)))
        return 0
    import torch

    has_cuda = torch.cuda.is_available()
    results: dict[str, dict[str, Any]] = {}
    for task in ("digits", "mlp"):
        results[f"{task} cpu"] = measure(task, True, args)
        print(task, "cpu", results[f"{task} cpu"], flush=True)
        if has_cuda:
            results[f"{task} gpu"] = measure(task, False, args)
            print(task, "gpu", results[f"{task} gpu"], flush=True)
    if not has_cuda:
        print("no CUDA device: the CPU numbers are above; nothing was written")
        return 0
    name = torch.cuda.get_device_name(0)
    command = "python bench/gpu_check.py " + " ".join(sys.argv[1:])
    lines = [
        "# GPU check: mlwright.torch and the tabular MLP on CUDA with mixed precision",
        "",
        f"Command: `{command.strip()}` · GPU: {name} · CPU: {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}) · torch {torch.__version__}",
        "",
        "| task | device | mixed precision | throughput | wall (s) | quality | GPU vs CPU |",
        "|---|---|---|---:|---:|---|---:|",
    ]
    for task, unit, quality in (("digits", "images/s", "accuracy"), ("mlp", "rows/s", "cv")):
        cpu, gpu = results[f"{task} cpu"], results[f"{task} gpu"]
        for run in (cpu, gpu):
            score = run.get(quality)
            lines.append(
                f"| {task} | {run['device']} | {'yes' if run['amp'] else 'no'} | "
                f"{run['throughput']:,.0f} {unit} | {run['wall']:.1f} | "
                f"{quality} {score:.4f} | "
                + (f"{gpu['throughput'] / cpu['throughput']:.2f}×" if run is gpu else "1.00×")
                + " |"
            )
    lines += [
        "",
        f"digits: the bundled images × {args.scale} with noise, {args.epochs} epochs, batch "
        f"256; throughput over the epochs' own time. mlp: {args.rows:,} × 30 generated rows, "
        "one trial, whole run (validation folds, refit, package) in the wall time.",
    ]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
