"""Small Keras and Flax runs of the examples, shared by the tests of this folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Keras runs on JAX here, as train-keras's default; a test of another backend runs its own process
os.environ.setdefault("KERAS_BACKEND", "jax")
CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def example(file: str, **changes: Any) -> dict[str, Any]:
    """examples/FILE.yaml at test size, with ``changes`` merged into its sections."""
    raw: dict[str, Any] = yaml.safe_load((ROOT / "examples" / f"{file}.yaml").read_text())
    # batches that divide the examples: JAX compiles each batch shape once per run
    small = {
        "digits_cnn": {"params": {"channels": 4, "dropout": 0.2}, "data_params": {"rows": 300},
                       "train": {"epochs": 2, "batch_size": 60, "patience": None}},
        "sequence_gru": {"params": {"hidden": 8},
                         "data_params": {"length": 8, "train_rows": 256, "valid_rows": 64},
                         "train": {"epochs": 2, "batch_size": 32, "patience": None}},
    }  # fmt: skip
    for key, value in {**small[file.split("_", 1)[1]], **changes}.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and key in raw else value
    return raw


def cli_train(kind: str, config: dict[str, Any], folder: Path, *extra: str) -> Path:
    """``mlwright train-KIND`` in this process on ``config``; the package folder."""
    from mlwright.cli.main import run

    path = folder / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = sys.argv
    sys.argv = ["mlwright", f"train-{kind}", "--config", str(path), "--output",
                str(folder / "pkg"), "--checkpoint-dir", str(folder / "ckpt"), "--quiet",
                *extra]  # fmt: skip
    code: object = 0
    try:
        run()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = argv
    assert not code, f"train-{kind} failed"
    return folder / "pkg"


def train_on_backend(backend: str, folder: Path) -> dict[str, Any]:
    """The tiny digits CNN trained by ``mlwright train-keras`` on ``backend`` in its own
    process (Keras picks its backend once per process); the package's recipe."""
    import json
    import subprocess

    config = example("keras_digits_cnn", name=f"digits-keras-{backend}", backend=backend,
                     tracker="none", train={"epochs": 1})  # fmt: skip
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "mlwright", "train-keras", "-c", str(path), "-o",
         str(folder / "pkg"), "--checkpoint-dir", str(folder / "ckpt"), "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    recipe: dict[str, Any] = json.loads((folder / "pkg" / "recipe.json").read_text())
    return recipe


@pytest.fixture(autouse=True)
def _examples_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
