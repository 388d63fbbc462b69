"""Benchmark: `mlwright audit` over 10,000 generated ML files, against `ruff check` on the same.

Usage:  python bench/audit_bench.py [--files 10000] [--out bench/results/audit.md]

The files are generated (seeded) from ML-script building blocks — data loading, splits,
scikit-learn and XGBoost models, PyTorch models with training and inference loops, tracking,
saving, helpers — so that every rule has something to look at; 5% are notebooks and 0.5% do
not parse. Sizes vary from about 30 to 600 lines. Each tool runs once as a user would (a fresh
process over the whole folder, every core); the audit's wall time includes Python's start-up,
discovery, parsing, every rule and writing the JSON report. ruff (`ruff check --no-cache
--select ALL --output-format json`, a general-purpose linter written in Rust) is the yardstick
for how fast a static pass over the same bytes can be.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BLOCKS = [
    """import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.ensemble import RandomForestClassifier

df = pd.read_csv("data_{i}.csv")
df["age"] = pd.to_numeric(df["age"], errors="coerce")
X = df.drop(columns="label")
y = df["label"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2)
model = RandomForestClassifier(n_estimators={n}, max_depth=8)
model.fit(X_train, y_train)
print(model.score(X_test, y_test))
""",
    """import torch
from torch import nn
from torch.utils.data import DataLoader


class Net{i}(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.rnn = nn.GRU(8, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def train_{i}(dataset, epochs):
    model = Net{i}(hidden=64)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    loader = DataLoader(dataset, batch_size=32, shuffle=True)
    for epoch in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(xb).squeeze(-1), yb)
            loss.backward()
            opt.step()
    torch.save(model.state_dict(), "model.pt")
    return model


def predict_{i}(model, x):
    return model(x)
""",
    """import logging
import mlflow
import xgboost as xgb
from sklearn.model_selection import KFold

log = logging.getLogger(__name__)


def fit_{i}(X, y, params, seed):
    scores = []
    for train_idx, valid_idx in KFold(5, shuffle=True, random_state=seed).split(X):
        booster = xgb.XGBRegressor(**params, random_state=seed)
        booster.fit(X[train_idx], y[train_idx], eval_set=[(X[valid_idx], y[valid_idx])])
        scores.append(booster.score(X[valid_idx], y[valid_idx]))
    with mlflow.start_run():
        mlflow.log_params(params)
        mlflow.log_metric("cv", sum(scores) / len(scores))
    return scores
""",
    """def load_all_{i}(paths):
    frames = []
    for path in paths:
        try:
            frames.append(read(path))
        except Exception:
            continue
    return frames


def clean_{i}(frame):
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].str.strip().str.lower()
    out = out.drop_duplicates()
    assert len(out) > 0, "no rows left"
    return out
""",
    """from sklearn.preprocessing import StandardScaler
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LogisticRegression

scaler = StandardScaler()
features_{i} = scaler.fit_transform(features)
a, b, c, d = train_test_split(features_{i}, target, random_state=0)
clf = LogisticRegression(C={c})
clf.fit(a, c)
""",
    '''def summarise_{i}(values):
    """Mean, spread and range of a list of numbers."""
    if not values:
        return {{"n": 0}}
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / max(n - 1, 1)
    return {{"n": n, "mean": mean, "sd": var ** 0.5, "min": min(values), "max": max(values)}}


class Window{i}:
    def __init__(self, size):
        self.size = size
        self.items = []

    def push(self, value):
        self.items.append(value)
        if len(self.items) > self.size:
            self.items.pop(0)
        return summarise_{i}(self.items)
''',
]


def generate(folder: Path, n: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    total = 0
    for i in range(n):
        parts = [
            rng.choice(BLOCKS).format(i=j, n=rng.choice([100, 300]), c=rng.choice([0.1, 1.0]))
            for j in range(rng.randint(1, 12))
        ]
        code = "\n\n".join(parts)
        if rng.random() < 0.005:
            code += "\ndef broken(:\n    pass\n"
        sub = folder / f"pkg{i % 50}"
        sub.mkdir(exist_ok=True)
        if rng.random() < 0.05:
            cells = [{"cell_type": "code", "source": p.splitlines(keepends=True), "metadata": {},
                      "outputs": [], "execution_count": None} for p in parts]  # fmt: skip
            text = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                               "nbformat_minor": 5})  # fmt: skip
            (sub / f"explore_{i}.ipynb").write_text(text)
        else:
            (sub / f"script_{i}.py").write_text(code)
        total += code.count("\n") + 1
    return total


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "audit.md")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mlwright-audit-bench-"))
    try:
        lines = generate(folder, args.files)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        report = folder.parent / f"{folder.name}.json"
        audit_s, audit = timed([sys.executable, "-m", "mlwright", "audit", str(folder),
                                "--format", "json", "--output", str(report),
                                "--fail-on", "high"])  # fmt: skip
        data = json.loads(report.read_text())
        report.unlink()
        ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
        ruff_s, ruffed = timed([ruff, "check", "--no-cache", "--select", "ALL", "--output-format",
                                "json", "--exit-zero", str(folder)])  # fmt: skip
        ruff_findings = len(json.loads(ruffed.stdout or "[]"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    by_rule: dict[str, int] = {}
    for finding in data["findings"]:
        by_rule[finding["rule"]] = by_rule.get(finding["rule"], 0) + 1
    command = "python bench/audit_bench.py " + " ".join(sys.argv[1:])
    out = [
        "# `mlwright audit` speed",
        "",
        f"Command: `{command.strip()}` · {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}) · Python {platform.python_version()}",
        "",
        f"{data['files']:,} generated files ({lines:,} lines, {size / 1e6:.1f} MB; 5% notebooks, "
        "0.5% that do not parse), one fresh process per tool over the whole folder.",
        "",
        "| tool | wall (s) | files/s | findings | vs ruff |",
        "|---|---:|---:|---:|---:|",
        f"| mlwright audit (every rule, JSON report) | {audit_s:.1f} | "
        f"{data['files'] / audit_s:,.0f} | {len(data['findings']):,} | "
        f"{audit_s / ruff_s:.1f}× the time |",
        f"| ruff check --select ALL | {ruff_s:.1f} | {data['files'] / ruff_s:,.0f} | "
        f"{ruff_findings:,} | 1.0× |",
        "",
        f"Target: 10,000 files in ≤ 30 s on 2 cores — {'met' if audit_s <= 30 else 'NOT met'} "
        f"({audit_s:.1f} s for {data['files']:,} files; exit status {audit.returncode}).",
        "",
        "Findings by rule: " + ", ".join(f"{k} {v:,}" for k, v in sorted(by_rule.items())) + ".",
    ]
    args.out.write_text("\n".join(out) + "\n", encoding="utf-8")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
