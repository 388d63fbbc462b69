"""POST /v1/feedback: stored on its own, idempotent, conflicts refused, survives restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from mlwright.package.store import load_package
from mlwright.serve.app import ServeSettings, create_app
from tests.serve.test_app import package, records  # noqa: F401  (module fixture)

JSON = {"content-type": "application/json"}


def client(package: Path, db: Path) -> TestClient:  # noqa: F811
    app = create_app(load_package(package), settings=ServeSettings(store=str(db)))
    return TestClient(app.state.asgi)


def stored(db: Path) -> dict[str, tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return {
            pid: (kind, value)
            for pid, kind, value in conn.execute("SELECT prediction_id, kind, value FROM feedback")
        }


def test_feedback_is_stored_once_and_joined_to_its_prediction(
    package: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    db = tmp_path / "serve.db"
    with client(package, db) as c:
        answer = c.post("/v1/predict", json={"records": records(package, 2)}).json()
        first, second = (p["prediction_id"] for p in answer["predictions"])
        label = answer["predictions"][0]["prediction"]
        other = "no" if label == "yes" else "yes"  # the other class: a label must be a class
        ok = c.post("/v1/feedback", json={"prediction_id": first, "label": label})
        assert ok.status_code == 200 and ok.json() == {"stored": 1, "repeats": 0}
        again = c.post("/v1/feedback", json={"prediction_id": first, "label": label})
        assert again.status_code == 200 and again.json() == {"stored": 0, "repeats": 1}
        clash = c.post("/v1/feedback", json={"prediction_id": first, "label": other})
        assert clash.status_code == 409
        (err,) = clash.json()["errors"]
        assert err["field"] == "label" and "already has feedback" in err["reason"]
        # a batch with one conflict stores nothing
        batch = c.post(
            "/v1/feedback",
            json={
                "items": [
                    {"prediction_id": second, "reward": 1},
                    {"prediction_id": first, "label": other},
                ]
            },
        )
        assert batch.status_code == 409 and batch.json()["errors"][0]["record"] == 1
    assert set(stored(db)) == {first}
    with sqlite3.connect(db) as conn:  # joined at read time, by prediction_id
        joined = conn.execute(
            "SELECT p.variant, f.kind FROM feedback f JOIN predictions p USING (prediction_id)"
        ).fetchall()
    assert joined == [("champion", "label")]
    with client(package, db) as c:  # after a restart the feedback is still there
        again = c.post("/v1/feedback", json={"prediction_id": first, "label": label})
        assert again.json() == {"stored": 0, "repeats": 1}
        early = c.post("/v1/feedback", json={"prediction_id": "notyetflushed:0", "label": "no"})
        assert early.status_code == 200  # feedback may arrive before its prediction is stored


def test_bad_feedback_is_a_422_naming_the_field(package: Path, tmp_path: Path) -> None:  # noqa: F811
    with client(package, tmp_path / "serve.db") as c:
        cases = [
            ({"prediction_id": "abc:0"}, "exactly one of label, value or reward"),
            ({"prediction_id": "abc:0", "label": "x", "reward": 1}, "got label, reward"),
            ({"prediction_id": "no-row", "label": "x"}, "<request_id>:<row>"),
            ({"prediction_id": "abc:0", "value": "NaN"}, "finite"),
            ({"prediction_id": "abc:0", "label": "x", "extra": 1}, "Extra inputs"),
            ({"items": []}, "at least 1"),
        ]
        for body, reason in cases:
            response = c.post("/v1/feedback", json=body)
            assert response.status_code == 422, body
            assert reason in response.json()["errors"][0]["reason"], response.json()
        broken = c.post("/v1/feedback", content=b"{not json", headers=JSON)
        assert broken.status_code == 422
        assert broken.json()["errors"][0]["reason"] == "the body is not valid JSON"
    assert stored(tmp_path / "serve.db") == {}


def test_a_server_without_a_store_says_so(package: Path) -> None:  # noqa: F811
    app = create_app(load_package(package), settings=ServeSettings(store=None))
    with TestClient(app.state.asgi) as c:
        response = c.post("/v1/feedback", json={"prediction_id": "abc:0", "label": "x"})
    assert response.status_code == 503 and "--store" in response.json()["errors"][0]["fix"]


def test_a_covariate_travels_with_the_feedback(package: Path, tmp_path: Path) -> None:  # noqa: F811
    db = tmp_path / "serve.db"
    with client(package, db) as c:
        item = {"prediction_id": "abc:0", "reward": 1.0, "covariate": 12.5}
        assert c.post("/v1/feedback", json=item).json() == {"stored": 1, "repeats": 0}
        assert c.post("/v1/feedback", json=item).json() == {"stored": 0, "repeats": 1}
        changed = c.post("/v1/feedback", json={**item, "covariate": 3.0})
        assert changed.status_code == 409
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT covariate FROM feedback").fetchall() == [(12.5,)]


def test_a_store_from_before_covariates_gains_the_column(tmp_path: Path) -> None:
    from mlwright.store import connect

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE feedback (prediction_id TEXT PRIMARY KEY, ts REAL NOT NULL, "
            "kind TEXT NOT NULL, value TEXT NOT NULL)"
        )
        conn.execute("INSERT INTO feedback VALUES ('a:0', 1.0, 'reward', '1')")
    connect(db).close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT * FROM feedback").fetchall() == [
            ("a:0", 1.0, "reward", "1", None)
        ]
