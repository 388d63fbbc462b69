"""One contract test over every registered model family, for every task it supports."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlwright.data.schema import infer_schema
from mlwright.data.tasks import Task
from mlwright.train.models import FAMILIES, Family, FitContext
from mlwright.train.models.features import Design, FeatureEncoder


def design_for(cls: type[Family], task: Task) -> tuple[Design, Design, np.ndarray]:
    r = np.random.default_rng(1)
    n = 300
    frame = pd.DataFrame(
        {
            "a": r.normal(size=n),
            "b": r.choice(["p", "q", "r", "s"], n),
            "c": np.where(r.random(n) < 0.1, np.nan, r.normal(size=n)),
        }
    )
    signal = frame.a.to_numpy() + (frame.b == "q").to_numpy() * 1.5
    if task == "regression":
        y = signal + r.normal(scale=0.3, size=n)
    elif task == "binary":
        y = (signal + r.normal(scale=0.5, size=n) > 0.5).astype(np.int64)
    else:
        y = np.digitize(signal, [-0.5, 0.7]).astype(np.int64)
    schema = infer_schema(frame)
    enforced = schema.enforce(frame)
    encoder = FeatureEncoder().fit(enforced.iloc[:240], schema.features)
    return (
        encoder.transform(enforced.iloc[:240], cls.view),
        encoder.transform(enforced.iloc[240:], cls.view),
        y,
    )


def fast_params(cls: type[Family]) -> dict[str, object]:
    params = dict(cls.space().defaults)
    for key, small in (
        ("max_rounds", 60),
        ("n_estimators", 30),
        ("max_iter", 60),
        ("max_epochs", 5),
    ):
        if key in params:
            params[key] = small
    return params


CASES = [(name, task) for name, cls in FAMILIES.items() for task in cls.tasks]


@pytest.mark.parametrize(("name", "task"), CASES)
def test_family_contract(name: str, task: Task, tmp_path: Path) -> None:
    cls = FAMILIES[name]
    train, valid, y = design_for(cls, task)
    n_classes = 0 if task == "regression" else int(y.max()) + 1
    ctx = FitContext(task, n_classes, seed=3, threads=1)
    params = fast_params(cls)

    model = cls(params, ctx).fit(train, y[:240], valid=(valid, y[240:]))
    pred = model.predict_raw(valid)
    if task == "regression":
        assert pred.shape == (60,)
        assert np.corrcoef(pred, y[240:])[0, 1] > 0.5  # it learned something
    else:
        assert pred.shape == (60, n_classes)
        assert np.allclose(pred.sum(axis=1), 1.0)
        assert (pred >= 0).all()
        assert np.mean(pred.argmax(axis=1) == y[240:]) > 0.5

    # the same seed gives the same model
    again = cls(params, ctx).fit(train, y[:240], valid=(valid, y[240:]))
    np.testing.assert_array_equal(again.predict_raw(valid), pred)

    # native save / load round trip predicts identically
    files = model.save(tmp_path)
    assert files
    assert all((tmp_path / f).is_file() for f in files)
    loaded = cls.load(tmp_path, model.params, ctx, model.fitted_)
    np.testing.assert_array_equal(loaded.predict_raw(valid), pred)

    # a refit without a validation set uses what the first fit learned
    refit = cls(model.refit_params(), ctx).fit(train, y[:240])
    assert refit.predict_raw(valid).shape == pred.shape


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_space_is_package_data_and_samples_in_range(name: str) -> None:
    space = FAMILIES[name].space()
    assert space.defaults, "defaults come from the family's YAML"
    rng = np.random.default_rng(0)
    for _ in range(20):
        params = space.sample(rng)
        for p in space.params:
            if p.type == "categorical":
                assert params[p.name] in p.choices
            else:
                assert p.low <= params[p.name] <= p.high


@pytest.mark.parametrize("name", ["lightgbm", "xgboost", "catboost", "random_forest"])
def test_families_stop_at_the_deadline(name: str) -> None:
    cls = FAMILIES[name]
    train, valid, y = design_for(cls, "binary")
    params = dict(cls.space().defaults)
    endless = {"max_rounds": 100_000, "early_stopping_rounds": 100_000, "n_estimators": 100_000}
    params.update({k: v for k, v in endless.items() if k in params})
    ctx = FitContext("binary", 2, seed=0, threads=1, deadline=time.monotonic() + 0.5)
    started = time.monotonic()
    cls(params, ctx).fit(train, y[:240], valid=(valid, y[240:]))
    assert time.monotonic() - started < 5


@pytest.mark.skipif("mlp" not in FAMILIES, reason="PyTorch is not installed")
def test_mlp_clips_gradients_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    calls: list[float] = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(float(max_norm))
        return original(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    cls = FAMILIES["mlp"]
    train, _valid, y = design_for(cls, "binary")
    params = {**fast_params(cls), "epochs": 2, "batch_size": 64, "clip_norm": 0.5}
    cls(params, FitContext("binary", 2, seed=0, threads=1)).fit(train, y[:240])
    assert len(calls) == 2 * 4  # 2 epochs × ceil(240 / 64) steps
    assert set(calls) == {0.5}


def test_every_planned_family_states_its_facts() -> None:
    from mlwright.package.onnx_export import EXPORTABLE
    from mlwright.train.models import PLANNED

    orders = [f.plan_order for f in PLANNED]
    assert orders == sorted(set(orders))  # one place each in the plan
    assert set(FAMILIES) <= {f.name for f in PLANNED}
    assert set(EXPORTABLE) == {
        "lightgbm",
        "xgboost",
        "catboost",
        "linear",
        "random_forest",
        "extra_trees",
        "hist_gb",
        "ensemble",
    }
    needs = {f.name: f.requirement for f in PLANNED if f.requirement}
    assert needs == {
        "lightgbm": ("lightgbm", "lightgbm"),
        "xgboost": ("xgboost", "xgboost-cpu"),
        "catboost": ("catboost", "catboost"),
        "mlp": ("torch", "torch"),
    }
