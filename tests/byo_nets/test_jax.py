"""`mlwright train-jax` end to end on the Flax examples at small size: the package (the
module's msgpack state, an ONNX model within 1e-5 of it), served where no training framework can
be imported (and a crafted ONNX model refused), exact resume with dropout, clipping, search and
bad data named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mlwright as mw
from mlwright.errors import ConfigError, SchemaViolationError
from mlwright.jax import JaxConfig
from mlwright.package.store import PackageError
from mlwright.package.tensor import TensorModel, check_tensor_golden
from tests.byo_nets.conftest import cli_train, example, serve_without_frameworks
from tests.security.packages import recompute_manifest


@pytest.fixture(scope="module")
def gru(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = example("flax_sequence_gru", name="adding-flax")
    return cli_train("jax", config, tmp_path_factory.mktemp("jax"))


def jax_config(name: str, **changes: object) -> JaxConfig:
    return JaxConfig.from_mapping(example(name, tracker="none", **changes))


def test_the_package_holds_the_flax_state_and_an_onnx_model_within_1e_5(gru: Path) -> None:
    manifest = json.loads((gru / "mlwright.json").read_text())
    assert manifest["kind"] == "jax"
    assert "model/state.msgpack" in manifest["files"] and "model/model.onnx" in manifest["files"]
    model = mw.load("adding-flax@champion")
    assert isinstance(model, TensorModel) and model.kind == "jax" and model.task == "regression"
    assert model.recipe.export["onnx"]["max_abs_difference"] <= 1e-5
    assert check_tensor_golden(model) == []
    # the native state loads into the user's factory and gives the served outputs
    from examples.flax_sequence_gru import make_model
    from flax import nnx

    from mlwright.jax import load_state

    module = load_state(make_model({"hidden": 8}, nnx.Rngs(1)), gru / "model" / "state.msgpack")
    batch = np.asarray([r["input"] for r in model.golden["inputs"]], dtype="float32")
    np.testing.assert_allclose(model.raw({"input": batch})[:, 0], np.asarray(module(batch)),
                               atol=1e-5)  # fmt: skip
    assert {"flax", "optax", "jax2onnx", "onnxruntime"} <= set(model.recipe.library_versions)
    history = model.recipe.history
    assert len(history) == 2 and all(e["grad_norm"] > 0 for e in history)
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    curve = client.get_metric_history(model.recipe.run_id, "val_mae")
    assert [round(m.value, 6) for m in curve] == [round(e["metrics"]["mae"], 6) for e in history]
    assert client.get_metric_history(model.recipe.run_id, "grad_norm")  # every log_every steps
    assert "JAX (Flax) regression model" in (gru / "report" / "report.md").read_text()


def test_served_without_any_training_framework(gru: Path, tmp_path: Path) -> None:
    model = mw.load(gru)
    huge = [[1e300, 0.0]] * 8  # a float64 that float32 cannot hold
    with pytest.raises(SchemaViolationError, match="beyond float32's range"):
        model.encode([{"input": huge}])
    out = serve_without_frameworks(gru, tmp_path)
    assert out["ready"] == "ready" and out["status"] == 200 and out["same"]
    assert out["bad"] == [422, "input"] and out["feedback"] in (200, 201, 202)
    assert out["metrics"] and out["kind"] == "jax" and out["loaded"] == []


def test_an_onnx_model_that_names_an_outside_file_is_refused(gru: Path, tmp_path: Path) -> None:
    """Whoever makes a package writes its manifest: the checksums pass, the ONNX model's
    external data (a path to any file on the server) must not be read."""
    import shutil

    import onnx

    crafted = tmp_path / "crafted"
    shutil.copytree(gru, crafted)
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
    # a valid ONNX model that does not take the spec's inputs is refused at load as well
    from onnx import TensorProto, helper

    flat = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 16])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 16])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "g",
                              [flat], [out])  # fmt: skip
    onnx.save(helper.make_model(graph), str(crafted / "model" / "model.onnx"))
    recompute_manifest(crafted)
    with pytest.raises(PackageError, match=r"takes inputs of \[2\] dimensions"):
        mw.load(crafted)


def test_a_stopped_run_with_dropout_resumes_exactly(tmp_path: Path) -> None:
    from mlwright.jax import fit

    config = jax_config("flax_digits_cnn", train={"epochs": 3})
    whole = fit(config, checkpoint_dir=tmp_path / "whole", verbose=False)

    class Stop(Exception):
        pass

    def stop_after_two(epoch: object) -> None:
        if getattr(epoch, "epoch", 0) == 2:
            raise Stop

    with pytest.raises(Stop):
        fit(config, checkpoint_dir=tmp_path / "cut", on_epoch=stop_after_two, verbose=False)
    resumed = fit(config, checkpoint_dir=tmp_path / "cut", verbose=False)
    assert resumed.resumed_from == 2
    assert [e.train_loss for e in resumed.history] == [e.train_loss for e in whole.history]
    import jax

    for a, b in zip(jax.tree_util.tree_leaves(resumed.model.weights()),
                    jax.tree_util.tree_leaves(whole.model.weights()), strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)


def test_a_recurrent_model_needs_clipping_and_a_search_trains_its_best_trial(
    tmp_path: Path,
) -> None:
    unclipped = jax_config("flax_sequence_gru", train={"clip_grad_norm": None})
    with pytest.raises(ConfigError, match=r"recurrent or attention layers \(GRUCell"):
        mw.train_jax(unclipped, tmp_path / "refused", verbose=False)
    searched = jax_config(
        "flax_digits_cnn",
        search={"trials": 2, "ranges": {"params.channels": [2, 4]}},
    )
    model = mw.train_jax(searched, tmp_path / "cnn", verbose=False)
    search = model.recipe.search
    assert search is not None and len(search["trials"]) == 2
    assert model.recipe.config["params"]["channels"] == search["best_values"]["params.channels"]
    assert model.recipe.export["onnx"]["max_abs_difference"] <= 1e-5


def test_bad_data_is_named(tmp_path: Path) -> None:
    from mlwright.jax import fit

    config = jax_config("flax_digits_cnn")
    images = np.zeros((10, 8, 8, 1), dtype="float32")
    cases = [
        ((images, np.zeros(9)), "different numbers of examples"),
        ((images, np.array(["a"] * 10)), "not numbers"),
        ({"train": (images, np.zeros(10)), "test": None}, "keys"),
        ([1, 2, 3], "not a pair"),
    ]
    for data, message in cases:
        with pytest.raises(ConfigError, match=message):
            fit(config, data=data, verbose=False)


def make_bag(params: dict[str, object], rngs: object) -> object:
    """Token ids → mean embedding → logits: integer inputs, as NumPy gives them (int64)."""
    from flax import nnx

    class Bag(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.embed = nnx.Embed(12, 8, rngs=rngs)
            self.head = nnx.Linear(8, 3, rngs=rngs)

        def __call__(self, tokens: object) -> object:
            return self.head(self.embed(tokens).mean(axis=1))

    return Bag(rngs)  # type: ignore[arg-type]


def test_integer_inputs_column_targets_and_accumulation(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 12, (200, 6))  # int64
    labels = (tokens.sum(axis=1) % 3).reshape(-1, 1)  # (n, 1) integer targets
    config = JaxConfig.from_mapping(
        {
            "name": "bag",
            "model": "tests.byo_nets.test_jax:make_bag",
            "data": "unused:data",
            "metrics": ["accuracy"],
            "tracker": "none",
            "train": {"epochs": 2, "batch_size": 16, "accumulate": 2},
        }
    )
    model = mw.train_jax(config, tmp_path / "bag", data=(tokens, labels), verbose=False)
    assert [(s.name, s.dtype) for s in model.inputs] == [("input", "int32")]  # JAX's integers
    assert check_tensor_golden(model) == []
    assert model.predict([{"input": [1, 2, 3, 4, 5, 6]}])["prediction"].iloc[0] in (0, 1, 2)
    assert model.recipe.steps == 10  # 160 training rows: 10 batches an epoch, a step every 2


def make_untraceable(params: dict[str, object], rngs: object) -> object:
    from flax import nnx

    class Untraceable(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.head = nnx.Linear(64, 10, rngs=rngs)

        def __call__(self, x: object) -> object:
            flat = np.asarray(x).reshape(len(x), -1)  # NumPy on a traced value: not jittable
            return self.head(flat)

    return Untraceable(rngs)  # type: ignore[arg-type]


def test_a_forward_pass_jax_cannot_compile_is_named(tmp_path: Path) -> None:
    from mlwright.jax import fit
    from mlwright.nets.run import NetTrainingError

    config = jax_config("flax_digits_cnn", model="tests.byo_nets.test_jax:make_untraceable")
    with pytest.raises(NetTrainingError, match="calling the model failed inside the framework"):
        fit(config, verbose=False)
