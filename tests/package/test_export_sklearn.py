"""scikit-learn's random forest, extra trees and histogram boosting exported to ONNX give the
package's own predictions on held-out rows (missing numbers and categories, an unseen category,
a value far outside the training range), for binary, multiclass and regression models.

One small forest package is trained per task; the other families are fitted (few trees) on
that package's own encoded rows, saved and loaded back as a package holds them, and put in its
place, so every family meets every task in a few seconds of training."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import mlwright as mw
from mlwright.package.export import export
from mlwright.package.model import encode_target
from mlwright.package.onnx_export import tabular_onnx
from mlwright.train.models import get_family
from mlwright.train.models.base import FitContext
from tests.package.test_export import feeds, fresh, make

ort = pytest.importorskip("onnxruntime", reason="pip install 'mlwright[onnx]'")

TRAINED = {"binary": "random_forest", "multiclass": "extra_trees", "regression": "extra_trees"}
ROWS = 200
SMALL = {  # few trees: a refit's settings (hist_gb: rounds without early stopping)
    "random_forest": {"n_estimators": 12, "chunk": 12},
    "extra_trees": {"n_estimators": 12, "chunk": 12},
    "hist_gb": {"iterations": 25},
}


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, mw.Model]:
    out = {}
    for task, family in TRAINED.items():
        folder = tmp_path_factory.mktemp(task) / "pkg"
        mw.train(make(ROWS, task, seed=0), target="y", families=(family,), max_trials=1,
                 n_folds=2, seed=0, tracker="none", out=str(folder))  # fmt: skip
        loaded = mw.load(str(folder))  # the estimators as the package's files give them back
        assert isinstance(loaded, mw.Model)
        assert loaded.family.name == family
        out[task] = loaded
    return out


def with_family(model: mw.Model, name: str, folder: Path) -> mw.Model:
    """``model`` with a small ``name`` model fitted on its own encoded training rows, written to
    ``folder`` and read back as a package's files give it."""
    if model.family.name == name:
        return model
    rows = make(ROWS, model.task, seed=0)
    features, _ = model.prepare(rows)
    design = model.encoder.transform(features, "tree")
    y = encode_target(rows["y"], model.task, model.classes)
    cls = get_family(name)
    params = {**cls.space().defaults, **SMALL[name]}
    n_classes = 0 if model.classes is None else len(model.classes)
    ctx = FitContext(model.task, n_classes, seed=0, threads=1)
    fitted = cls(params, ctx).fit(design, y)
    fitted.save(folder)
    family = cls.load(folder, params, ctx, fitted.fitted_)
    return dataclasses.replace(model, family=family)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", ["random_forest", "extra_trees", "hist_gb"])
def test_onnxruntime_gives_the_packages_predictions(
    name: str, task: str, packages: dict[str, mw.Model], tmp_path: Path
) -> None:
    model = with_family(packages[task], name, tmp_path)
    rows = fresh(task)
    want = model.predict(rows)
    if name == TRAINED[task]:  # the package itself, through `mlwright export`
        done = export(model, "onnx", tmp_path / "onnx")
        assert done.checked_rows > 0
        assert done.max_difference is not None and done.max_difference <= 1e-5
        session = ort.InferenceSession(str(done.output / "model.onnx"))
    else:
        session = ort.InferenceSession(tabular_onnx(model))
    got = session.run(None, feeds(model, rows))
    if task == "regression":
        np.testing.assert_allclose(got[0], want["prediction"], rtol=1e-5, atol=1e-5)
        assert np.ptp(got[0]) > 0  # the trees do split
        return
    proba = want[[f"proba_{c}" for c in model.classes or ()]].to_numpy()
    np.testing.assert_allclose(got[1], proba, rtol=1e-5, atol=1e-5)
    assert list(got[0]) == want["prediction"].astype(str).tolist()
    assert len(set(got[0])) > 1


def test_an_unseen_category_takes_the_missing_values_branch_in_hist_gb(
    packages: dict[str, mw.Model], tmp_path: Path
) -> None:
    model = with_family(packages["binary"], "hist_gb", tmp_path)
    base = fresh("binary").head(40)
    unseen, missing = base.assign(colour="purple"), base.assign(colour=None)
    session = ort.InferenceSession(tabular_onnx(model))
    p_unseen = session.run(None, feeds(model, unseen))[1]
    p_missing = session.run(None, feeds(model, missing))[1]
    np.testing.assert_allclose(p_unseen, model.predict_proba(unseen).to_numpy(), atol=1e-12)
    np.testing.assert_allclose(p_missing, model.predict_proba(missing).to_numpy(), atol=1e-12)
    assert isinstance(model.family.model_.categorical_features, np.ndarray)  # native categories
    assert not np.allclose(p_unseen, session.run(None, feeds(model, base.assign(colour="red")))[1])
