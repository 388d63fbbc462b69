"""`mlwright train-keras` end to end on the examples at small size: the package (the .keras
model, an ONNX model within 1e-5 of it), served where no training framework can be imported,
its registration and report, exact resume, clipping, search, and the PyTorch backend in its own
process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mlwright as mw
from mlwright.errors import ConfigError
from mlwright.keras import KerasConfig
from mlwright.nets.run import NetTrainingError
from mlwright.package.tensor import TensorModel, check_tensor_golden
from tests.byo_nets.conftest import (
    CLASSES,
    cli_train,
    example,
    serve_without_frameworks,
    train_on_backend,
)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = example("keras_digits_cnn", name="digits-keras", output={"classes": CLASSES})
    return cli_train("keras", config, tmp_path_factory.mktemp("keras"))


def keras_config(name: str, **changes: object) -> KerasConfig:
    return KerasConfig.from_mapping(example(name, tracker="none", **changes))


def test_the_package_holds_the_keras_model_and_an_onnx_model_within_1e_5(digits: Path) -> None:
    manifest = json.loads((digits / "mlwright.json").read_text())
    assert manifest["kind"] == "keras"
    for rel in ("model/model.keras", "model/model.onnx", "spec.json", "golden/inputs.json",
                "report/report.html"):  # fmt: skip
        assert rel in manifest["files"], rel
    model = mw.load(digits)
    assert isinstance(model, TensorModel) and model.kind == "keras"
    onnx = model.recipe.export["onnx"]
    assert onnx["max_abs_difference"] <= 1e-5 and onnx["checked_rows"] == 60
    assert check_tensor_golden(model) == []
    assert model.inputs[0].shape == (8, 8, 1) and model.classes == tuple(CLASSES)
    # the native model, loaded by Keras, gives the served outputs
    import warnings

    import keras

    with warnings.catch_warnings():  # Keras' own NumPy 2 notice while it reads
        warnings.simplefilter("ignore", DeprecationWarning)
        native = keras.saving.load_model(digits / "model" / "model.keras")
    batch = np.asarray([r["input"] for r in model.golden["inputs"]], dtype="float32")
    np.testing.assert_allclose(model.raw({"input": batch}), native.predict(batch, verbose=0),
                               atol=1e-5)  # fmt: skip
    assert model.evidence["on"] == "validation" and model.evidence["rows"] == 60
    report = (digits / "report" / "report.md").read_text()
    assert "Keras classifier" in report and "model/model.onnx" in report
    assert "keras" in model.recipe.framework and len(model.recipe.history) == 2
    versions = model.recipe.library_versions
    assert {"keras", "jax", "jax2onnx", "onnxruntime"} <= set(versions)
    # every epoch is tracked: the run's validation curve has one point per epoch
    from mlflow.tracking import MlflowClient

    curve = MlflowClient().get_metric_history(model.recipe.run_id, "val_accuracy")
    assert [round(m.value, 6) for m in curve] == [
        round(e["metrics"]["accuracy"], 6) for e in model.recipe.history
    ]


def test_served_without_any_training_framework(digits: Path, tmp_path: Path) -> None:
    out = serve_without_frameworks(digits, tmp_path)
    assert out["ready"] == "ready" and out["status"] == 200 and out["same"]
    assert out["bad"] == [422, "input"] and out["feedback"] in (200, 201, 202)
    assert out["metrics"] and out["kind"] == "keras" and out["loaded"] == []


def test_it_is_registered_and_loads_by_alias(digits: Path) -> None:
    loaded = mw.load("digits-keras@champion")
    assert isinstance(loaded, TensorModel) and check_tensor_golden(loaded) == []


def test_a_stopped_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path: Path) -> None:
    from mlwright.keras import fit

    config = keras_config("keras_digits_cnn", train={"epochs": 3})
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
    assert [e.val_loss for e in resumed.history] == [e.val_loss for e in whole.history]
    for a, b in zip(resumed.model.weights(), whole.model.weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # another configuration refuses the checkpoint
    other = keras_config("keras_digits_cnn", train={"epochs": 3, "lr": 0.001})
    with pytest.raises(ConfigError, match=r"another configuration \(train.lr changed\)"):
        fit(other, checkpoint_dir=tmp_path / "cut", verbose=False)
    # a file that is not a checkpoint mlwright wrote is refused without NumPy's advice to
    # unpickle it
    (tmp_path / "cut" / "last.npz").write_bytes(b"\x93NUMPY" + bytes(range(256)) * 8)
    with pytest.raises(NetTrainingError, match="cannot be read") as refused:
        fit(config, checkpoint_dir=tmp_path / "cut", verbose=False)
    assert "allow_pickle" not in str(refused.value)


def test_a_recurrent_model_needs_clipping_and_a_search_trains_its_best_trial(
    tmp_path: Path,
) -> None:
    unclipped = keras_config("keras_sequence_gru", train={"clip_grad_norm": None})
    with pytest.raises(ConfigError, match=r"recurrent or attention layers \(GRU"):
        mw.train_keras(unclipped, tmp_path / "refused", verbose=False)
    searched = keras_config(
        "keras_sequence_gru",
        search={"trials": 2, "ranges": {"train.lr": {"low": 0.001, "high": 0.02, "log": True}}},
    )
    model = mw.train_keras(searched, tmp_path / "gru", verbose=False)
    search = model.recipe.search
    assert search is not None and len(search["trials"]) == 2
    assert model.recipe.config["train"]["lr"] == search["best_values"]["train.lr"]
    assert model.task == "regression" and model.recipe.export["onnx"]["max_abs_difference"] < 1e-5


def test_the_pytorch_backend_trains_and_exports_in_its_own_process(tmp_path: Path) -> None:
    recipe = train_on_backend("torch", tmp_path)
    assert "torch backend" in recipe["framework"] and recipe["kind"] == "keras"
    assert recipe["export"]["onnx"]["max_abs_difference"] <= 1e-5


def test_keras_already_running_on_another_backend_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    from mlwright.keras.loop import use_backend

    running = keras.backend.backend()
    other = "torch" if running != "torch" else "jax"
    with pytest.raises(ConfigError, match=f"already runs on the {running} backend"):
        use_backend(other)


def test_accumulated_steps_follow_the_whole_schedule(tmp_path: Path) -> None:
    """Keras counts every batch as an iteration: the one-cycle schedule must still span all
    of training with ``accumulate`` > 1, not end a fraction of the way through."""
    from mlwright.keras import fit

    config = keras_config("keras_sequence_gru", train={"epochs": 4, "accumulate": 4,
                                                       "lr": 0.01})  # fmt: skip
    result = fit(config, verbose=False)
    rates = [e.lr for e in result.history]
    assert rates[1] > 0.005 and rates[2] > 0.001 and rates[3] < rates[2]


def test_targets_the_loss_cannot_take_are_named_before_training() -> None:
    from mlwright.keras import fit

    config = keras_config("keras_digits_cnn")
    rng = np.random.default_rng(0)
    images = rng.random((40, 8, 8, 1), dtype="float32")
    labels = rng.integers(0, 10, 40)
    cases = [
        (labels.copy().astype("float64") + 0.37, {}, "whole number from 0 to 9"),
        (np.where(np.arange(40) == 5, 50, labels), {}, r"training set's example \d+ has target 50"),
        (np.where(np.arange(40) == 3, np.nan, labels), {}, "NaN or infinite"),
        (labels, {"loss": "bce_with_logits"}, "10 output"),
        (labels, {"loss": "mse"}, "1 value"),
    ]
    for target, change, message in cases:
        changed = config.model_copy(update=change)
        with pytest.raises(ConfigError, match=message):
            fit(changed, data=(images, target), verbose=False)
    valid = ((images, labels), (images[:, :4], labels))
    with pytest.raises(ConfigError, match=r"validation 'input' has examples of shape \(4, 8, 1\)"):
        fit(config, data=valid, verbose=False)
