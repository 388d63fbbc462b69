"""Tabular models exported to ONNX give mlwright's own outputs in onnxruntime, on rows the
golden examples do not cover: missing numbers and categories, an unseen category, a value
outside the training range."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.package.export import export
from mlwright.package.onnx_export import ExportError, tabular_onnx

ort = pytest.importorskip("onnxruntime", reason="pip install 'mlwright[onnx]'")


def make(n: int, task: str, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    x1 = r.normal(size=n)
    x1[r.random(n) < 0.1] = np.nan
    x2 = r.integers(0, 50, size=n).astype(float)
    colour = r.choice(["red", "green", "blue", "black", "white", "pink"], size=n).astype(object)
    colour[r.random(n) < 0.05] = None
    flag = r.random(n) < 0.3
    signal = np.nan_to_num(x1) - 0.03 * x2 + 1.5 * (colour == "red") - (colour == "blue") + flag
    if task == "regression":
        y: Any = signal + r.normal(size=n) * 0.3
    elif task == "binary":
        y = np.where(r.random(n) < 1 / (1 + np.exp(-signal)), "yes", "no")
    else:
        y = np.digitize(signal + r.normal(size=n) * 0.5, [-1.0, 0.0, 1.0]).astype(str)
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "flag": flag, "y": y})


def fresh(task: str) -> pd.DataFrame:
    rows = make(200, task, seed=7)
    rows.loc[0, "colour"] = "purple"  # never seen in training
    rows.loc[1, "x2"] = 500.0  # far outside the training range
    rows.loc[2, ["x1", "colour"]] = [np.nan, None]
    return rows.drop(columns="y")


def feeds(model: mw.Model, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {}
    for spec in model.encoder.columns_ or []:
        values = rows[spec["name"]]
        if spec["kind"] == "categorical":
            text = ["" if pd.isna(v) else str(v) for v in values.tolist()]
            out[spec["name"]] = np.array(text, dtype=object).reshape(-1, 1)
        else:
            out[spec["name"]] = values.astype("float64").to_numpy().reshape(-1, 1)
    return out


@pytest.mark.parametrize(
    ("families", "task", "tolerance"),
    [
        (("lightgbm",), "binary", 1e-12),
        (("xgboost",), "multiclass", 1e-5),  # XGBoost itself computes in float32
        (("linear",), "multiclass", 1e-12),
        (("lightgbm", "xgboost", "linear"), "regression", 1e-5),
    ],
)
def test_onnxruntime_gives_mlwrights_outputs(
    families: tuple[str, ...], task: str, tolerance: float, tmp_path: Path
) -> None:
    model = mw.train(make(500, task, seed=0), target="y", families=families, max_trials=3,
                     seed=0, tracker="none", out=str(tmp_path / "pkg"))  # fmt: skip
    assert isinstance(model, mw.Model)
    rows = fresh(task)
    want = model.predict(rows)
    session = ort.InferenceSession(tabular_onnx(model))
    got = session.run(None, feeds(model, rows))
    if task == "regression":
        np.testing.assert_allclose(got[0], want["prediction"], atol=tolerance, rtol=0)
        return
    proba = want[[f"proba_{c}" for c in model.classes or ()]].to_numpy()
    np.testing.assert_allclose(got[1], proba, atol=tolerance, rtol=0)
    assert list(got[0]) == want["prediction"].astype(str).tolist()


def test_what_onnx_cannot_hold_is_refused_by_name(tmp_path: Path) -> None:
    rows = make(300, "binary", seed=0)
    rows["signed_up"] = pd.date_range("2024-01-01", periods=len(rows), freq="D")
    model = mw.train(rows, target="y", families=("linear",), max_trials=1, tracker="none",
                     out=str(tmp_path / "dated"))  # fmt: skip
    with pytest.raises(ExportError, match=r"'signed_up' \(datetime\)"):
        tabular_onnx(model)  # type: ignore[arg-type]
    pytest.importorskip("torch")
    mlp = mw.train(make(300, "binary", seed=0), target="y", families=("mlp",), max_trials=1,
                   tracker="none", out=str(tmp_path / "mlp"))  # fmt: skip
    with pytest.raises(ExportError, match="the mlp family has no ONNX export") as caught:
        export(mlp, "onnx", tmp_path / "out")
    assert "--families lightgbm,xgboost,linear" in (caught.value.fix or "")
    assert not (tmp_path / "out").exists()


def test_the_cli_writes_a_checked_triton_repository(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    mw.train(make(400, "binary", seed=0), target="y", name="churn-export", families=("lightgbm",),
             max_trials=1, tracker="none", out=str(tmp_path / "pkg"))  # fmt: skip
    done = cli("export", str(tmp_path / "pkg"), "--format", "triton", "--output",
               str(tmp_path / "repo"))  # fmt: skip
    assert done.code == 0, done.err
    assert "onnxruntime reproduces the" in done.out
    folder = tmp_path / "repo" / "churn-export"
    config = (folder / "config.pbtxt").read_text()
    assert 'name: "churn-export"' in config
    assert '{ name: "colour" data_type: TYPE_STRING dims: [ 1 ] }' in config
    assert 'name: "prediction" data_type: TYPE_STRING dims: [ 1 ] reshape: { shape: [ ] }' in config
    assert 'name: "probabilities" data_type: TYPE_FP64 dims: [ 2 ]' in config
    assert (folder / "labels.txt").read_text().split() == ["no", "yes"]
    session = ort.InferenceSession(str(folder / "1" / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["x1", "x2", "colour", "flag"]
    assert cli("export", str(tmp_path / "pkg"), "--format", "pmml", "-o", "x").code == 2  # usage
