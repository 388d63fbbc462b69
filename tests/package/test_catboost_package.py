"""A CatBoost model as a package: its native .cbm file under the manifest, the fast scorer (frames
and the server's record columns) against the training pipeline, exact repeats and replays, and
ONNX export (numeric columns) or its refusal (categorical columns)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlwright as mw
from mlwright.data.records import record_columns
from mlwright.package.golden import check_golden
from mlwright.package.store import PackageError, sha256
from mlwright.train.models import FitContext
from mlwright.train.models.ensemble import EnsembleFamily
from mlwright.train.replay import replay

COLUMNS = ["x1", "x2", "plan", "region"]


def frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    x1 = r.normal(size=n)
    x1[r.random(n) < 0.1] = np.nan
    x2 = r.integers(0, 50, size=n).astype(float)
    plan = r.choice(["basic", "pro", "team", None], n)  # type: ignore[list-item]
    region = r.choice([f"r{i}" for i in range(15)], n)
    logit = np.nan_to_num(x1) - 0.03 * x2 + (plan == "pro") * 1.5 + np.isin(region, ["r3", "r9"])
    y = np.where(r.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "plan": plan, "region": region, "churned": y})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[mw.Model, Path, pd.DataFrame]:
    rows = frame()
    path = tmp_path_factory.mktemp("catboost") / "pkg"
    model = mw.train(rows, target="churned", families=("catboost",), max_trials=1, seed=0,
                     tracker="none", out=str(path))  # fmt: skip
    assert isinstance(model, mw.Model)
    return model, path, rows


def test_the_native_file_is_in_the_manifest_and_a_changed_byte_is_refused(
    trained: tuple[mw.Model, Path, pd.DataFrame], tmp_path: Path
) -> None:
    model, path, _ = trained
    assert model.family.name == "catboost"
    files = json.loads((path / "mlwright.json").read_text())["files"]
    assert files["model/catboost.cbm"] == sha256(path / "model" / "catboost.cbm")
    family = json.loads((path / "model" / "family.json").read_text())
    assert family["files"] == ["catboost.cbm"] and family["fitted"]["rounds"] >= 1
    assert "catboost==" in (path / "requirements.txt").read_text()
    assert "catboost" in model.recipe["library_versions"]

    copy = tmp_path / "copy"
    copy.mkdir()
    for p in path.rglob("*"):
        if p.is_file():
            (copy / p.relative_to(path)).parent.mkdir(parents=True, exist_ok=True)
            (copy / p.relative_to(path)).write_bytes(p.read_bytes())
    native = bytearray((copy / "model" / "catboost.cbm").read_bytes())
    native[len(native) // 2] ^= 0xFF
    (copy / "model" / "catboost.cbm").write_bytes(bytes(native))
    with pytest.raises(PackageError, match=r"model/catboost\.cbm was modified"):
        mw.load(copy)


def test_the_loaded_package_passes_its_gate_and_serves_records_alike(
    trained: tuple[mw.Model, Path, pd.DataFrame],
) -> None:
    model, path, rows = trained
    loaded = mw.load(path)
    assert isinstance(loaded, mw.Model)
    assert check_golden(loaded) == []
    features = rows.drop(columns="churned")
    pd.testing.assert_frame_equal(loaded.predict(features), model.predict(features))
    records = features.head(40).astype(object).where(features.head(40).notna(), None)
    columns = record_columns(loaded.schema, records.to_dict("records"))
    assert columns is not None
    served = loaded.outputs(columns)
    np.testing.assert_array_equal(
        served["proba_yes"], model.predict(features.head(40))["proba_yes"]
    )


def test_same_seed_and_trials_repeat_byte_for_byte_and_the_recipe_replays(
    trained: tuple[mw.Model, Path, pd.DataFrame], tmp_path: Path
) -> None:
    model, path, rows = trained
    again = mw.train(rows, target="churned", families=("catboost",), max_trials=1, seed=0,
                     tracker="none", out=str(tmp_path / "again"))  # fmt: skip
    features = rows.drop(columns="churned")
    first = model.predict(features).to_csv(index=False)
    assert again.predict(features).to_csv(index=False) == first
    assert replay(mw.load(path), rows).mismatches == []


row = st.fixed_dictionaries(
    {
        "x1": st.one_of(st.none(), st.floats(-5, 5, allow_nan=False)),
        "x2": st.one_of(st.none(), st.integers(-10, 80).map(float)),
        "plan": st.one_of(st.none(), st.sampled_from(["basic", "pro", "team", "enterprise"])),
        "region": st.one_of(st.none(), st.sampled_from(["r0", "r3", "r9", "r14", "r99"])),
    }
)


@settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(row, min_size=1, max_size=20))
def test_fast_scorer_matches_the_training_pipeline(records: list[dict[str, object]]) -> None:
    model, _path, _ = _TRAINED
    rows = pd.DataFrame.from_records(records, columns=COLUMNS)
    features = model.schema.enforce(rows)
    expected = model.family.predict_encoded(lambda view: model.encoder.transform(features, view))
    if model.temperature is not None:
        from mlwright.train.ensemble import calibrate

        expected = calibrate(expected, model.temperature)
    got = _LOADED.predict(rows)
    np.testing.assert_allclose(
        got[[f"proba_{c}" for c in model.classes or ()]].to_numpy(), expected, rtol=0, atol=1e-12
    )


_TRAINED: tuple[mw.Model, Path, pd.DataFrame]
_LOADED: mw.Model


@pytest.fixture(autouse=True, scope="module")
def _share(trained: tuple[mw.Model, Path, pd.DataFrame]) -> None:
    global _TRAINED, _LOADED
    _TRAINED = trained
    loaded = mw.load(trained[1])
    assert isinstance(loaded, mw.Model)
    _LOADED = loaded


# --- ONNX ----------------------------------------------------------------------------------------


def test_onnx_export_refuses_catboost_categories_and_writes_nothing(
    trained: tuple[mw.Model, Path, pd.DataFrame], tmp_path: Path
) -> None:
    pytest.importorskip("onnx", reason="pip install 'mlwright[onnx]'")
    from mlwright.package.export import export
    from mlwright.package.onnx_export import ExportError

    model, _, _ = trained
    with pytest.raises(ExportError, match="categorical columns 'plan', 'region'") as caught:
        export(model, "onnx", tmp_path / "out")
    assert "--families lightgbm,xgboost,linear" in (caught.value.fix or "")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_onnxruntime_gives_a_numeric_catboost_models_outputs(task: str, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="pip install 'mlwright[onnx]'")
    from mlwright.package.export import export
    from mlwright.package.onnx_export import tabular_onnx
    from tests.package.test_export import feeds, fresh, make

    rows = make(300, task, seed=0).drop(columns="colour")
    model = mw.train(rows, target="y", families=("catboost",), max_trials=1, seed=0,
                     tracker="none")  # fmt: skip
    assert isinstance(model, mw.Model)
    if task == "binary":  # a blend with a linear member goes through the ensemble's graph
        model = _with_linear_member(model, rows)
    new = fresh(task).drop(columns="colour")
    want = model.predict(new)
    got = ort.InferenceSession(tabular_onnx(model)).run(None, feeds(model, new))
    if task == "regression":
        np.testing.assert_allclose(got[0], want["prediction"], atol=1e-12, rtol=0)
    else:
        proba = want[[f"proba_{c}" for c in model.classes or ()]].to_numpy()
        np.testing.assert_allclose(got[1], proba, atol=1e-12, rtol=0)
        assert list(got[0]) == want["prediction"].astype(str).tolist()
    if task != "binary":  # exported from the saved package, as `mlwright export` does
        model = mw.load(model.save(tmp_path / "pkg"))  # type: ignore[assignment]
    done = export(model, "onnx", tmp_path / "onnx")  # checked on the golden rows
    assert done.checked_rows == 50 and done.max_difference is not None
    assert done.max_difference < 1e-12


def _with_linear_member(model: mw.Model, rows: pd.DataFrame) -> mw.Model:
    """``model`` with its CatBoost booster blended 60/40 with a linear model."""
    from mlwright.train.models import FAMILIES

    catboost = model.family
    features = model.schema.enforce(rows.drop(columns="y"))
    y = (rows["y"] == model.classes[1]).to_numpy().astype(np.int64)  # type: ignore[index]
    ctx = FitContext("binary", 2, seed=0, threads=1)
    linear = FAMILIES["linear"](FAMILIES["linear"].space().defaults, ctx)
    linear.fit(model.encoder.transform(features, "dense"), y)
    members = [
        {"family": "catboost", "params": catboost.params},
        {"family": "linear", "params": linear.params},
    ]
    blend = {"method": "weighted", "weights": [0.6, 0.4]}
    ensemble = EnsembleFamily({"members": members, "blend": blend}, ctx)
    ensemble.members_ = [catboost, linear]
    ensemble.fitted_ = {"members": [catboost.fitted_, linear.fitted_]}
    golden = dict(model.golden or {})
    blended = dataclasses.replace(model, family=ensemble, golden=golden)
    inputs = pd.DataFrame.from_records(golden["inputs"])
    golden["expected"] = blended.predict(inputs).to_dict("records")
    return blended
