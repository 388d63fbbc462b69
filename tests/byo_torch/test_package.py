"""`mlwright train-torch` end to end: a registered package that serves without the user's code,
validated requests, the report, search over config ranges, export to ONNX and Triton."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

import mlwright as mw
from mlwright.errors import ConfigError
from mlwright.package.tensor import TensorModel, check_tensor_golden
from mlwright.serve.app import app_from_spec
from mlwright.torch import TorchConfig, train

pytest.importorskip("onnxruntime", reason="pip install 'mlwright[onnx]' (make test installs it)")

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def digits(name: str, **changes: Any) -> TorchConfig:
    raw: dict[str, Any] = {
        "name": name,
        "model": "examples.digits_cnn:make_model",
        "data": "examples.digits_cnn:make_data",
        "loss": "cross_entropy",
        "metrics": ["accuracy"],
        "params": {"channels": 4, "dropout": 0.0},
        "data_params": {"rows": 300},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.01, "monitor": "accuracy"},
        "output": {"classes": CLASSES},
    }
    for key, value in changes.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and key in raw else value
    return TorchConfig.from_mapping(raw)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> TensorModel:
    out = tmp_path_factory.mktemp("torch") / "digits"
    return train(digits("digits-pkg"), out, verbose=False)


@pytest.fixture(scope="module")
def tokens_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The token model, trained through the CLI (dict inputs, int64, variable length)."""
    from mlwright.cli.main import run

    folder = tmp_path_factory.mktemp("tokens")
    config = {
        "name": "tokens-bag",
        "model": "tests.byo_torch.tokens:make_model",
        "data": "tests.byo_torch.tokens:make_data",
        "metrics": ["accuracy"],
        "params": {"vocab": 12, "dim": 8},
        "data_params": {"rows": 60, "seed": 0, "vocab": 12},
        "train": {"epochs": 2, "batch_size": 1, "lr": 0.05},
    }
    path = folder / "tokens.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = sys.argv
    sys.argv = ["mlwright", "train-torch", "--config", str(path), "--out", str(folder / "pkg"),
                "--checkpoint-dir", str(folder / "ckpt"), "--quiet"]  # fmt: skip
    code: object = 0
    try:
        run()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = argv
    assert not code, "train-torch failed"
    return folder / "pkg"


def client(model_path: Path, tmp_path: Path) -> TestClient:
    settings = {"store": str(tmp_path / "serve.db")}
    spec = {"MLWRIGHT_SERVE_PACKAGE": str(model_path), "MLWRIGHT_SERVE_NAME": "served",
            "MLWRIGHT_SERVE_SETTINGS": json.dumps(settings)}  # fmt: skip
    return TestClient(app_from_spec(spec))


# --- the package ----------------------------------------------------------------------------------


def test_the_package_holds_program_weights_onnx_spec_golden_and_report(
    package: TensorModel,
) -> None:
    root = package.path
    assert root is not None
    manifest = json.loads((root / "mlwright.json").read_text())
    assert manifest["kind"] == "torch"
    for rel in ("model/program.pt2", "model/state_dict.pt", "model/model.onnx", "spec.json",
                "golden/inputs.json", "report/report.html", "report/report.md"):  # fmt: skip
        assert rel in manifest["files"], rel
    spec = json.loads((root / "spec.json").read_text())
    assert spec["inputs"] == [{"name": "input", "shape": [1, 8, 8], "dtype": "float32"}]
    assert spec["classes"] == CLASSES and spec["output"] == "softmax"
    export = package.recipe["export"]
    assert export["program"]["max_abs_difference"] < 1e-5
    assert export["onnx"]["status"] == "ok" and export["onnx"]["max_abs_difference"] < 1e-4
    # the weights load into the user's factory and give the program's outputs
    import torch
    from examples.digits_cnn import make_model

    net = make_model({"channels": 4, "dropout": 0.0}).eval()
    net.load_state_dict(torch.load(root / "model/state_dict.pt", weights_only=True))
    batch = np.asarray([r["input"] for r in package.golden["inputs"]], dtype="float32")
    with torch.no_grad():
        eager = net(torch.from_numpy(batch)).double().numpy()
    np.testing.assert_allclose(package.raw({"input": batch}), eager, atol=1e-5)
    # the evaluation is the packaged program's, on the 60 held-out items
    assert package.evidence["rows"] == 60 and package.evidence["on"] == "validation"
    report = (root / "report" / "report.md").read_text()
    for title in ("Problem and data", "Model", "Training", "Evaluation", "Deployment",
                  "Reproducibility"):  # fmt: skip
        assert f". {title}" in report
    assert "data:image/png;base64," in (root / "report" / "report.html").read_text()
    assert package.report().markdown().startswith("# ML Solution: digits-pkg")


def test_it_is_registered_and_loads_by_alias(package: TensorModel) -> None:
    assert package.registry is not None and package.registry["alias"] == "champion"
    loaded = mw.load(f"{package.registry['name']}@champion")
    assert isinstance(loaded, TensorModel)
    assert check_tensor_golden(loaded) == []
    assert loaded.registry == {"name": "digits-pkg", "version": package.registry["version"]}
    assert "version " + package.registry["version"] in loaded.report().markdown()


def test_tabular_commands_refuse_a_torch_package_and_report_renders_it(
    package: TensorModel, cli: Callable[..., Any], tmp_path: Path
) -> None:
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    result = cli("predict", str(package.path), str(data), "--output", str(tmp_path / "p.csv"))
    assert result.code == 1
    assert "PyTorch model" in result.err and "mlwright serve" in result.err
    # the report command renders a torch package's own report
    written = cli("report", str(package.path), "--output", str(tmp_path / "r.html"))
    assert written.code == 0, written.err
    assert "ML Solution: digits-pkg" in (tmp_path / "r.html").read_text()


def test_the_cli_trains_keyword_int_variable_length_inputs_that_serve_without_user_code(
    tokens_package: Path, tmp_path: Path
) -> None:
    spec = json.loads((tokens_package / "spec.json").read_text())
    assert spec["inputs"] == [{"name": "tokens", "shape": [None], "dtype": "int64"}]
    assert spec["keyword"] is True and spec["task"] == "classification"
    # a fresh interpreter in a folder where the user's module cannot be imported
    script = (
        "import sys, json; sys.path = [p for p in sys.path if p not in ('', '.')]\n"
        "import mlwright as mw\n"
        f"m = mw.load({str(tokens_package)!r})\n"
        "out = m.predict([{'tokens': [1, 2, 3, 4, 5]}, {'tokens': [3, 3, 3, 3, 3, 3, 3, 3, 3]}])\n"
        "print(json.dumps(out['prediction'].tolist()))\n"
        "print('tests.byo_torch.tokens' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    predictions, imported = done.stdout.strip().splitlines()
    assert len(json.loads(predictions)) == 2 and imported == "False"


# --- serving --------------------------------------------------------------------------------------


def test_the_server_gates_serves_and_names_every_bad_input(
    package: TensorModel, tmp_path: Path
) -> None:
    assert package.path is not None and package.golden is not None
    golden = package.golden
    with client(package.path, tmp_path) as http:
        assert http.get("/ready").json()["status"] == "ready"
        answer = http.post("/v1/predict", json={"records": golden["inputs"]})
        assert answer.status_code == 200
        body = answer.json()
        assert body["model"] == {"name": "served", "version": None, "variant": "champion"}
        for got, want in zip(body["predictions"], golden["expected"], strict=True):
            assert got["prediction"] == want["prediction"]
            assert got["prediction_id"].startswith(body["request_id"])
            assert abs(got["proba_three"] - want["proba_three"]) < 1e-6
        image = golden["inputs"][0]["input"]
        bad = http.post("/v1/predict", json={"records": [
            {"input": image},
            {"input": image[0]},  # (8, 8): the channel dimension is missing
            {"input": [[["x"] * 8] * 8]},
            {"image": image},
            {"input": [[[0.0] * 8] * 7]},
        ]})  # fmt: skip
        assert bad.status_code == 422
        errors = {(e["record"], e["field"]): e for e in bad.json()["errors"]}
        assert "shape (8, 8) does not fit" in errors[(1, "input")]["reason"]
        assert "float32 of shape (1, 8, 8)" in errors[(1, "input")]["fix"]
        assert errors[(2, "input")]["reason"] == "the values are not all numbers"
        assert errors[(3, "image")]["reason"] == "the model has no such input"
        assert errors[(3, "input")]["reason"] == "the input is missing"
        assert "shape (1, 7, 8)" in errors[(4, "input")]["reason"]
        assert 0 not in {record for record, _ in errors}
        for body_bytes in (b"{not json", b'{"records": []}', b'{"rows": [1]}'):
            refused = http.post(
                "/v1/predict", content=body_bytes, headers={"content-type": "application/json"}
            )
            assert refused.status_code == 422
            assert refused.json()["errors"][0]["fix"]
        mlflow_style = http.post("/invocations", json={"inputs": {"input": [image, image]}})
        assert mlflow_style.status_code == 200
        assert len(mlflow_style.json()["predictions"]) == 2
        documented = http.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]
        record = documented["requestBody"]["content"]["application/json"]["schema"]
        image_schema = record["properties"]["records"]["items"]["properties"]["input"]
        assert image_schema["description"] == "float32 of shape (1, 8, 8)"
        models = http.get("/v1/models").json()["models"][0]
        assert models["kind"] == "torch" and models["inputs"][0]["shape"] == [1, 8, 8]
        metrics = http.get("/metrics").text
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("mlwright_predictions_total")
    )
    assert served == len(golden["inputs"]) + 2  # the gate's own check is not traffic
    with sqlite3.connect(tmp_path / "serve.db") as db:
        rows = db.execute("SELECT SUM(n) FROM requests").fetchone()[0]
    assert rows == len(golden["inputs"]) + 2


def test_integer_inputs_take_whole_numbers_and_any_length(
    tokens_package: Path, tmp_path: Path
) -> None:
    with client(tokens_package, tmp_path) as http:
        ok = http.post("/v1/predict", json={"records": [{"tokens": [1, 2]},
                                                         {"tokens": [3] * 30}]})  # fmt: skip
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == 2
        bad = http.post("/v1/predict", json={"records": [{"tokens": [1.5, 2]},
                                                          {"tokens": [[1, 2]]}]})  # fmt: skip
        assert bad.status_code == 422
        reasons = [e["reason"] for e in bad.json()["errors"]]
        assert reasons[0] == "int64 needs whole numbers"
        assert reasons[1].startswith("shape (1, 2) does not fit")
        beyond = http.post("/v1/predict", json={"records": [{"tokens": [1, 999]}]})
        assert beyond.status_code == 422
        assert "cannot score" in beyond.json()["errors"][0]["reason"]


# --- search, validation -------------------------------------------------------------------------


def test_a_search_tries_the_ranges_and_packages_the_best_configuration(tmp_path: Path) -> None:
    config = digits(
        "digits-search",
        search={
            "trials": 4,
            "ranges": {
                "train.lr": {"low": 0.002, "high": 0.05, "log": True},
                "params.channels": [2, 6],
            },
        },
        tracker="none",
    )
    model = train(config, tmp_path / "pkg", verbose=False)
    record = model.recipe["search"]
    assert [t["number"] for t in record["trials"]] == [0, 1, 2, 3]
    complete = [t for t in record["trials"] if t["state"] == "complete"]
    best = max(complete, key=lambda t: t["score"])
    assert record["best_trial"] == best["number"]
    resolved = model.recipe["config"]
    assert resolved["search"] is None
    assert resolved["train"]["lr"] == best["values"]["train.lr"]
    assert resolved["params"]["channels"] == best["values"]["params.channels"]
    assert "Search" in (tmp_path / "pkg" / "report" / "report.md").read_text()


def test_training_without_validation_is_refused_unless_allowed_and_then_reported(
    tmp_path: Path,
) -> None:
    import torch
    from torch.utils.data import TensorDataset

    x = torch.rand(40, 1, 8, 8)
    data = (TensorDataset(x, torch.randint(0, 10, (40,))), None)
    with pytest.raises(ConfigError, match="no validation data"):
        train(digits("digits-noval", tracker="none"), tmp_path / "a", data=data, verbose=False)
    config = digits("digits-noval", tracker="none", train={"allow_no_validation": True})
    model = train(config, tmp_path / "b", data=data, verbose=False)
    assert model.evidence is not None and model.evidence["on"] == "training (no validation)"
    report = (tmp_path / "b" / "report" / "report.md").read_text()
    assert "trained without validation data" in report


# --- export ---------------------------------------------------------------------------------------


def test_export_to_onnx_and_a_triton_repository(
    package: TensorModel, cli: Callable[..., Any], tmp_path: Path
) -> None:
    import onnxruntime

    assert package.path is not None
    done = cli("export", str(package.path), "--format", "onnx", "--output", str(tmp_path / "o"))
    assert done.code == 0, done.err
    assert "reproduces the 8 golden examples" in done.out
    session = onnxruntime.InferenceSession(str(tmp_path / "o" / "model.onnx"))
    images = np.random.default_rng(0).random((17, 1, 8, 8)).astype("float32")
    got = session.run(None, {"input": images})[0]
    np.testing.assert_allclose(got, package.raw({"input": images}), atol=1e-4)

    done = cli("export", str(package.path), "--format", "triton", "--output", str(tmp_path / "t"))
    assert done.code == 0, done.err
    model_dir = tmp_path / "t" / "digits-pkg"
    assert (model_dir / "1" / "model.onnx").is_file()
    config = (model_dir / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config
    assert '{ name: "input" data_type: TYPE_FP32 dims: [ 1, 8, 8 ] }' in config
    assert 'name: "output" data_type: TYPE_FP32 dims: [ 10 ] label_filename: "labels.txt"' in config
    assert (model_dir / "labels.txt").read_text().split() == CLASSES
    # an export replaces an earlier export, never another folder
    assert cli("export", str(package.path), "-f", "onnx", "-o", str(tmp_path / "o")).code == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    refused = cli("export", str(package.path), "-f", "onnx", "-o", str(tmp_path / "mine"))
    assert refused.code == 1 and "not an earlier export" in refused.err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
