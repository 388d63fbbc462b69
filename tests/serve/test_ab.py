"""A/B tests in the server: sticky split routing, fallback to the champion, the analysis."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import mlwright as mw
from mlwright.errors import ConfigError
from mlwright.experiment.config import ExperimentConfig
from mlwright.package.store import load_package
from mlwright.serve import ab
from mlwright.serve.app import ServeSettings, create_app
from tests.conftest import CliResult, make_frame


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two models of the same problem: LightGBM (champion) and linear (challenger)."""
    frame = make_frame(300)
    root = tmp_path_factory.mktemp("ab")
    for family in ("lightgbm", "linear"):
        mw.train(
            frame,
            target="churned",
            name="churn",
            max_trials=1,
            families=(family,),
            out=str(root / family),
            tracker="none",
        )
    return root / "lightgbm", root / "linear"


def experiment(split: float = 0.5, **extra: Any) -> ExperimentConfig:
    return ExperimentConfig.parse(
        {
            "id": "churn-ab",
            "variants": [
                {"name": "champion", "model": "lightgbm"},
                {"name": "challenger", "model": "linear", "weight": split},
            ],
            **extra,
        }
    )


def serve(pair: tuple[Path, Path], store: Path, config: ExperimentConfig) -> TestClient:
    champion, challenger = (load_package(p) for p in pair)
    app = create_app(
        champion,
        settings=ServeSettings(store=str(store)),
        experiment=config,
        challengers={"challenger": (challenger, "2")},
    )
    return TestClient(app.state.asgi)


def rows(pair: tuple[Path, Path], n: int = 1) -> list[dict[str, Any]]:
    return list(load_package(pair[0]).golden["inputs"][:n])  # type: ignore[index]


def test_traffic_splits_by_entity_key_and_sticks(pair: tuple[Path, Path], tmp_path: Path) -> None:
    record = rows(pair)
    seen: dict[str, str] = {}
    answers = []
    with serve(pair, tmp_path / "serve.db", experiment()) as c:
        for i in range(400):
            key = f"user-{i % 200}"  # every key twice
            body = c.post("/v1/predict", json={"records": record, "entity_key": key}).json()
            variant = body["model"]["variant"]
            assert seen.setdefault(key, variant) == variant  # sticky
            answers.append(body)
    shares = Counter(seen.values())
    assert abs(shares["challenger"] / 200 - 0.5) < 3 * np.sqrt(0.25 / 200)
    expected = {
        name: load_package(path).predict(pd.DataFrame.from_records(record)).proba_yes[0]
        for name, path in zip(("champion", "challenger"), pair, strict=True)
    }
    for body in answers:  # each variant answered with its own model
        variant = body["model"]["variant"]
        assert body["predictions"][0]["proba_yes"] == pytest.approx(expected[variant], abs=1e-12)
        assert body["model"]["version"] == ("2" if variant == "challenger" else None)


def test_the_key_may_come_from_a_header(pair: tuple[Path, Path], tmp_path: Path) -> None:
    config = experiment(entity_key={"header": "X-User-Id"})
    with serve(pair, tmp_path / "serve.db", config) as c:
        variants = {
            c.post(
                "/v1/predict", json={"records": rows(pair)}, headers={"x-user-id": "alice"}
            ).json()["model"]["variant"]
            for _ in range(20)
        }
    assert len(variants) == 1


def test_feedback_reaches_the_analysis(pair: tuple[Path, Path], tmp_path: Path) -> None:
    import time

    from mlwright.store import FLUSH_SECONDS

    record = rows(pair)
    with serve(pair, tmp_path / "serve.db", experiment()) as c:
        for i in range(300):
            body = c.post("/v1/predict", json={"records": record, "entity_key": f"u{i}"}).json()
            prediction = body["predictions"][0]
            c.post(
                "/v1/feedback",
                json={"prediction_id": prediction["prediction_id"], "label": "yes"},
            )
        deadline = time.monotonic() + 20
        while True:  # the writer process records within its flush window, after its start-up
            status = c.get("/v1/experiments/churn-ab")
            done = sum(status.json()["analysis"]["requests"].values()) == 300
            if done or time.monotonic() > deadline:
                break
            time.sleep(FLUSH_SECONDS)
        missing = c.get("/v1/experiments/other")
    assert status.status_code == 200
    body = status.json()
    assert body["status"] == "running"
    assert [v["ready"] for v in body["variants"]] == [True, True]
    analysis = body["analysis"]
    assert sum(analysis["requests"].values()) == 300
    assert not analysis["sample_ratio"]["mismatch"]
    metrics = {c["metric"] for c in analysis["comparisons"]}
    assert metrics == {"accuracy", "log_loss"}
    for comparison in analysis["comparisons"]:
        assert comparison["control"]["n"] + comparison["treatment"]["n"] == 300
        assert comparison["verdict"]
    assert missing.status_code == 404


def test_a_failing_challenger_is_answered_by_the_champion(
    pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    champion, challenger = (load_package(p) for p in pair)
    app = create_app(
        champion,
        settings=ServeSettings(store=str(tmp_path / "serve.db")),
        experiment=experiment(split=1.0),
        challengers={"challenger": (challenger, "2")},
    )

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("challenger bug")

    with TestClient(app.state.asgi) as c:
        monkeypatch.setattr(challenger, "outputs", broken)  # after it passed its gate
        body = c.post("/v1/predict", json={"records": rows(pair), "entity_key": "k"}).json()
        status = c.get("/v1/experiments/churn-ab").json()
    assert body["model"]["variant"] == "champion"
    assert status["this_worker"]["challenger"]["errors"] == 1
    # a challenger broken from the start fails its gate; the champion serves everything
    with TestClient(app.state.asgi) as c:
        ready = c.get("/ready").status_code
        body = c.post("/v1/predict", json={"records": rows(pair), "entity_key": "k"}).json()
        status = c.get("/v1/experiments/churn-ab").json()
    assert ready == 200 and body["model"]["variant"] == "champion"
    assert "challenger bug" in status["variants"][1]["failure"]
    assert status["this_worker"]["challenger"]["errors"] == 1  # the earlier one: not asked again


def test_a_stopped_experiment_routes_everything_to_the_champion(
    pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ab, "STATUS_SECONDS", 0.0)
    store = tmp_path / "serve.db"
    with serve(pair, store, experiment(split=1.0)) as c:
        first = c.post("/v1/predict", json={"records": rows(pair), "entity_key": "k"}).json()
        assert first["model"]["variant"] == "challenger"
        assert ab.set_status(store, "churn-ab", "stopped: enough")  # what `ab stop` writes
        after = c.post("/v1/predict", json={"records": rows(pair), "entity_key": "k"}).json()
        assert after["model"]["variant"] == "champion"
        status = c.get("/v1/experiments/churn-ab").json()
    assert (status["status"], status["reason"]) == ("stopped", "enough")
    with serve(pair, store, experiment(split=1.0)) as c:  # a restart keeps it stopped
        again = c.post("/v1/predict", json={"records": rows(pair), "entity_key": "k"}).json()
    assert again["model"]["variant"] == "champion"


def test_a_challenger_with_other_inputs_is_refused(pair: tuple[Path, Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    mw.train(
        make_frame(300).drop(columns="colour"),
        target="churned",
        max_trials=1,
        families=("linear",),
        out=str(other),
        tracker="none",
    )
    with pytest.raises(ConfigError, match="takes different input than the champion"):
        create_app(
            load_package(pair[0]),
            experiment=experiment(),
            challengers={"challenger": (load_package(other), None)},
        )


def test_serve_refuses_two_kinds_of_experiment_at_once(
    pair: tuple[Path, Path], cli: Callable[..., CliResult]
) -> None:
    done = cli("serve", str(pair[0]), "--challenger", str(pair[1]), "--shadow", str(pair[1]))
    assert done.code == 2 and "give one of --challenger, --shadow" in done.err
    done = cli("serve", str(pair[0]), "--challenger", str(pair[1]) + "-missing")
    assert done.code == 1 and "does not exist" in done.err


def test_mlwright_serve_runs_a_split_experiment(
    pair: tuple[Path, Path], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    import json
    import urllib.request

    from tests.serve.support import serving

    def post(url: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            url, json.dumps(body).encode(), {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    champion, challenger = pair
    with serving(champion, tmp_path, "--challenger", str(challenger), "--split", "0.5") as (
        base,
        _,
    ):
        variants = Counter(
            post(f"{base}/v1/predict", {"records": rows(pair), "entity_key": f"u{i}"})["model"][
                "variant"
            ]
            for i in range(60)
        )
        with urllib.request.urlopen(f"{base}/v1/models", timeout=10) as response:
            assert response.status == 200
        done = cli("ab", "status", "--server", base, "--json")
    assert set(variants) == {"champion", "challenger"}
    log = (tmp_path / "serve.log").read_text()
    assert "experiment exp-" in log and "challenger" in log
    assert done.code == 0, done.err
    status = json.loads(done.out)
    assert status["status"] == "running" and status["id"].startswith("exp-")


def test_a_failing_challenger_trips_the_error_guardrail(
    pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    champion, challenger = (load_package(p) for p in pair)
    store = tmp_path / "serve.db"
    config = experiment(split=0.5, guardrails={"min_requests": 20, "max_error_rate": 0.05})
    app = create_app(
        champion,
        settings=ServeSettings(store=str(store)),
        experiment=config,
        challengers={"challenger": (challenger, "2")},
    )
    calls = {"n": 0}
    original = challenger.outputs

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] % 5 == 0:  # one call in five fails: 20%
            raise RuntimeError("flaky")
        return original(*args, **kwargs)

    with TestClient(app.state.asgi) as c:
        monkeypatch.setattr(challenger, "outputs", flaky)
        answered = [
            c.post("/v1/predict", json={"records": rows(pair), "entity_key": f"u{i}"}).json()
            for i in range(200)
        ]
        status = c.get("/v1/experiments/churn-ab").json()
        metrics = c.get("/metrics").text
    assert all(a["predictions"] for a in answered)  # no request failed
    assert status["status"] == "stopped"
    assert "guardrail: challenger 'challenger'" in status["reason"]
    assert "failed on 4 of 20 requests" in status["reason"]
    assert [a["model"]["variant"] for a in answered[-50:]] == ["champion"] * 50
    assert 'mlwright_guardrail_trips_total{experiment="churn-ab",guardrail="error_rate"' in metrics
    assert 'mlwright_experiment_running{experiment="churn-ab"} 0.0' in metrics


def test_a_challenger_predicting_something_else_trips_the_shift_guardrail(
    pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    champion, challenger = (load_package(p) for p in pair)
    config = experiment(split=0.5, guardrails={"min_requests": 30, "max_prediction_psi": 0.25})
    app = create_app(
        champion,
        settings=ServeSettings(store=str(tmp_path / "serve.db")),
        experiment=config,
        challengers={"challenger": (challenger, "2")},
    )
    golden = rows(pair, 50)
    with TestClient(app.state.asgi) as c:
        original = challenger.outputs

        def skewed(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            out["proba_yes"] = out["proba_yes"] * 0.0 + 0.99  # always sure of "yes"
            out["proba_no"] = 1 - out["proba_yes"]
            return out

        monkeypatch.setattr(challenger, "outputs", skewed)
        for i in range(20):  # one row at a time: too few predictions to judge a shift
            c.post("/v1/predict", json={"records": [golden[i]], "entity_key": f"u{i}"})
        assert c.get("/v1/experiments/churn-ab").json()["status"] == "running"
        for i in range(60):  # batches of 50 rows: windows of hundreds of predictions
            c.post("/v1/predict", json={"records": golden, "entity_key": f"b{i}"})
        status = c.get("/v1/experiments/churn-ab").json()
    assert status["status"] == "stopped" and "PSI" in status["reason"]


def test_a_canary_advances_while_the_guardrails_hold(
    pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ab, "STATUS_SECONDS", 0.0)
    store = tmp_path / "serve.db"
    config = experiment(
        split=0.0,
        canary={"steps": [0.2, 0.5, 1.0], "min_requests": 10},
        guardrails={"min_requests": 10},
    )
    golden = rows(pair, 50)
    same = (pair[0], pair[0])  # the champion against itself: nothing for a guardrail to catch
    with serve(same, store, config) as c:
        assert c.get("/v1/experiments/churn-ab").json()["weights"]["challenger"] == 0.2
        for i in range(300):
            c.post("/v1/predict", json={"records": [golden[i % 50]], "entity_key": f"u{i}"})
        status = c.get("/v1/experiments/churn-ab").json()
    assert status["status"] == "running"
    assert status["canary"] == {"step": 2, "steps": [0.2, 0.5, 1.0]}
    assert status["weights"]["challenger"] == 1.0
    with serve(same, store, config) as c:  # the step is kept in the store
        assert c.get("/v1/experiments/churn-ab").json()["canary"]["step"] == 2


def test_ab_status_and_stop_read_and_write_the_store(
    pair: tuple[Path, Path], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    import json

    store = tmp_path / "serve.db"
    with serve(pair, store, experiment()) as c:
        for i in range(120):
            body = c.post("/v1/predict", json={"records": rows(pair), "entity_key": f"u{i}"})
            pid = body.json()["predictions"][0]["prediction_id"]
            c.post("/v1/feedback", json={"prediction_id": pid, "label": "yes"})
    # leaving the client shut the server down: its writer committed everything
    done = cli("ab", "status", "--store", str(store))
    assert done.code == 0, done.err
    assert "experiment churn-ab: running" in done.out and "accuracy" in done.out
    as_json = json.loads(cli("ab", "status", "churn-ab", "--store", str(store), "--json").out)
    assert sum(as_json["analysis"]["requests"].values()) == 120
    done = cli("ab", "stop", "churn-ab", "--store", str(store))
    assert done.code == 0 and "all traffic goes to the champion" in done.out
    assert (
        "stopped (stopped by `mlwright ab stop`)" in cli("ab", "status", "--store", str(store)).out
    )
    done = cli("ab", "promote", "churn-ab", "--store", str(store))
    assert done.code == 1 and "is a package folder" in done.err
    done = cli("ab", "status", "other", "--store", str(store))
    assert done.code == 1 and "known: churn-ab" in done.err
    done = cli("ab", "status", "--store", str(tmp_path / "none.db"))
    assert done.code == 1 and "no serving store" in done.err


def test_ab_promote_moves_the_alias_to_the_challenger(
    tmp_path: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    for _ in range(2):
        mw.train(make_frame(200), target="churned", name="churn", max_trials=1, seed=0)
    config = ExperimentConfig.parse(
        {
            "id": "v2-vs-v1",
            "variants": [
                {"name": "champion", "model": "churn@champion"},
                {"name": "challenger", "model": "churn/2", "weight": 0.5},
            ],
        }
    )
    store = tmp_path / "serve.db"
    ab.ExperimentRuntime(config, {}, store)  # what a server registers when it starts
    done = cli("ab", "promote", "v2-vs-v1", "--store", str(store))
    assert done.code == 0, done.err
    assert "churn@champion → version 2 (was 1)" in done.out
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "2"
    status = cli("ab", "status", "v2-vs-v1", "--store", str(store)).out
    assert "stopped (promoted churn/2 to @champion)" in status


def test_a_shadow_scores_a_copy_and_the_champion_answers(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    import time

    store = tmp_path / "serve.db"
    golden = rows(pair, 50)
    config = experiment(split=0.0, mode="shadow")
    with serve(pair, store, config) as c:
        answers = [
            c.post("/v1/predict", json={"records": golden[i : i + 5], "entity_key": f"u{i}"})
            for i in range(0, 50, 5)
        ]
        assert {a.json()["model"]["variant"] for a in answers} == {"champion"}
        deadline = time.monotonic() + 20
        while True:  # the shadow thread and the writer process are behind the responses
            status = c.get("/v1/experiments/churn-ab").json()
            if status["analysis"]["shadow"].get("pairs") == 50 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    shadow = status["analysis"]["shadow"]
    assert shadow["pairs"] == 50
    champion, challenger = (
        load_package(p).predict(pd.DataFrame.from_records(golden)) for p in pair
    )
    agree = float(np.mean(champion.prediction.to_numpy() == challenger.prediction.to_numpy()))
    assert shadow["agreement"] == pytest.approx(agree)
    gap = float(np.mean(np.abs(champion.proba_yes - challenger.proba_yes)))
    assert shadow["mean_abs_proba_difference"] == pytest.approx(gap, abs=1e-9)
    assert status["this_worker"]["challenger"]["requests"] == 10


def test_serve_reports_a_bad_experiment_file_with_its_field(
    pair: tuple[Path, Path], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    config = tmp_path / "exp.yaml"
    config.write_text(
        "id: churn-ab\nvariants:\n  - {name: champion, model: a}\n"
        "  - {name: challenger, model: b, weight: 1.5}\n"
    )
    done = cli("serve", str(pair[0]), "--experiment-config", str(config))
    assert done.code == 1
    assert "variants.1.weight" in done.err and "less than or equal to 1" in done.err
