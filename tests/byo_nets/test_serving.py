"""Keras and JAX packages served by their ONNX model, in an interpreter where JAX, Flax, Keras,
TensorFlow and torch cannot be imported: the gate, validated requests, metrics, the serving store
and feedback, as for PyTorch packages. A crafted ONNX model that names a file outside the
package is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mlwright as mw
from mlwright.jax import JaxConfig
from mlwright.keras import KerasConfig
from mlwright.package.store import PackageError
from tests.byo_nets.conftest import CLASSES, example
from tests.security.packages import recompute_manifest

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


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("served")
    keras_config = KerasConfig.from_mapping(
        example(
            "keras_digits_cnn",
            name="served-keras",
            tracker="none",
            output={"classes": CLASSES},
            train={"epochs": 1},
        )
    )
    jax_config = JaxConfig.from_mapping(
        example("flax_sequence_gru", name="served-jax", tracker="none", train={"epochs": 1})
    )
    return {
        "keras": mw.train_keras(keras_config, folder / "keras", verbose=False).path,
        "jax": mw.train_jax(jax_config, folder / "jax", verbose=False).path,
    }  # type: ignore[dict-item]


@pytest.mark.parametrize("kind", ["keras", "jax"])
def test_served_without_any_training_framework(
    packages: dict[str, Path], kind: str, tmp_path: Path
) -> None:
    script = SERVE.format(blocked=BLOCKED, package=str(packages[kind]),
                          store=str(tmp_path / "serve.db"))  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ready"] == "ready" and out["status"] == 200 and out["same"]
    assert out["bad"] == [422, "input"]
    assert out["feedback"] in (200, 201, 202) and out["metrics"] and out["kind"] == kind
    assert out["loaded"] == []


def test_an_onnx_model_that_names_an_outside_file_is_refused(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    """Whoever makes a package writes its manifest: the checksums pass, the ONNX model's
    external data (a path to any file on the server) must not be read."""
    import shutil

    import onnx

    crafted = tmp_path / "crafted"
    shutil.copytree(packages["jax"], crafted)
    proto = onnx.load(str(crafted / "model" / "model.onnx"))
    weight = max(proto.graph.initializer, key=lambda t: len(t.raw_data) + len(t.float_data))
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 4096)
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    del weight.external_data[:]
    for key, value in (("location", str(secret)), ("offset", "0")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(crafted / "model" / "model.onnx"))
    recompute_manifest(crafted)
    with pytest.raises(PackageError, match="does not load"):
        mw.load(crafted)
