"""The server's fast path gives the general path's model matrix, or steps aside."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mlwright.config import FeatureSettings
from mlwright.data.records import record_columns
from mlwright.data.schema import ColumnPolicy, TableSchema, infer_schema
from mlwright.serve.schemas import record_model
from mlwright.train.models.features import VIEWS, FeatureEncoder


def training_frame(n: int = 300) -> pd.DataFrame:
    r = np.random.default_rng(3)
    words = ["alpha beta", "gamma delta epsilon", "beta zeta", "eta theta iota kappa"]
    frame = pd.DataFrame(
        {
            "amount": r.normal(100, 20, n).round(2),
            "count": r.integers(0, 40, n),
            "strict_amount": r.normal(size=n),
            "clipped": r.uniform(0, 10, n),
            "flag": r.random(n) < 0.3,
            "colour": r.choice(["red", "green", "blue"], n),
            "closed_colour": r.choice(["red", "green"], n),
            "code": r.choice([1, 2, 3], n),
            "when": pd.date_range("2024-01-01", periods=n, freq="37h").strftime("%Y-%m-%d"),
            "note": [" ".join(r.choice(words, 3)) + f" n{i}" for i in range(n)],
            "y": r.choice(["a", "b"], n),
        }
    )
    frame.loc[::17, "amount"] = np.nan
    frame.loc[::23, "colour"] = None
    return frame


def policy_schema() -> TableSchema:
    schema = infer_schema(training_frame(), target="y")
    policies = {
        "strict_amount": ColumnPolicy(nulls="reject"),
        "clipped": ColumnPolicy(out_of_range="clip"),
        "count": ColumnPolicy(out_of_range="reject"),
        "closed_colour": ColumnPolicy(unknown_category="reject", nulls="reject"),
    }
    columns = tuple(
        replace(c, policy=policies[c.name]) if c.name in policies else c for c in schema.columns
    )
    return replace(schema, columns=columns)


SCHEMA = policy_schema()
FEATURES = [c.name for c in SCHEMA.features]
ENCODER = FeatureEncoder(FeatureSettings(text_min_df=1)).fit(
    SCHEMA.check(training_frame())[0], SCHEMA.features
)


def test_every_kind_is_a_feature_of_the_test_schema() -> None:
    kinds = {c.name: c.kind for c in SCHEMA.features}
    assert set(kinds.values()) == {
        "numeric",
        "integer",
        "boolean",
        "categorical",
        "datetime",
        "text",
    }
    assert kinds["note"] == "text" and kinds["when"] == "datetime" and kinds["code"] == "integer"


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.integers(-5, 60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-5, 15),
    st.sampled_from(["red", "green", "blue", "purple", "3", "2.5", "yes", "2024-02-03", ""]),
    st.text(max_size=8),
)


def typed(kind: str) -> st.SearchStrategy[Any]:
    """Values a client of a column of this kind would usually send."""
    return {
        "numeric": st.one_of(st.floats(-50, 200), st.integers(-5, 60), st.none()),
        "integer": st.one_of(st.integers(-5, 60), st.floats(-5, 60), st.none()),
        "boolean": st.one_of(st.booleans(), st.none()),
        "categorical": st.one_of(
            st.sampled_from(["red", "green", "blue", "purple", "1", "2"]),
            st.integers(0, 4),
            st.booleans(),
            st.none(),
        ),
        "datetime": st.one_of(
            st.dates().map(lambda d: d.isoformat()), st.sampled_from(["soon", ""]), st.none()
        ),
        "text": st.one_of(st.text(max_size=20), st.just("alpha beta n1"), st.none()),
    }[kind]


KINDS = {c.name: c.kind for c in SCHEMA.features}
valid: dict[str, st.SearchStrategy[Any]] = {
    **{name: typed(kind) for name, kind in KINDS.items()},
    "strict_amount": st.floats(-3, 3),
    "count": st.integers(0, 39),
    "closed_colour": st.sampled_from(["red", "green"]),
    "when": st.dates().map(lambda d: d.isoformat()),
}


@st.composite
def requests(draw: st.DrawFn) -> list[Any]:
    n = draw(st.integers(1, 4))
    out: list[Any] = []
    for _ in range(n):
        if draw(st.integers(0, 30)) == 0:
            out.append(draw(st.sampled_from([[], "x", 3, None])))
            continue
        if draw(st.booleans()):  # what a well-behaved client sends
            record = {name: draw(valid[name]) for name in FEATURES}
        else:
            record = {
                name: draw(values if draw(st.integers(0, 9)) == 0 else typed(kind))
                for name, kind in KINDS.items()
            }
        if draw(st.integers(0, 20)) == 0:
            record.pop(draw(st.sampled_from(FEATURES)))
        if draw(st.booleans()):
            record["not_a_feature"] = draw(values)
        out.append(record)
    return out


def general_path(records: list[Any]) -> pd.DataFrame | None:
    """What the server does for a request the fast path declines: None if it is refused."""
    try:
        validated = [record_model(SCHEMA, "T").model_validate(r).model_dump() for r in records]
    except ValidationError:
        return None
    frame = pd.DataFrame.from_records(validated, columns=FEATURES)
    enforced, violations, _ = SCHEMA.check(frame)
    return None if violations else enforced


def same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_the_fast_path_agrees_with_the_general_path(records: list[Any]) -> None:
    fast = record_columns(SCHEMA, records)
    event(f"fast path: {fast is not None}")
    if fast is None:
        return  # the general path answers alone: nothing to compare
    enforced = general_path(records)
    assert enforced is not None, "the fast path accepted what the general path refuses"
    for view in VIEWS:
        a, b = ENCODER.transform(fast, view), ENCODER.transform(enforced, view)
        assert a.names == b.names
        assert same(a.X, b.X), view
        assert same(a.codes, b.codes), view


def clean(n: int = 3) -> list[dict[str, Any]]:
    rows = training_frame().drop(columns="y").head(n).to_dict(orient="records")
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in rows
    ]


def test_a_clean_request_takes_the_fast_path() -> None:
    records = clean()
    fast = record_columns(SCHEMA, records)
    assert fast is not None and len(fast) == 3
    assert fast["amount"].dtype == np.float64 and math.isnan(fast["amount"][0])
    assert fast["colour"][:2] == [None, records[1]["colour"]]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "12.5"),  # a number sent as a string: converted by the general path
        ("strict_amount", None),  # a null where the policy rejects nulls
        ("strict_amount", float("inf")),  # infinity where nulls are rejected
        ("count", 10_000),  # outside the training range, policy reject
        ("closed_colour", "purple"),  # an unknown category, policy reject
        ("flag", "yes"),  # a boolean spelled as a word
        ("colour", 2.5),  # a float category: its text depends on the whole column
        ("colour", 2**60),  # an integer that float64 cannot hold exactly
    ],
)
def test_what_needs_conversion_or_breaks_a_policy_takes_the_general_path(
    field: str, value: Any
) -> None:
    records = clean()
    records[1][field] = value
    assert record_columns(SCHEMA, records) is None


def test_a_missing_field_or_a_non_object_record_takes_the_general_path() -> None:
    records: list[Any] = clean()
    del records[0]["amount"]
    assert record_columns(SCHEMA, records) is None
    assert record_columns(SCHEMA, [*clean(1), ["not", "an", "object"]]) is None


def test_clipping_matches_the_schema() -> None:
    records = clean(2)
    records[0]["clipped"] = 1e9
    fast = record_columns(SCHEMA, records)
    assert fast is not None
    assert fast["clipped"][0] == pytest.approx(float(SCHEMA["clipped"].maximum))  # type: ignore[arg-type]
