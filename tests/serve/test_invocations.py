"""``POST /invocations`` on the fast path: every MLflow body shape gives the answer the pandas
path gives, for a single family and an ensemble, classification and regression, with missing
values, unknown categories and integer, boolean and date columns."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import mlwright as mw
from mlwright.package.model import Model
from mlwright.package.store import load_package
from mlwright.serve.app import ServeSettings, create_app
from mlwright.serve.invocations import Invocations, answer, csv_records
from mlwright.train.models.ensemble import EnsembleFamily

JSON = {"content-type": "application/json"}
CSV = {"content-type": "text/csv"}
COLUMNS = ["x1", "count", "member", "colour", "joined"]


def mixed_frame(n: int = 240, seed: int = 3) -> pd.DataFrame:
    """A float column with gaps, an integer, a boolean, a category with gaps and a date; a
    class target and a numeric one."""
    r = np.random.default_rng(seed)
    x1 = r.normal(size=n)
    x1[::17] = np.nan
    count = r.integers(0, 20, size=n)
    member = r.random(n) < 0.5
    colour = r.choice(["red", "green", "blue"], size=n).astype(object)
    colour[::13] = None
    joined = pd.date_range("2021-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
    signal = np.nan_to_num(x1) + 0.1 * count + member + (colour == "red")
    return pd.DataFrame(
        {
            "x1": x1,
            "count": count,
            "member": member,
            "colour": colour,
            "joined": joined,
            "churned": np.where(signal + r.normal(size=n) * 0.5 > 1.2, "yes", "no"),
            "spend": 3 * signal + r.normal(size=n),
        }
    )


def ensemble_of(models: list[Model], out: Path) -> Path:
    """A package whose family blends ``models``' families (trained on the same frame)."""
    first = models[0]
    members = [m.family for m in models]
    params = {
        "blend": {"method": "weighted", "weights": [0.6, 0.4]},
        "members": [{"family": f.name, "params": f.params} for f in members],
    }
    family = EnsembleFamily(params, first.family.ctx)
    family.members_ = members
    family.fitted_ = {"members": [f.fitted_ for f in members]}
    # served with the gate off (the gate has its own tests): no golden examples to reproduce
    dataclasses.replace(first, family=family, path=None, golden=None).save(out)
    return out


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """(single family | ensemble) x (classification | regression), as saved packages."""
    frame = mixed_frame()
    root = tmp_path_factory.mktemp("invocations")
    out: dict[str, Path] = {}
    for target, drop in (("churned", "spend"), ("spend", "churned")):
        data = frame.drop(columns=drop)
        single = root / f"{target}-lightgbm"
        trained = [
            mw.train(
                data,
                target=target,
                max_trials=1,
                families=(family,),
                tracker="none",
                out=str(single) if family == "lightgbm" else None,
            )
            for family in ("lightgbm", "linear")
        ]
        out[f"{target}-single"] = single
        out[f"{target}-ensemble"] = ensemble_of(trained, root / f"{target}-ensemble")
    return out


@pytest.fixture(scope="module")
def servers(packages: dict[str, Path]) -> Iterator[dict[str, tuple[TestClient, Any]]]:
    """Each package's server (its gate off): the client, and what it serves."""
    apps = {
        name: create_app(load_package(path), settings=ServeSettings(gate=False))
        for name, path in packages.items()
    }
    opened = {
        name: (TestClient(app.state.asgi), app.state.server.served) for name, app in apps.items()
    }
    for c, _ in opened.values():
        c.__enter__()
    yield opened
    for c, _ in opened.values():
        c.__exit__(None, None, None)


@pytest.fixture(scope="module")
def clients(servers: dict[str, tuple[TestClient, Any]]) -> dict[str, TestClient]:
    return {name: c for name, (c, _) in servers.items()}


def rows() -> list[dict[str, Any]]:
    """Clean rows, then missing values in every column, an unknown category, integers written
    as floats and booleans: what a caller sends."""
    clean = mixed_frame(8, seed=11)[COLUMNS].astype(object)
    records = clean.where(clean.notna(), None).to_dict(orient="records")
    records[1] = dict.fromkeys(COLUMNS)  # every value missing
    records[2] = {**records[2], "colour": "ultraviolet", "member": True}
    records[3] = {**records[3], "count": 7.0, "x1": 3, "member": False}
    records[4] = {**records[4], "joined": None, "colour": None}
    return records


def bodies(records: list[dict[str, Any]]) -> dict[str, tuple[bytes, dict[str, str]]]:
    """The same records in each of MLflow's body shapes."""
    split = {"columns": COLUMNS, "data": [[r[c] for c in COLUMNS] for r in records]}
    columnar = {c: [r[c] for r in records] for c in COLUMNS}
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    writer.writerows([["" if r[c] is None else r[c] for c in COLUMNS] for r in records])
    return {
        "dataframe_split": (orjson.dumps({"dataframe_split": split}), JSON),
        "dataframe_records": (orjson.dumps({"dataframe_records": records}), JSON),
        "instances": (orjson.dumps({"instances": records}), JSON),
        "inputs": (orjson.dumps({"inputs": records}), JSON),
        "inputs-columnar": (orjson.dumps({"inputs": columnar}), JSON),
        "params": (orjson.dumps({"inputs": records, "params": {"threshold": 0.3}}), JSON),
        "csv": (text.getvalue().encode(), CSV),
    }


def pandas_answer(model: Model, invoker: Invocations, raw: bytes, media: dict[str, str]) -> Any:
    """What the pandas path answers for the same body."""
    if media is CSV:
        payload: Any = {"dataframe_records": csv_records(raw, model.schema)}
    else:
        payload = orjson.loads(raw)
    return orjson.loads(answer(model.outputs(invoker.frame(model.schema, payload))))["predictions"]


KINDS = ["churned-single", "churned-ensemble", "spend-single", "spend-ensemble"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_shape_answers_what_the_pandas_path_answers(
    kind: str, servers: dict[str, tuple[TestClient, Any]]
) -> None:
    c, served = servers[kind]
    model, invoker = served.serving, served.invoker
    records = rows()
    expected = model.predict(pd.DataFrame.from_records(records))
    assert (model.family.name == "ensemble") == kind.endswith("ensemble")
    for shape, (raw, media) in bodies(records).items():
        response = c.post("/invocations", content=raw, headers=media)
        assert response.status_code == 200, (shape, response.text)
        got = response.json()["predictions"]
        assert got == pandas_answer(model, invoker, raw, media), shape  # bit for bit
        assert [p["prediction"] for p in got] == expected["prediction"].tolist(), shape
        for column in expected.columns.drop("prediction"):
            np.testing.assert_allclose([p[column] for p in got], expected[column], atol=1e-12)


@pytest.fixture
def no_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pandas path fails the test if it is taken."""

    def refuse(self: Invocations, schema: Any, payload: Any) -> Any:
        raise AssertionError(f"took the pandas path: {str(payload)[:200]}")

    monkeypatch.setattr(Invocations, "frame", refuse)


@pytest.mark.parametrize("kind", KINDS)
def test_clean_bodies_take_the_fast_path(
    kind: str, clients: dict[str, TestClient], no_pandas: None
) -> None:
    for shape, (raw, media) in bodies(rows()).items():
        response = clients[kind].post("/invocations", content=raw, headers=media)
        assert response.status_code == 200, (shape, response.text)


def invoke(c: TestClient, body: Any, headers: dict[str, str] = JSON) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = c.post("/invocations", content=raw, headers=headers)
    return response.status_code, response.json()


ROW = {"x1": 0.5, "count": 3, "member": True, "colour": "red", "joined": "2021-03-01"}


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        ({"inputs": [{**ROW, "x1": "abc"}]}, JSON, "record 0 'x1': expected a number"),
        ({"inputs": [{**ROW, "member": [1]}]}, JSON, "record 0 'member'"),
        ({"inputs": [{**ROW, "colour": {"a": 1}}]}, JSON, "record 0 'colour': expected a string"),
        ({"dataframe_split": {"columns": ["x1"], "data": [["a"]]}}, JSON, "'x1'"),
        ({"dataframe_split": {"columns": ["x1"]}}, JSON, "needs 'columns' and 'data'"),
        ({"dataframe_split": {"columns": ["x1", "x1"], "data": [[1, 2]]}}, JSON, "'x1' twice"),
        (
            {"dataframe_split": {"columns": COLUMNS, "data": [[1, 2]]}},
            JSON,
            "row 0 has 2 values for 5 columns",
        ),
        ({"inputs": [ROW], "instances": [ROW]}, JSON, "send exactly one of"),
        ({"params": {}}, JSON, "send exactly one of"),
        ([ROW], JSON, "must be a JSON object"),
        ({"instances": [1, 2]}, JSON, "must be a list of records"),
        ({"inputs": [{k: v for k, v in ROW.items() if k != "joined"}]}, JSON, "joined"),
        (b'{"inputs": [', JSON, "not valid JSON"),
        (b"x1,count\n1,2,3\n", CSV, "line 2 of the CSV body has 3 fields; its header has 2"),
        (b"", CSV, "the CSV body is empty"),
        (b"x1\n\xff\n", CSV, "not UTF-8"),
        (b"x1,count,member,colour,joined\nabc,1,true,red,2021-01-01\n", CSV, "record 0 'x1'"),
        (b"x1,count,member,colour,joined\n--inf,1,true,red,2021-01-01\n", CSV, "record 0 'x1'"),
    ],
)
def test_bad_bodies_get_mlflow_errors_naming_the_field(
    clients: dict[str, TestClient], body: Any, headers: dict[str, str], message: str
) -> None:
    status, answer = invoke(clients["churned-single"], body, headers)
    assert status == 400, answer
    assert answer["error_code"] == "BAD_REQUEST"
    assert message in answer["message"], answer


def test_params_are_ignored_as_mlflow_does(
    clients: dict[str, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    c = clients["spend-single"]
    plain = invoke(c, {"inputs": [ROW]})
    with caplog.at_level("WARNING", logger="mlwright.serve"):
        for params in ({"alpha": 1}, "not a dict", [1, 2]):
            assert invoke(c, {"inputs": [ROW], "params": params}) == plain
    assert sum("ignoring `params`" in r.message for r in caplog.records) <= 1


def test_csv_reads_cells_by_the_column_kind(packages: dict[str, Path]) -> None:
    model = load_package(packages["churned-single"])
    raw = b"x1,count,member,colour,joined,extra\n1.5,NA,TRUE,007,2021-01-01,\n,2,no,,null,x\n"
    assert csv_records(raw, model.schema) == [
        {"x1": 1.5, "count": None, "member": True, "colour": "007", "joined": "2021-01-01",
         "extra": None},
        {"x1": None, "count": 2.0, "member": "no", "colour": None, "joined": None, "extra": "x"},
    ]  # fmt: skip


def test_other_content_types_are_refused_and_csv_only_on_invocations(
    clients: dict[str, TestClient],
) -> None:
    c = clients["churned-single"]
    plain = c.post("/invocations", content=b"x1\n1\n", headers={"content-type": "text/plain"})
    assert plain.status_code == 415
    assert "text/csv" in plain.json()["errors"][0]["reason"]
    predict = c.post("/v1/predict", content=b"x1\n1\n", headers=CSV)
    assert predict.status_code == 415


def test_not_ready_is_a_503_in_mlflow_shape(packages: dict[str, Path]) -> None:
    app = create_app(load_package(packages["churned-single"]))
    invoker: Callable[..., tuple[int, bytes]] = app.state.server.served.invoker
    status, body = invoker(orjson.dumps({"inputs": [ROW]}))  # the gate has not run
    assert status == 503
    assert orjson.loads(body)["error_code"] == "TEMPORARILY_UNAVAILABLE"


def test_the_openapi_document_allows_what_is_accepted(clients: dict[str, TestClient]) -> None:
    """The JSON shapes JSON Schema can state exactly, and params (any value); the route's
    description names dataframe_split and CSV."""
    spec = clients["churned-single"].get("/openapi.json").json()
    post = spec["paths"]["/invocations"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json"}
    shapes = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert [sorted(s["properties"]) for s in shapes] == [
        ["dataframe_records", "params"],
        ["instances", "params"],
        ["inputs", "params"],
    ]
    assert "dataframe_split" in post["description"] and "text/csv" in post["description"]
