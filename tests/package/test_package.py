"""The model package: layout, checksums, atomic writes, golden examples, the fast scorer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlwright as mw
from mlwright.package.golden import check_golden
from mlwright.package.store import PackageError, sha256
from mlwright.train.ensemble import calibrate
from tests.conftest import make_frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[mw.Model, Path, pd.DataFrame]:
    r = np.random.default_rng(0)
    frame = (
        make_frame(300)
        .assign(
            joined=pd.date_range("2019-01-01", periods=300, freq="3D").strftime("%Y-%m-%d"),
            plan=r.choice(["basic", "pro", None], 300),  # type: ignore[list-item]
        )
        .sample(frac=1, random_state=1)
        .reset_index(drop=True)
    )
    path = tmp_path_factory.mktemp("pkg") / "churn"
    model = mw.train(
        frame, target="churned", max_trials=2, families=("lightgbm", "xgboost"), out=str(path)
    )
    return model, path, frame


def test_layout_and_manifest(trained: tuple[mw.Model, Path, pd.DataFrame]) -> None:
    _, path, _ = trained
    for name in (
        "MLmodel",
        "mlwright.json",
        "schema.json",
        "recipe.json",
        "metrics.json",
        "model/family.json",
        "model/lightgbm.txt",
        "scorer/features.json",
        "scorer/postprocess.json",
        "golden/inputs.json",
        "golden/expected.json",
    ):
        assert (path / name).is_file(), name
    manifest = json.loads((path / "mlwright.json").read_text())
    assert "MLmodel" not in manifest["files"]
    assert manifest["files"]["model/lightgbm.txt"] == sha256(path / "model/lightgbm.txt")
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlwright.package.pyfunc"
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [c["name"] for c in inputs] == [c.name for c in mw.load(path).schema.features]
    recipe = json.loads((path / "recipe.json").read_text())
    assert {"plan", "trials", "chosen", "seed", "library_versions", "data", "options"} <= set(
        recipe
    )
    assert recipe["data"]["digest"].startswith("v2:") and len(recipe["data"]["digest"]) == 67
    assert recipe["chosen"]["refit_params"]["rounds"] >= 1


def test_loaded_package_predicts_like_the_trained_model(
    trained: tuple[mw.Model, Path, pd.DataFrame],
) -> None:
    model, path, frame = trained
    loaded = mw.load(path)
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame))
    assert check_golden(loaded) == []
    assert len(loaded.golden["inputs"]) == 50  # type: ignore[index]


def test_the_report_comes_from_whoever_made_or_loaded_the_model(
    trained: tuple[mw.Model, Path, pd.DataFrame], tmp_path: Path
) -> None:
    from mlwright.package.store import load_package
    from mlwright.report import Report

    model, path, _ = trained
    assert isinstance(model.report(), Report)  # training hands its models the report
    assert isinstance(mw.load(path).report(), Report)  # so does mlwright.load
    bare = load_package(path)  # the package's own loader knows no report
    with pytest.raises(mw.MlwrightError, match="loaded without its report"):
        bare.report()
    copy = bare.save(tmp_path / "bare")
    assert (copy / "report" / "evaluation.json").is_file()  # the evidence, not the page
    assert not (copy / "report" / "report.html").exists()
    assert (model.save(tmp_path / "full") / "report" / "report.html").is_file()


def test_pyfunc_loader(trained: tuple[mw.Model, Path, pd.DataFrame]) -> None:
    from mlwright.package.pyfunc import _load_pyfunc

    model, path, frame = trained
    pyfunc = _load_pyfunc(str(path))
    pd.testing.assert_frame_equal(pyfunc.predict(frame.head(7)), model.predict(frame.head(7)))


def copy_package(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_a_modified_file_is_refused(
    trained: tuple[mw.Model, Path, pd.DataFrame], tmp_path: Path
) -> None:
    pkg = copy_package(trained[1], tmp_path / "p")
    target = pkg / "model" / "lightgbm.txt"
    target.write_text(target.read_text().replace("learning_rate", "learning_rate ", 1))
    with pytest.raises(
        PackageError, match=r"model/lightgbm.txt was modified \(checksum mismatch\)"
    ):
        mw.load(pkg)


def test_missing_and_extra_files_are_refused(
    trained: tuple[mw.Model, Path, pd.DataFrame], tmp_path: Path
) -> None:
    pkg = copy_package(trained[1], tmp_path / "p")
    (pkg / "scorer" / "features.json").unlink()
    with pytest.raises(PackageError, match=r"scorer/features\.json is missing"):
        mw.load(pkg)
    pkg2 = copy_package(trained[1], tmp_path / "q")
    (pkg2 / "model" / "payload.pkl").write_bytes(b"not welcome")
    with pytest.raises(PackageError, match=r"model/payload\.pkl is not in the manifest"):
        mw.load(pkg2)
    # files MLflow owns may change without breaking the package
    (pkg2 / "model" / "payload.pkl").unlink()
    (pkg2 / "requirements.txt").write_text("mlwright\n")
    mw.load(pkg2)


def test_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="does not exist"):
        mw.load(tmp_path / "nope")
    with pytest.raises(PackageError, match="is not an mlwright model package"):
        mw.load(tmp_path)
    with pytest.raises(mw.MlwrightError, match="no registered model named 'nochurn'"):
        mw.load("nochurn@champion")


def test_save_is_atomic_and_never_clobbers_other_folders(
    trained: tuple[mw.Model, Path, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = trained[0]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(PackageError, match="is not an mlwright package; refusing to overwrite"):
        model.save(other)
    assert (other / "todo.txt").read_text() == "mine"

    target = tmp_path / "pkg"
    model.save(target)
    before = sha256(target / "mlwright.json")
    from mlwright.package import store

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "_write_mlmodel", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(target)
    assert sha256(target / "mlwright.json") == before  # the old package is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "pkg"]  # no debris


def test_predict_errors_list_every_problem(trained: tuple[mw.Model, Path, pd.DataFrame]) -> None:
    model, _, frame = trained
    bad = frame.drop(columns=["x2"]).assign(x1="abc", joined="not a date")
    with pytest.raises(mw.MlwrightError) as err:
        model.predict(bad.head(3))
    text = str(err.value)
    assert "column 'x2': required column is missing" in text
    assert "column 'x1', row 0: not a number (got 'abc')" in text
    assert "column 'joined', row 0: not a date" in text
    # unseen categories and extra columns are fine
    out = model.predict(frame.head(3).assign(colour="purple", extra=1))
    assert len(out) == 3


row = st.fixed_dictionaries(
    {
        "x1": st.one_of(st.none(), st.floats(-1e6, 1e6)),
        "x2": st.one_of(st.none(), st.integers(-100, 200)),
        "colour": st.one_of(st.none(), st.sampled_from(["red", "green", "blue", "mauve", ""])),
        "joined": st.one_of(st.none(), st.dates().map(lambda d: d.isoformat())),
        "plan": st.one_of(st.none(), st.sampled_from(["basic", "pro", "enterprise"])),
    }
)


@settings(
    max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(row, min_size=1, max_size=30))
def test_fast_scorer_matches_the_training_pipeline(records: list[dict[str, object]]) -> None:
    model, _path, _ = _TRAINED
    loaded = _LOADED
    frame = pd.DataFrame.from_records(records, columns=["x1", "x2", "colour", "joined", "plan"])
    # the training pipeline: the in-memory fitted family on the encoder's matrices
    features = model.schema.enforce(frame)
    expected = model.family.predict_encoded(lambda view: model.encoder.transform(features, view))
    if model.temperature is not None:
        expected = calibrate(expected, model.temperature)
    got = loaded.predict(frame)
    np.testing.assert_allclose(
        got[[f"proba_{c}" for c in model.classes]].to_numpy(), expected, rtol=0, atol=1e-12
    )


_TRAINED: tuple[mw.Model, Path, pd.DataFrame]
_LOADED: mw.Model


@pytest.fixture(autouse=True, scope="module")
def _share(trained: tuple[mw.Model, Path, pd.DataFrame]) -> None:
    global _TRAINED, _LOADED
    _TRAINED = trained
    _LOADED = mw.load(trained[1])
