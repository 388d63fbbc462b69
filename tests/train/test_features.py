from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlwright.config import FeatureSettings
from mlwright.data.schema import infer_schema
from mlwright.train.models.features import FeatureEncoder


@pytest.fixture
def data() -> pd.DataFrame:
    r = np.random.default_rng(0)
    n = 200
    return pd.DataFrame(
        {
            "x": np.where(r.random(n) < 0.2, np.nan, r.normal(5, 2, n)),
            "flag": r.random(n) < 0.3,
            "city": r.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
            "zip": [f"z{v}" for v in r.integers(0, 40, n)],
            "when": pd.date_range("2021-01-01", periods=n, freq="37h"),
            "review": [
                f"great product {w} really, order {i}" if i % 2 else f"bad {w} again {i}"
                for i, w in enumerate(r.choice(["box", "fit", "price", "color"], n))
            ],
        }
    )


def encoder_for(data: pd.DataFrame, **settings: int) -> tuple[FeatureEncoder, pd.DataFrame]:
    schema = infer_schema(data)
    enforced = schema.enforce(data)
    return FeatureEncoder(FeatureSettings(**settings)).fit(enforced, schema.features), enforced


def test_tree_view_keeps_missing_and_codes_categories(data: pd.DataFrame) -> None:
    enc, frame = encoder_for(data)
    d = enc.transform(frame, "tree")
    names = d.names
    assert names[:4] == ["x", "flag", "city", "zip"]
    assert np.isnan(d.X[:, 0]).sum() == data.x.isna().sum()
    assert [names[i] for i in d.categorical] == ["city", "zip"]
    assert set(np.unique(d.X[:, 2])) == {0.0, 1.0, 2.0}  # by frequency: a=0, b=1, c=2
    assert d.X[data.city.eq("a").to_numpy(), 2].max() == 0.0
    assert {
        "when__year",
        "when__month",
        "when__dayofweek",
        "when__hour",
        "when__elapsed_days",
    } <= set(names)
    assert any(n.startswith("review~") for n in names)


def test_unknown_and_missing_categories() -> None:
    train = pd.DataFrame({"c": ["a", "b", "a", "c"], "x": [1.0, 2.0, 3.0, 4.0]})
    enc, _frame = encoder_for(train)
    new = infer_schema(train).enforce(pd.DataFrame({"c": ["zzz", None, "b"], "x": [1.0, 1.0, 1.0]}))
    tree = enc.transform(new, "tree")
    assert tree.X[0, 0] == 3.0  # unseen -> "other" code, after the 3 known levels
    assert np.isnan(tree.X[1, 0])
    dense = enc.transform(new, "dense")
    onehot = dense.X[:, :4]  # a, b, c, (other)
    assert onehot.tolist() == [[0, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]]
    embed = enc.transform(new, "embed")
    assert embed.codes is not None
    assert embed.codes[:, 0].tolist() == [4, 0, 2]  # other, missing, b
    assert embed.cardinalities == [5]


def test_dense_view_is_imputed_scaled_and_flags_missing(data: pd.DataFrame) -> None:
    enc, frame = encoder_for(data, one_hot_max=5)
    d = enc.transform(frame, "dense")
    assert not np.isnan(d.X).any()
    x = d.X[:, d.names.index("x")]
    assert abs(x[~data.x.isna().to_numpy()].mean()) < 0.2
    assert d.names[d.names.index("x") + 1] == "x__missing"
    assert "zip__freq" in d.names  # 40 levels > one_hot_max: frequency encoded too
    assert sum(n.startswith("zip=") for n in d.names) == 6  # top 5 + other


def test_state_round_trips_through_json(data: pd.DataFrame) -> None:
    enc, frame = encoder_for(data)
    again = FeatureEncoder.from_state(json.loads(json.dumps(enc.state())))
    for view in ("tree", "dense", "embed"):
        a, b = enc.transform(frame, view), again.transform(frame, view)
        np.testing.assert_array_equal(a.X, b.X)
        assert a.names == b.names


def test_text_tfidf_rows_are_normalised(data: pd.DataFrame) -> None:
    enc, frame = encoder_for(data)
    d = enc.transform(frame, "tree")
    cols = [i for i, n in enumerate(d.names) if n.startswith("review~")]
    norms = np.linalg.norm(d.X[:, cols], axis=1)
    assert np.allclose(norms, 1.0)


@pytest.mark.parametrize("view", ["tree", "dense", "embed"])
def test_numbers_read_as_one_block_are_the_column_by_column_matrix(
    view: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlwright.train.models import features

    r = np.random.default_rng(3)
    n = 50
    frame = pd.DataFrame(
        {
            "real": np.where(r.random(n) < 0.2, np.nan, r.normal(size=n)),
            "count": pd.array(np.where(r.random(n) < 0.2, None, r.integers(0, 9, n)), "Int64"),
            "flag": pd.array(np.where(r.random(n) < 0.2, None, r.random(n) < 0.5), "boolean"),
            "big": r.integers(-(2**40), 2**40, n),
            "city": r.choice(["a", "b"], n),
        }
    )
    encoder, enforced = encoder_for(frame)
    assert len(features._numeric_block(enforced, encoder.columns_ or [])) == 4
    block = encoder.transform(enforced, view)  # type: ignore[arg-type]
    monkeypatch.setattr(features, "_numeric_block", lambda frame, columns: {})
    one_by_one = encoder.transform(enforced, view)  # type: ignore[arg-type]
    assert block.names == one_by_one.names
    np.testing.assert_array_equal(block.X, one_by_one.X)  # NaN where NaN, every bit the same


def test_the_same_dates_encode_the_same_whatever_their_resolution() -> None:
    dates = pd.Series(pd.date_range("2021-01-01", periods=60, freq="37h"))
    frame = pd.DataFrame({"when": dates.astype("datetime64[us]")})
    encoder, enforced = encoder_for(frame)
    spec = (encoder.columns_ or [])[0]
    assert spec["days"] and spec["span"] == pytest.approx(59 * 37 / 24)  # in days
    expected = encoder.transform(enforced, "dense").X
    for unit in ("s", "ms", "ns"):
        again = pd.DataFrame({"when": dates.astype(f"datetime64[{unit}]")})
        np.testing.assert_array_equal(encoder.transform(again, "dense").X, expected)


def test_an_encoder_fitted_before_days_were_recorded_predicts_as_it_did() -> None:
    """Such encoders divided microseconds (pandas' resolution for parsed dates) by a day's
    nanoseconds; they still do, now for dates held at any resolution."""
    dates = pd.Series(pd.date_range("2021-01-01", periods=30, freq="D")).astype("datetime64[us]")
    frame = pd.DataFrame({"when": dates})
    encoder, enforced = encoder_for(frame)
    old = dict((encoder.columns_ or [])[0])
    del old["days"]
    micros = dates.astype("int64").to_numpy(dtype="float64")
    old.update(origin=float(micros.min() / 86_400e9), span=float(np.ptp(micros) / 86_400e9))
    legacy = FeatureEncoder.from_state({**encoder.state(), "columns": [old]})
    elapsed = legacy.transform(enforced, "tree")
    column = elapsed.names.index("when__elapsed_days")
    np.testing.assert_allclose(elapsed.X[:, column], (micros - micros.min()) / 86_400e9)
    ns = pd.DataFrame({"when": dates.astype("datetime64[ns]")})
    np.testing.assert_array_equal(legacy.transform(ns, "tree").X, elapsed.X)
