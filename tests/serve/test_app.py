"""The model server's HTTP contract, through the ASGI app (and once through real uvicorn)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlwright as mw
from mlwright.package.store import MANIFEST, load_package, sha256
from mlwright.serve.app import ServeSettings, create_app
from tests.conftest import make_frame
from tests.serve.support import serving


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = (
        make_frame(300)
        .assign(joined=pd.date_range("2020-01-01", periods=300, freq="D").strftime("%Y-%m-%d"))
        .sample(frac=1, random_state=0)
        .reset_index(drop=True)
    )
    path = tmp_path_factory.mktemp("serve") / "churn"
    mw.train(
        frame, target="churned", max_trials=1, families=("lightgbm",), out=str(path), tracker="none"
    )
    return path


def client(path: Path, **settings: Any) -> TestClient:
    app = create_app(load_package(path), settings=ServeSettings(**settings))
    return TestClient(app.state.asgi)


def records(path: Path, n: int = 3) -> list[dict[str, Any]]:
    return list(load_package(path).golden["inputs"][:n])  # type: ignore[index]


def test_predict_follows_the_contract(package: Path) -> None:
    rows = records(package, 5)
    with client(package) as c:
        assert c.get("/health").json() == {"status": "alive"}
        ready = c.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["model"] == {"name": "churned", "version": None, "variant": "champion"}
        response = c.post("/v1/predict", json={"records": rows})
    assert response.status_code == 200
    body = response.json()
    assert body["model"]["name"] == "churned"
    ids = [p["prediction_id"] for p in body["predictions"]]
    assert ids == [f"{body['request_id']}:{i}" for i in range(5)]
    expected = load_package(package).predict(pd.DataFrame.from_records(rows))
    got = pd.DataFrame(body["predictions"])
    assert got.prediction.tolist() == expected.prediction.tolist()
    np.testing.assert_allclose(got.proba_yes, expected.proba_yes, rtol=0, atol=1e-12)


def test_nulls_unknown_categories_nan_and_inf_follow_the_schema_policy(package: Path) -> None:
    row = records(package, 1)[0]
    odd = {**row, "colour": "ultraviolet", "x1": None}
    with client(package) as c:
        assert c.post("/v1/predict", json={"records": [odd]}).status_code == 200
        body = json.dumps({"records": [{**row, "x2": float("inf")}]})  # JSON "Infinity"
        response = c.post("/v1/predict", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"records": [{"x1": "abc"}]}, {"record": 0, "field": "x1"}),
        ({"records": []}, {"record": None, "field": "records"}),
        ({"rows": []}, {"record": None, "field": "records"}),
        ([1, 2, 3], {"record": None}),
    ],
    ids=["bad-type", "empty", "wrong-key", "not-an-object"],
)
def test_bad_requests_get_a_422_naming_record_and_field(
    package: Path, body: Any, expected: dict[str, Any]
) -> None:
    with client(package) as c:
        response = c.post("/v1/predict", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(all(e[k] == v for k, v in expected.items()) for e in errors), errors
    assert all({"record", "field", "value", "reason", "fix"} <= set(e) for e in errors)


def test_missing_fields_and_invalid_json(package: Path) -> None:
    row = records(package, 1)[0]
    partial = {k: v for k, v in row.items() if k != "colour"}
    with client(package) as c:
        missing = c.post("/v1/predict", json={"records": [row, partial]}).json()["errors"]
        assert missing == [
            {
                "record": 1,
                "field": "colour",
                "value": None,
                "reason": "required field is missing",
                "fix": "send 'colour' (null is allowed)",
            }
        ]
        broken = c.post(
            "/v1/predict", content=b'{"records": [', headers={"content-type": "application/json"}
        )
        assert broken.status_code == 422
        assert broken.json()["errors"][0]["reason"] == "the body is not valid JSON"


def test_size_limits(package: Path) -> None:
    row = records(package, 1)[0]
    with client(package, max_rows=3, max_body_bytes=20_000) as c:
        too_many = c.post("/v1/predict", json={"records": [row] * 4})
        assert too_many.status_code == 422
        assert too_many.json()["errors"][0]["field"] == "records"
        # MLflow's route: the same cap, in each body shape, counted before rows are read
        columns = list(row)
        csv = ",".join(columns) + "\n" + "\n".join(",".join(["1"] * len(row)) for _ in range(4))
        for body, media in (
            (json.dumps({"dataframe_records": [row] * 4}), "application/json"),
            (json.dumps({"inputs": {k: [v] * 4 for k, v in row.items()}}), "application/json"),
            (
                json.dumps({"dataframe_split": {"columns": columns, "data": [[0] * 99] * 4}}),
                "application/json",
            ),
            (csv + "\n", "text/csv"),
        ):
            refused = c.post("/invocations", content=body, headers={"content-type": media})
            assert refused.status_code == 400, refused.text
            assert "holds 4 rows; at most 3" in refused.json()["message"]
        fine = c.post("/invocations", json={"dataframe_records": [row] * 3})
        assert fine.status_code == 200, fine.text
        too_big = c.post(
            "/v1/predict", content=b" " * 30_000, headers={"content-type": "application/json"}
        )
        assert too_big.status_code == 413
        assert "larger than 20,000 bytes" in too_big.json()["errors"][0]["reason"]


@pytest.mark.parametrize("shape", ["dataframe_split", "dataframe_records", "instances", "inputs"])
def test_invocations_accepts_mlflow_shapes(package: Path, shape: str) -> None:
    rows = records(package, 4)
    frame = pd.DataFrame.from_records(rows)
    payload: Any = {
        "dataframe_split": json.loads(frame.to_json(orient="split", index=False)),
        "dataframe_records": rows,
        "instances": rows,
        "inputs": rows,
    }[shape]
    with client(package) as c:
        response = c.post("/invocations", json={shape: payload})
        assert response.status_code == 200, response.text
        predicted = c.post("/v1/predict", json={"records": rows}).json()["predictions"]
    served = response.json()["predictions"]
    assert [p["prediction"] for p in served] == [p["prediction"] for p in predicted]
    np.testing.assert_allclose(
        [p["proba_yes"] for p in served], [p["proba_yes"] for p in predicted], atol=1e-9
    )


def test_invocations_errors_are_mlflow_shaped(package: Path) -> None:
    with client(package) as c:
        for body in (
            b"nope",
            b'{"columns": []}',
            b'{"instances": [1, 2]}',
            b'{"dataframe_split": {"columns": ["x1"], "data": [["a"]]}}',
        ):
            response = c.post(
                "/invocations", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 400, body
            assert response.json()["error_code"] == "BAD_REQUEST"


def resign(path: Path, rel: str) -> None:
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["files"][rel] = sha256(path / rel)
    (path / MANIFEST).write_text(json.dumps(manifest))


def test_gate_refuses_a_model_whose_golden_examples_do_not_reproduce(
    package: Path, tmp_path: Path
) -> None:
    broken = Path(shutil.copytree(package, tmp_path / "broken"))
    expected = json.loads((broken / "golden" / "expected.json").read_text())
    expected[0]["proba_yes"] += 0.01
    (broken / "golden" / "expected.json").write_text(json.dumps(expected))
    resign(broken, "golden/expected.json")
    with client(broken) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503
        assert "golden examples do not reproduce" in ready.json()["reason"]
        assert c.get("/health").status_code == 200
        refused = c.post("/v1/predict", json={"records": records(package, 1)})
        assert refused.status_code == 503


def test_gate_checks_the_latency_budget(package: Path, tmp_path: Path) -> None:
    slow = Path(shutil.copytree(package, tmp_path / "slow"))
    recipe = json.loads((slow / "recipe.json").read_text())
    recipe["options"]["latency_budget_ms"] = 0.0001
    (slow / "recipe.json").write_text(json.dumps(recipe))
    resign(slow, "recipe.json")
    with client(slow) as c:
        ready = c.get("/ready")
    assert ready.status_code == 503
    assert "over the budget of 0.0001 ms" in ready.json()["reason"]
    recipe["options"]["latency_budget_ms"] = 1000
    (slow / "recipe.json").write_text(json.dumps(recipe))
    resign(slow, "recipe.json")
    with client(slow) as c:
        assert c.get("/ready").status_code == 200
        assert c.get("/v1/models").json()["models"][0]["gate"]["latency_p99_ms"] < 1000


def test_docs_show_the_real_columns(package: Path) -> None:
    with client(package) as c:
        spec = c.get("/openapi.json").json()
        assert c.get("/docs").status_code == 200
    record = spec["components"]["schemas"]["ChurnedRecord"]
    assert set(record["properties"]) == {"x1", "x2", "colour", "joined"}
    assert set(record["required"]) == {"x1", "x2", "colour", "joined"}
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ChurnedPredictRequest"}
    request = spec["components"]["schemas"]["ChurnedPredictRequest"]
    assert request["properties"]["records"]["items"] == {
        "$ref": "#/components/schemas/ChurnedRecord"
    }


def test_values_that_need_converting_get_the_same_answer(package: Path) -> None:
    rows = records(package, 4)
    spelled = [{**r, "x1": str(r["x1"]), "x2": str(r["x2"])} for r in rows]  # the general path
    with client(package) as c:
        fast = c.post("/v1/predict", json={"records": rows}).json()["predictions"]
        general = c.post("/v1/predict", json={"records": spelled}).json()["predictions"]
    strip = [{k: v for k, v in p.items() if k != "prediction_id"} for p in fast]
    assert strip == [{k: v for k, v in p.items() if k != "prediction_id"} for p in general]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "records": st.lists(
                    st.dictionaries(
                        st.sampled_from(["x1", "x2", "colour", "joined", "other"]),
                        json_values,
                        max_size=5,
                    ),
                    max_size=3,
                )
            }
        ),
    ),
    raw=st.binary(max_size=64),
)
def test_no_body_produces_a_500(package: Path, body: Any, raw: bytes) -> None:
    with client(package) as c:
        for path in ("/v1/predict", "/invocations"):
            assert c.post(path, json=body).status_code < 500
            assert (
                c.post(path, content=raw, headers={"content-type": "application/json"}).status_code
                < 500
            )


def test_real_uvicorn_server_starts_serves_and_stops(package: Path, tmp_path: Path) -> None:
    with serving(package, tmp_path) as (base, proc):
        request = urllib.request.Request(
            f"{base}/v1/predict",
            data=json.dumps({"records": records(package, 2)}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert len(json.loads(response.read())["predictions"]) == 2
        proc.send_signal(signal.SIGTERM)
        # uvicorn finishes in-flight work, then re-raises the signal as its exit status
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "serving churned" in (tmp_path / "serve.log").read_text()


def test_serve_refuses_a_tampered_package(package: Path, tmp_path: Path) -> None:
    bad = Path(shutil.copytree(package, tmp_path / "bad"))
    (bad / "model" / "lightgbm.txt").write_text("tampered")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mlwright"), "serve", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "model/lightgbm.txt was modified" in done.stderr


def test_metrics_count_requests_latency_and_predictions(package: Path) -> None:
    with client(package) as c:
        rows = records(package, 4)
        answer = c.post("/v1/predict", json={"records": rows})
        c.post("/v1/predict", json={"records": [{"x1": "bad"}]})
        text = c.get("/metrics").text
    assert answer.headers["x-request-id"] == answer.json()["request_id"]
    assert (
        'mlwright_requests_total{model="churned",route="/v1/predict",status="200",version=""} 1.0'
        in text
    )
    assert (
        'mlwright_requests_total{model="churned",route="/v1/predict",status="422",version=""} 1.0'
        in text
    )
    assert "mlwright_request_seconds_bucket" in text
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("mlwright_predictions_total{")
    )
    assert counted == 4
    assert 'mlwright_model_ready{model="churned",version=""} 1.0' in text


def test_access_log_has_the_request_id(package: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="mlwright.access"), client(package) as c:
        answer = c.post("/v1/predict", json={"records": records(package, 1)})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "mlwright.access"]
    (line,) = [entry for entry in lines if entry["path"] == "/v1/predict"]
    assert line["request_id"] == answer.json()["request_id"]
    assert line["status"] == 200
    assert line["ms"] > 0


NO_MLFLOW = """
import json, sys
from fastapi.testclient import TestClient
from mlwright.package.store import load_package
from mlwright.serve.app import ServeSettings, create_app
model = load_package(sys.argv[1])
rows = model.golden["inputs"][:3]
app = create_app(model, settings=ServeSettings(store=sys.argv[2]))
with TestClient(app.state.asgi) as c:
    ok = c.post("/v1/predict", json={"records": rows}).status_code
    spelled = [{**r, "x2": str(r["x2"])} for r in rows]  # the general path
    general = c.post("/v1/predict", json={"records": spelled}).status_code
    bad = c.post("/v1/predict", json={"records": [{"x1": "old"}]}).status_code
print(json.dumps([ok, general, bad, sorted(m for m in sys.modules if m.startswith("mlflow"))]))
"""


def test_the_request_path_never_imports_mlflow(package: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_MLFLOW, str(package), str(tmp_path / "serve.db")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [200, 200, 422, []]
