from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from mlwright.data.schema import ColumnPolicy, TableSchema, infer_schema
from mlwright.errors import DataError, SchemaViolationError


def kinds_and_roles(frame: pd.DataFrame, target: str | None = None) -> dict[str, tuple[str, str]]:
    schema = infer_schema(frame, target=target)
    return {c.name: (c.kind, c.role) for c in schema.columns}


def test_every_kind_and_role_is_inferred(rng: np.random.Generator) -> None:
    n = 200
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "again", "today"]
    frame = pd.DataFrame(
        {
            "price": rng.normal(10, 2, n),
            "rooms": rng.integers(1, 6, n),
            "rooms_with_gaps": np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 6, n)),
            "has_garden": rng.random(n) < 0.5,
            "verified": rng.choice(["True", "False", "true"], n),
            "city": rng.choice(["Lyon", "Paris", "Nice"], n),
            "listed_on": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "sold_on": pd.date_range("2021-03-01", periods=n, freq="D").strftime("%d/%m/%Y"),
            "stamp": pd.date_range("2022-01-01", periods=n, freq="h"),
            "description": [" ".join(rng.choice(words, 6)) + f" {i}" for i in range(n)],
            "listing_code": [f"LX{i:06d}Q" for i in rng.permutation(n)],
            "row": rng.permutation(n) + 1000,
            "customer_id": rng.integers(0, 10**9, n),
            "country": ["FR"] * n,
            "empty": [np.nan] * n,
        }
    )
    got = kinds_and_roles(frame)
    assert got == {
        "price": ("numeric", "feature"),
        "rooms": ("integer", "feature"),
        "rooms_with_gaps": ("integer", "feature"),
        "has_garden": ("boolean", "feature"),
        "verified": ("boolean", "feature"),
        "city": ("categorical", "feature"),
        "listed_on": ("datetime", "feature"),
        "sold_on": ("datetime", "feature"),
        "stamp": ("datetime", "feature"),
        "description": ("text", "feature"),
        "listing_code": ("categorical", "id"),
        "row": ("integer", "id"),
        "customer_id": ("integer", "id"),
        "country": ("categorical", "constant"),
        "empty": ("numeric", "constant"),
    }


def test_statistics_are_recorded() -> None:
    frame = pd.DataFrame(
        {"a": [1.5, None, 3.0, 4.5], "c": ["x", "y", "x", None], "y": [0, 1, 0, 1]}
    )
    schema = infer_schema(frame, target="y")
    a, c, y = schema["a"], schema["c"], schema["y"]
    assert (a.minimum, a.maximum, a.n_missing, a.missing_rate, a.n_unique) == (1.5, 4.5, 1, 0.25, 3)
    assert c.categories == {"x": 2, "y": 1}
    assert y.role == "target"
    assert schema.target == "y"


def test_category_limit_keeps_the_most_frequent() -> None:
    from mlwright.config import ProfileSettings

    values = [f"v{i}" for i in range(30) for _ in range(i + 1)]
    schema = infer_schema(pd.DataFrame({"c": values}), settings=ProfileSettings(category_limit=10))
    cats = schema["c"].categories
    assert cats is not None and len(cats) == 10
    assert "v29" in cats and "v0" not in cats
    assert schema["c"].other_count == sum(range(1, 21))


def test_json_round_trip(frame: pd.DataFrame) -> None:
    frame = frame.assign(when=pd.date_range("2020-01-01", periods=len(frame), freq="D"))
    schema = infer_schema(frame, target="churned")
    again = TableSchema.from_json(schema.to_json())
    assert again == schema
    assert again.to_json() == schema.to_json()


def test_unknown_schema_version_is_refused(frame: pd.DataFrame) -> None:
    d = infer_schema(frame).to_dict()
    d["schema_version"] = 99
    with pytest.raises(DataError, match="schema version 99 is not supported"):
        TableSchema.from_dict(d)
    with pytest.raises(DataError, match="malformed"):
        TableSchema.from_json("{not json")


def test_enforce_returns_trained_dtypes() -> None:
    train = pd.DataFrame(
        {
            "n": [1.0, 2.5, 3.0],
            "i": [1, 2, 3],
            "b": [True, False, True],
            "c": ["1", "2", "3x"],
            "d": ["2020-01-01", "2020-01-02", "2020-01-03"],
        }
    )
    schema = infer_schema(train)
    new = pd.DataFrame(
        {
            "d": ["2021-05-05", None],
            "c": [1.0, 2.0],  # numbers read back from a file where categories were strings
            "b": ["yes", "0"],
            "i": ["4", "5"],
            "n": [7, None],
            "extra": [1, 2],
        }
    )
    out = schema.enforce(new)
    assert list(out.columns) == ["n", "i", "b", "c", "d"]
    assert str(out["n"].dtype) == "float64"
    assert str(out["i"].dtype) == "float64"
    assert str(out["b"].dtype) == "boolean"
    assert out["b"].tolist() == [True, False]
    assert out["c"].tolist() == ["1", "2"]
    assert pd.api.types.is_datetime64_any_dtype(out["d"].dtype)
    assert pd.isna(out["d"].iloc[1])
    assert schema.extra_columns(new) == ["extra"]


def test_enforce_lists_every_violation_precisely() -> None:
    train = pd.DataFrame(
        {
            "age": [20, 30, 40],
            "joined": ["2020-01-01", "2020-02-01", "2020-03-01"],
            "flag": [True, False, True],
            "plan": ["a", "b", "a"],
        }
    )
    schema = infer_schema(train)
    bad = pd.DataFrame(
        {
            "age": ["31", "old", np.inf],
            "joined": ["2020-01-05", "yesterday", None],
            "flag": ["maybe", "yes", "no"],
        },
        index=[10, 11, 12],
    )
    with pytest.raises(SchemaViolationError) as err:
        schema.enforce(bad)
    found = {(v.column, v.row, v.reason) for v in err.value.violations}
    assert found == {
        ("plan", None, "required column is missing"),
        ("age", 11, "not a number"),
        ("joined", 11, "not a date"),
        ("flag", 10, "not a boolean"),
    }
    message = str(err.value)
    assert "column 'age', row 11: not a number (got 'old'); expected a number" in message
    assert "4 problem(s)" in message


def test_policies_reject_nulls_unknown_categories_and_out_of_range() -> None:
    train = pd.DataFrame({"x": [0.0, 5.0, 10.0], "c": ["a", "b", "a"]})
    schema = infer_schema(train)
    strict = ColumnPolicy(nulls="reject", unknown_category="reject", out_of_range="reject")
    cols = tuple(type(c)(**{**c.__dict__, "policy": strict}) for c in schema.columns)
    strict_schema = TableSchema(columns=cols, n_rows=schema.n_rows)
    new = pd.DataFrame({"x": [11.0, None, 3.0, np.inf], "c": ["a", "z", None, "b"]})
    _, violations, total = strict_schema.check(new)
    assert {(v.column, v.row, v.reason) for v in violations} == {
        ("x", 0, "outside the training range"),
        ("x", 1, "missing value"),
        ("x", 3, "infinite value"),
        ("c", 1, "category not seen in training"),
        ("c", 2, "missing value"),
    }
    assert total == 5
    clip = ColumnPolicy(out_of_range="clip")
    clip_schema = TableSchema(
        columns=tuple(type(c)(**{**c.__dict__, "policy": clip}) for c in schema.columns),
        n_rows=3,
    )
    assert clip_schema.enforce(new)["x"].tolist()[::2] == [10.0, 3.0]
    # the default policy allows all of it; an infinite number is read as missing
    allowed = schema.enforce(new)
    assert len(allowed) == 4
    assert np.isnan(allowed["x"].iloc[3])


def test_violations_are_capped_per_column_but_counted() -> None:
    schema = infer_schema(pd.DataFrame({"x": [1.0, 2.0]}))
    _, violations, total = schema.check(pd.DataFrame({"x": ["bad"] * 500}), max_per_column=20)
    assert len(violations) == 20
    assert total == 500
    with pytest.raises(SchemaViolationError, match=r"500 problem\(s\)"):
        schema.enforce(pd.DataFrame({"x": ["bad"] * 500}))


def test_role_changes() -> None:
    schema = infer_schema(pd.DataFrame({"a": [1, 2, 3], "b": [1.0, 2.0, 2.5]}))
    changed = schema.with_roles({"b": "id"}, "dropped by the user")
    assert [c.name for c in changed.features] == ["a"]
    assert changed["b"].role_reason == "dropped by the user"


frames = data_frames(
    columns=[
        column("f", elements=st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")))),
        column("i", elements=st.integers(-1000, 1000)),
        column("s", elements=st.sampled_from(["a", "b", "c d", "ééé", ""])),
        column("b", elements=st.booleans()),
    ],
    index=range_indexes(min_size=1, max_size=40),
)


@settings(
    max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(frames)
def test_training_data_always_satisfies_its_own_schema(df: pd.DataFrame) -> None:
    schema = infer_schema(df)
    again = TableSchema.from_json(schema.to_json())
    assert again == schema
    out, violations, _ = again.check(df, roles=("feature", "id", "constant"))
    assert violations == []
    assert len(out) == len(df)
