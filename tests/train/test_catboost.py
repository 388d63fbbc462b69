"""CatBoost: categories reach it as categories, the clock stops it, it writes and prints nothing,
refits repeat exactly, and it joins ensembles."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlwright.data.schema import infer_schema
from mlwright.train.models import FAMILIES, FitContext
from mlwright.train.models.catboost import CatBoostFamily
from mlwright.train.models.ensemble import EnsembleFamily
from mlwright.train.models.features import Design, FeatureEncoder, View

FAST = {**CatBoostFamily.space().defaults, "max_rounds": 60}
LEVELS = [f"shop{i:02d}" for i in range(12)]
GOOD = {"shop01", "shop04", "shop05", "shop08", "shop11"}  # no order of the codes separates them


def shops(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    r = np.random.default_rng(seed)
    shop = r.choice(LEVELS, n).astype(object)
    shop[r.random(n) < 0.05] = None
    x = r.normal(size=n)
    signal = np.isin(shop, list(GOOD)) * 2.0 + 0.3 * x
    y = (signal + r.normal(scale=0.4, size=n) > 1.0).astype(np.int64)
    return pd.DataFrame({"shop": shop, "x": x}), y


def encoded(frame: pd.DataFrame, fit_rows: int) -> tuple[FeatureEncoder, pd.DataFrame]:
    schema = infer_schema(frame)
    enforced = schema.enforce(frame)
    return FeatureEncoder().fit(enforced.iloc[:fit_rows], schema.features), enforced


def test_categories_reach_catboost_as_categories_missing_and_unseen_included() -> None:
    frame, y = shops()
    encoder, enforced = encoded(frame, 300)
    train = encoder.transform(enforced.iloc[:300], "tree")
    ctx = FitContext("binary", 2, seed=0, threads=1)
    model = CatBoostFamily(FAST, ctx).fit(train, y[:300])
    assert model.categorical_features() == train.categorical == [0]
    held = encoder.transform(enforced.iloc[300:], "tree")
    accuracy = np.mean(model.predict_raw(held).argmax(axis=1) == y[300:])
    assert accuracy > 0.8  # the good shops are learned from the categories themselves

    odd = encoder.transform(
        infer_schema(frame).enforce(pd.DataFrame({"shop": ["never-seen", None], "x": [0.0, 0.0]})),
        "tree",
    )
    assert np.isnan(odd.X[1, 0]) and odd.X[0, 0] == len(LEVELS)  # missing, and "other"
    proba = model.predict_raw(odd)
    assert proba.shape == (2, 2) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_the_deadline_stops_boosting_and_the_rounds_are_recorded() -> None:
    frame, y = shops()
    encoder, enforced = encoded(frame, 300)
    train = encoder.transform(enforced.iloc[:300], "tree")
    valid = encoder.transform(enforced.iloc[300:], "tree")
    endless = {**FAST, "max_rounds": 100_000, "early_stopping_rounds": 100_000}
    past = FitContext("binary", 2, seed=0, threads=1, deadline=time.monotonic() - 1)
    model = CatBoostFamily(endless, past).fit(train, y[:300], valid=(valid, y[300:]))
    assert model.fitted_ == {"rounds": 1} and model.model_.tree_count_ == 1

    soon = FitContext("binary", 2, seed=0, threads=1, deadline=time.monotonic() + 0.3)
    model = CatBoostFamily(endless, soon).fit(train, y[:300], valid=(valid, y[300:]))
    rounds = model.fitted_["rounds"]
    assert 1 <= rounds < 100_000 and model.model_.tree_count_ == rounds
    assert model.refit_params()["rounds"] == max(1, round(rounds * 1.1))


def test_it_writes_no_files_and_prints_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    r = np.random.default_rng(0)
    design = Design(r.normal(size=(120, 3)), ["a", "b", "c"])
    y = np.digitize(design.X[:, 0], [-0.5, 0.5])
    y[y == 2] = 1  # class 2 of 3 never appears: CatBoost has something to say about it
    ctx = FitContext("multiclass", 3, seed=0, threads=1)
    model = CatBoostFamily(FAST, ctx).fit(design, y)
    assert model.predict_raw(design).shape == (120, 3)
    shap = model.contributions(design)  # (rows, outputs, columns); outputs: the classes seen
    assert (shap.shape[0], shap.shape[2]) == (120, 3)
    assert list(tmp_path.iterdir()) == []  # no catboost_info folder
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_refit_repeats_exactly_with_the_same_seed_and_threads() -> None:
    frame, y = shops()
    encoder, enforced = encoded(frame, 400)
    design = encoder.transform(enforced, "tree")
    ctx = FitContext("binary", 2, seed=7, threads=2)
    params = {**FAST, "rounds": 40}
    first = CatBoostFamily(params, ctx).fit(design, y).predict_raw(design)
    again = CatBoostFamily(params, ctx).fit(design, y).predict_raw(design)
    assert first.tobytes() == again.tobytes()
    other = CatBoostFamily(params, FitContext("binary", 2, seed=8, threads=2)).fit(design, y)
    assert not np.array_equal(other.predict_raw(design), first)  # the seed is used


def test_the_same_fit_writes_the_same_bytes(tmp_path: Path) -> None:
    # CatBoost stamps a random id and a time into its files: the package's checksums (and the
    # registry's identity of a version) must not change between identical runs
    frame, y = shops()
    encoder, enforced = encoded(frame, 400)
    design = encoder.transform(enforced, "tree")
    ctx = FitContext("binary", 2, seed=7, threads=2)
    digests = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        (written,) = CatBoostFamily({**FAST, "rounds": 20}, ctx).fit(design, y).save(folder)
        digests.append(hashlib.sha256((folder / written).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_an_ensemble_fits_saves_and_loads_a_catboost_member(tmp_path: Path) -> None:
    frame, y = shops()
    encoder, enforced = encoded(frame, 400)

    def encode(view: View) -> Design:
        return encoder.transform(enforced, view)

    ctx = FitContext("binary", 2, seed=0, threads=1)
    members = [
        {"family": "catboost", "params": {**FAST, "rounds": 30}},
        {"family": "linear", "params": FAMILIES["linear"].space().defaults},
    ]
    blend = {"method": "weighted", "weights": [0.7, 0.3]}
    ensemble = EnsembleFamily({"members": members, "blend": blend}, ctx).fit_members(encode, y)
    assert ensemble.components == ["catboost", "linear"]
    proba = ensemble.predict_encoded(encode)
    alone = ensemble.members_[0].predict_encoded(encode)
    linear = ensemble.members_[1].predict_encoded(encode)
    np.testing.assert_allclose(proba, 0.7 * alone + 0.3 * linear, rtol=0, atol=1e-15)

    files = ensemble.save(tmp_path)
    assert "member_0/catboost.cbm" in files
    loaded = EnsembleFamily.load(tmp_path, ensemble.params, ctx, ensemble.fitted_)
    np.testing.assert_array_equal(loaded.predict_encoded(encode), proba)
