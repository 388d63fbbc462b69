"""Hostile HTTP requests against the model server, each made here.

Every refusal is a 4xx that names what was refused and why (never a 500); nothing a client
sends grows ``/metrics`` without bound, is stored with a meaning it does not have, or leaves the
serving store unable to read itself back; the OpenAPI document says what the server does.
"""

from __future__ import annotations

import http.client
import random
import re
import sqlite3
import string
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from mlwright.monitor.performance import live_performance
from mlwright.package.store import load_package
from mlwright.serve.app import ServeSettings, create_app
from mlwright.store import read_predictions
from tests.conftest import make_frame, tiny_tensor_model
from tests.security.conftest import linear
from tests.track.test_mlflow import free_port

TOKEN = "admin-secret"
JSON = {"content-type": "application/json"}
ADMIN = {**JSON, "authorization": f"Bearer {TOKEN}"}
POSTS = ("/v1/predict", "/invocations", "/v1/feedback", "/v1/admin/reload")


@pytest.fixture(scope="module")
def regressor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A regression package (target x1) over the same columns as ``linear_package``."""
    folder = tmp_path_factory.mktemp("security-http") / "x1-linear"
    return linear(folder, make_frame(300).drop(columns="churned"), "x1")


def serve(package: Path, db: Path, **options: Any) -> TestClient:
    settings = ServeSettings(store=str(db), admin_token=TOKEN, **options)
    return TestClient(create_app(load_package(package), settings=settings).state.asgi)


def row(**changes: Any) -> dict[str, Any]:
    return {"x1": 0.5, "x2": 3, "colour": "red", **changes}


def headers(path: str) -> dict[str, str]:
    return ADMIN if path.startswith("/v1/admin") else JSON


def valid_body(path: str) -> bytes:
    return {
        "/v1/predict": b'{"records": [{"x1": 0.5, "x2": 3, "colour": "red"}]}',
        "/invocations": b'{"dataframe_records": [{"x1": 0.5, "x2": 3, "colour": "red"}]}',
        "/v1/feedback": b'{"prediction_id": "abc:0", "reward": 1}',
        "/v1/admin/reload": b'{"model": "./a-folder"}',  # refused: registry references only
    }[path]


def the_error(response: httpx.Response) -> dict[str, Any]:
    (error,) = response.json()["errors"]
    return dict(error)


# 6. /metrics ------------------------------------------------------------------------------------


def test_random_404_paths_share_one_metrics_label(linear_package: Path, tmp_path: Path) -> None:
    rng = random.Random(0)
    with serve(linear_package, tmp_path / "serve.db") as c:
        assert c.post("/v1/predict", json={"records": [row()]}).status_code == 200
        for experiment in ("abc", "def"):  # a route template answering 404 keeps its template
            assert c.get(f"/v1/experiments/{experiment}").status_code == 404
        c.get("/metrics")  # scraping is counted too
        sizes = []
        for _ in range(2):  # the first unmatched path adds the label; the rest add nothing
            for _ in range(500):
                path = "/x-" + "".join(rng.choices(string.ascii_letters + "/._-", k=40))
                assert c.get(path).status_code == 404
            text = c.get("/metrics").text
            sizes.append(len(text.encode()))
    assert sizes[0] < 20_000 and sizes[1] - sizes[0] < 100, sizes
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert routes == {"/v1/predict", "/v1/experiments/{experiment_id}", "/metrics", "unmatched"}
    counted = re.search(r'mlwright_requests_total\{[^}]*route="unmatched"[^}]*\} (\S+)', text)
    assert counted is not None and float(counted.group(1)) == 1_000


# 7. depth and size limits -----------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_deeply_nested_bodies_are_refused_not_a_500(linear_package: Path, tmp_path: Path) -> None:
    with serve(linear_package, tmp_path / "serve.db") as c:
        for depth in (100, 1_000, 2_000, 100_000):
            deep = nested(depth)
            bodies = {
                "/v1/predict": [b'{"records": [{"x1": %s, "x2": 3, "colour": "red"}]}' % deep],
                "/invocations": [b'{"dataframe_records": [{"x1": %s}]}' % deep,
                                 b'{"inputs": %s}' % deep],
                "/v1/feedback": [b'{"prediction_id": "abc:0", "label": %s}' % deep],
                "/v1/admin/reload": [b'{"model": %s}' % deep],
            }  # fmt: skip
            for path, sent in bodies.items():
                for body in [*sent, deep]:
                    response = c.post(path, content=body, headers=headers(path))
                    want = 400 if path == "/invocations" else 422  # MLflow's status there
                    assert response.status_code == want, (path, depth, response.text[:300])
                    text = response.text
                    assert "nested deeper than 64 levels" in text or path.startswith("/v1/admin")


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * size
        sent += size


def test_oversized_bodies_are_a_413_chunked_or_not(linear_package: Path, tmp_path: Path) -> None:
    limit = 256 * 1024
    with serve(linear_package, tmp_path / "serve.db", max_body_bytes=limit) as c:
        for path in POSTS:
            chunked = c.post(path, content=chunks(4 * limit), headers=headers(path))
            declared = c.post(path, content=b" " * (limit + 1), headers=headers(path))
            for response in (chunked, declared):
                assert response.status_code == 413, (path, response.text[:300])
                error = the_error(response)
                assert error["reason"] == "the request body is larger than 262,144 bytes"
                assert error["fix"]
            ok = c.post(path, content=valid_body(path), headers=headers(path))
            assert ok.status_code not in (413, 415, 500), (path, ok.text)


def test_a_real_server_answers_an_oversized_chunked_body_with_413(
    linear_package: Path, tmp_path: Path
) -> None:
    import uvicorn

    app = create_app(
        load_package(linear_package),
        settings=ServeSettings(store=str(tmp_path / "serve.db"), max_body_bytes=64 * 1024),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app.state.asgi, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        for path in ("/invocations", "/v1/feedback", "/v1/predict"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", path, body=chunks(1024 * 1024), headers=JSON, encode_chunked=True)
            response = conn.getresponse()
            assert response.status == 413, (path, response.read()[:300])
            conn.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# 8. feedback ------------------------------------------------------------------------------------


def stored(db: Path) -> dict[str, tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT prediction_id, kind, value FROM feedback").fetchall()
    return {pid: (kind, value) for pid, kind, value in rows}


def test_feedback_labels_must_be_one_of_the_classes(linear_package: Path, tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    with serve(linear_package, db) as c:
        answer = c.post("/v1/predict", json={"records": [row()]}).json()
        pid, predicted = (
            answer["predictions"][0]["prediction_id"],
            answer["predictions"][0]["prediction"],
        )
        other = "no" if predicted == "yes" else "yes"
        maybe = c.post("/v1/feedback", json={"prediction_id": pid, "label": "maybe"})
        assert maybe.status_code == 422
        error = the_error(maybe)
        assert (error["field"], error["value"]) == ("label", "maybe")
        assert "not one of the model's classes" in error["reason"]
        assert "'no', 'yes'" in error["fix"]
        for wrong in (True, 1, "Yes", "", ["yes"], {"yes": 1}, None):
            response = c.post("/v1/feedback", json={"prediction_id": pid, "label": wrong})
            assert response.status_code == 422, (wrong, response.text)
        value = c.post("/v1/feedback", json={"prediction_id": pid, "value": 1.0})
        assert value.status_code == 422
        assert "classification" in the_error(value)["reason"]
        assert "label" in the_error(value)["fix"]
        items = [{"prediction_id": pid, "reward": 1}, {"prediction_id": pid, "label": "maybe"}]
        batch = c.post("/v1/feedback", json={"items": items})
        assert batch.status_code == 422 and the_error(batch)["record"] == 1
        assert stored(db) == {}

        # a wrong label stored first is corrected only on request
        assert (
            c.post("/v1/feedback", json={"prediction_id": pid, "label": other}).status_code == 200
        )
        clash = c.post("/v1/feedback", json={"prediction_id": pid, "label": predicted})
        assert clash.status_code == 409
        assert '"replace": true' in the_error(clash)["fix"]
        same = c.post("/v1/feedback", json={"prediction_id": pid, "label": other})
        assert same.json() == {"stored": 0, "repeats": 1}
        fixed = c.post(
            "/v1/feedback", json={"prediction_id": pid, "label": predicted, "replace": True}
        )
        assert fixed.status_code == 200 and fixed.json() == {"stored": 1, "repeats": 0}
        again = c.post("/v1/feedback", json={"prediction_id": pid, "label": predicted})
        assert again.json() == {"stored": 0, "repeats": 1}
    assert stored(db) == {pid: ("label", f'"{predicted}"')}
    (performance,) = live_performance(db)
    assert performance["feedback"] == 1 and performance["metrics"]["accuracy"] == 1.0


def test_regression_feedback_is_a_finite_number(regressor: Path, tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    with serve(regressor, db) as c:
        rows = [{"x2": 3, "colour": "red"}, {"x2": 9, "colour": "blue"}]
        answer = c.post("/v1/predict", json={"records": rows}).json()
        first, second = (p["prediction_id"] for p in answer["predictions"])
        for outcome in (
            {"label": "high"},
            {"label": True},
            {"label": [1.5]},
            {"value": "1.5"},
            {"value": False},
            {"reward": "1"},
            {"reward": True},
        ):
            response = c.post("/v1/feedback", json={"prediction_id": first, **outcome})
            assert response.status_code == 422, (outcome, response.text)
            error = the_error(response)
            assert error["field"] == next(iter(outcome)) and error["fix"], error
        refused = c.post(
            "/v1/feedback", content=b'{"prediction_id": "%s", "value": 1e999}' % first.encode(),
            headers=JSON,
        )  # fmt: skip
        assert refused.status_code == 422 and "finite" in the_error(refused)["reason"]
        assert (
            c.post("/v1/feedback", json={"prediction_id": first, "value": 2.5}).status_code == 200
        )
        # a number sent as `label` is the true value
        assert c.post("/v1/feedback", json={"prediction_id": second, "label": 4}).status_code == 200
        repeat = c.post("/v1/feedback", json={"prediction_id": second, "value": 4})
        assert repeat.json() == {"stored": 0, "repeats": 1}
    assert stored(db) == {first: ("value", "2.5"), second: ("value", "4.0")}


# 9. content types -------------------------------------------------------------------------------


def test_post_routes_read_json_only(linear_package: Path, tmp_path: Path) -> None:
    refused = [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/csv",
        None,
    ]
    with serve(linear_package, tmp_path / "serve.db") as c:
        for path in POSTS:
            auth = {k: v for k, v in headers(path).items() if k != "content-type"}
            for media in refused:
                if path == "/invocations" and media == "text/csv":
                    continue  # MLflow's CSV body is read there (not a cross-site simple type)
                sent = {**auth, **({"content-type": media} if media else {})}
                response = c.post(path, content=valid_body(path), headers=sent)
                assert response.status_code == 415, (path, media, response.text)
                assert response.headers.get("x-request-id")  # counted and logged like any other
                message = response.text
                assert "application/json" in message and (media or "no content type") in message
            for media in ("application/json", "application/json; charset=utf-8"):
                response = c.post(
                    path, content=valid_body(path), headers={**auth, "content-type": media}
                )
                assert response.status_code != 415, (path, media)
        assert re.search(
            r'mlwright_requests_total\{[^}]*status="415"[^}]*\} [1-9]', c.get("/metrics").text
        )
    assert stored(tmp_path / "serve.db") == {"abc:0": ("reward", "1.0")}


# 10. text that the store cannot read back -------------------------------------------------------


def test_lone_surrogates_are_refused_and_the_store_reads_back(
    linear_package: Path, tmp_path: Path
) -> None:
    db = tmp_path / "serve.db"
    good = b'{"x1": 0.5, "x2": 3, "colour": "red"}'
    with serve(linear_package, db) as c:
        lone = b'{"records": [%s, {"x1": 0.1, "x2": 3, "colour": "\\ud800"}]}' % good
        response = c.post("/v1/predict", content=lone, headers=JSON)
        assert response.status_code == 422
        error = the_error(response)
        assert (error["record"], error["field"]) == (1, "colour")
        assert "surrogate" in error["reason"] and error["fix"]
        keyed_body = b'{"records": [%s], "entity_key": "a\\udfffb"}' % good
        keyed = c.post("/v1/predict", content=keyed_body, headers=JSON)
        assert keyed.status_code == 422 and the_error(keyed)["field"] == "entity_key"
        in_a_name = c.post("/v1/predict", content=b'{"records": [{"\\ud800x": 1}]}', headers=JSON)
        assert in_a_name.status_code == 422  # the field's name itself, named escaped
        assert the_error(in_a_name)["field"] == "\\ud800x"
        label = c.post(
            "/v1/feedback", content=b'{"prediction_id": "abc:0", "label": "\\ud800"}', headers=JSON
        )
        assert label.status_code == 422 and the_error(label)["field"] == "label"
        # a surrogate pair is a character (read by the standard library here, for the NaN)
        pair = b'{"records": [{"x1": NaN, "x2": 3, "colour": "\\ud83d\\ude00"}]}'
        for body in (pair, b'{"records": [%s]}' % good):
            assert c.post("/v1/predict", content=body, headers=JSON).status_code == 200
    served = list(read_predictions(db))
    assert sorted(p["inputs"]["colour"] for p in served) == ["red", "\U0001f600"]


# 11. error messages, docs and the OpenAPI document ----------------------------------------------


def test_a_wrong_json_type_names_the_column(linear_package: Path, tmp_path: Path) -> None:
    sent = [row(colour=[1, 2]), row(x1={"a": 1}), row(x2=False), row(x1=True), row(colour={})]
    with serve(linear_package, tmp_path / "serve.db") as c:
        response = c.post("/v1/predict", json={"records": sent})
    assert response.status_code == 422
    errors = {(e["record"], e["field"]): e for e in response.json()["errors"]}
    assert set(errors) == {(0, "colour"), (1, "x1"), (2, "x2"), (3, "x1"), (4, "colour")}
    assert "a boolean" in errors[(2, "x2")]["reason"]
    assert "number" in errors[(3, "x1")]["fix"]
    assert "string, number, boolean or null" in errors[(0, "colour")]["fix"]


def test_docs_load_nothing_from_another_site(linear_package: Path, tmp_path: Path) -> None:
    with serve(linear_package, tmp_path / "serve.db") as c:
        for page in ("/docs", "/redoc"):
            html = c.get(page)
            assert html.status_code == 200
            links = re.findall(r'(?:src|href|url)\s*[=:]\s*["\']([^"\']+)', html.text)
            assert links and not [link for link in links if "//" in link], links
            assets = [link for link in links if link.endswith((".js", ".css", ".png"))]
            assert len(assets) >= 2
            for asset in assets:
                loaded = c.get(asset)
                assert loaded.status_code == 200 and len(loaded.content) > 1_000, asset


def test_the_openapi_document_holds_under_schemathesis(
    linear_package: Path, tmp_path: Path
) -> None:
    """Documented statuses and content types only; what the schema allows is accepted and what
    it forbids is refused (≤ 15 seeded examples per operation and mode)."""
    found: list[tuple[str, int, str, str]] = []
    used = [
        checks.not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_schema_conformance,
        checks.positive_data_acceptance,
        checks.negative_data_rejection,
    ]
    with serve(linear_package, tmp_path / "serve.db") as c:
        schema = schemathesis.openapi.from_dict(c.get("/openapi.json").json())
        for operation in [result.ok() for result in schema.get_all_operations()]:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = operation.as_strategy(generation_mode=mode)

                @settings(
                    max_examples=15,
                    deadline=None,
                    derandomize=True,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=strategy)
                def call(case: Any) -> None:
                    sent = case.as_transport_kwargs(base_url="http://testserver")
                    if isinstance(sent.get("data"), (str, bytes)):  # a raw body
                        sent["content"] = sent.pop("data")
                    keep = ("method", "url", "headers", "json", "params", "content", "data")
                    response = c.request(**{k: v for k, v in sent.items() if k in keep})
                    try:
                        case.validate_response(response, checks=used)
                    except BaseException as exc:  # one failure group per case
                        for failure in getattr(exc, "exceptions", [exc]):
                            title = str(failure).splitlines()[0]
                            body = str(sent.get("json", sent.get("content")))[:300]
                            found.append((case.operation.label, response.status_code, title, body))

                try:
                    call()
                except Unsatisfiable:  # e.g. no request that breaks a schema without inputs
                    continue
    assert found == []


# the PyTorch server shares the guards ------------------------------------------------------------


def tensor_client(tmp_path: Path) -> TestClient:
    """The PyTorch server around a tiny module made here (no training, no export)."""
    from mlwright.serve.tensor_app import create_tensor_app

    settings = ServeSettings(store=str(tmp_path / "serve.db"), max_body_bytes=64 * 1024, gate=False)
    return TestClient(create_tensor_app(tiny_tensor_model(), settings=settings).state.asgi)


def test_the_pytorch_server_has_the_same_guards(tmp_path: Path) -> None:
    record = b'{"records": [{"input": [0.1, 0.2, 0.3, 0.4]}]}'
    with tensor_client(tmp_path) as c:
        answer = c.post("/v1/predict", content=record, headers=JSON)
        assert answer.status_code == 200, answer.text
        pid = answer.json()["predictions"][0]["prediction_id"]
        for path in ("/v1/predict", "/invocations", "/v1/feedback"):
            plain = c.post(path, content=record, headers={"content-type": "text/plain"})
            assert plain.status_code == 415, path
            too_big = c.post(path, content=chunks(1024 * 1024), headers=JSON)
            assert too_big.status_code == 413, path
            deep = c.post(path, content=nested(2_000), headers=JSON)
            assert deep.status_code == (400 if path == "/invocations" else 422), path
            assert "nested deeper than 64 levels" in deep.text
        maybe = c.post("/v1/feedback", json={"prediction_id": pid, "label": "maybe"})
        assert maybe.status_code == 422 and "'cat', 'dog'" in the_error(maybe)["fix"]
        assert (
            c.post("/v1/feedback", json={"prediction_id": pid, "label": "cat"}).status_code == 200
        )
        assert (
            c.post("/v1/feedback", json={"prediction_id": pid, "label": "dog"}).status_code == 409
        )
        fixed = c.post("/v1/feedback", json={"prediction_id": pid, "label": "dog", "replace": True})
        assert fixed.json() == {"stored": 1, "repeats": 0}
        for _ in range(50):
            assert (
                c.get("/no/such/" + "".join(random.choices(string.ascii_letters, k=30))).status_code
                == 404
            )
        text = c.get("/metrics").text
        assert c.get("/docs").status_code == 200
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert routes == {"/v1/predict", "/invocations", "/v1/feedback", "unmatched"}
    assert stored(tmp_path / "serve.db") == {pid: ("label", '"dog"')}
