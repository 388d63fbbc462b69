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


BLOCKED = ("jax", "jaxlib", "flax", "optax", "jax2onnx", "keras", "tensorflow", "torch")

SERVE = """
import json, sys
BLOCKED = {blocked!r}
for name in BLOCKED:  # as if not installed: importing fails, importlib.util.find_spec is None
    sys.modules[name] = None
from fastapi.testclient import TestClient
import mlwright as mw
from mlwright.package.tensor import check_tensor_golden
from mlwright.serve.app import app_from_spec

model = mw.load({package!r})
assert check_tensor_golden(model) == [], "golden"
settings = {{"store": {store!r}}}
spec = {{"MLWRIGHT_SERVE_PACKAGE": {package!r}, "MLWRIGHT_SERVE_SETTINGS": json.dumps(settings)}}
out = {{}}
with TestClient(app_from_spec(spec)) as http:
    out["ready"] = http.get("/ready").json()["status"]
    golden = model.golden
    answer = http.post("/v1/predict", json={{"records": golden["inputs"]}})
    out["status"] = answer.status_code
    body = answer.json()
    out["same"] = [p["prediction"] for p in body["predictions"]] == [
        e["prediction"] for e in golden["expected"]]
    bad = http.post("/v1/predict", json={{"records": [{{"input": [[1.0]]}}]}})
    out["bad"] = [bad.status_code, bad.json()["errors"][0]["field"]]
    pid = body["predictions"][0]["prediction_id"]
    label = golden["expected"][0]["prediction"]
    sent = {{"prediction_id": pid, "label": label}}
    out["feedback"] = http.post("/v1/feedback", json=sent).status_code
    out["kind"] = http.get("/v1/models").json()["models"][0]["kind"]
    out["metrics"] = "mlwright_predictions_total" in http.get("/metrics").text
out["loaded"] = sorted(m for m, v in sys.modules.items() if m.split(".")[0] in BLOCKED and v)
print(json.dumps(out))
"""


def serve_without_frameworks(package: Path, folder: Path) -> dict[str, Any]:
    """Load and serve ``package`` in a fresh interpreter where the training frameworks cannot be
    imported: what the gate, a good and a bad request, feedback, /v1/models and /metrics gave,
    and which of the frameworks were imported (none, when it works)."""
    import json
    import subprocess

    script = SERVE.format(blocked=BLOCKED, package=str(package), store=str(folder / "serve.db"))
    done = subprocess.run([sys.executable, "-c", script], cwd=folder, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


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
