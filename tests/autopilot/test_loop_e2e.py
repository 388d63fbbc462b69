"""The continuous-training loop end to end, against a real `mlwright serve` process: a stream
whose relationship between features and target changes, with labels fed back, is retrained,
shadowed, A/B-tested and promoted; a worse retrained model is not promoted and the champion
keeps serving; a loop started again mid-rollout goes on where it was; an invalid policy is
refused before anything runs."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import mlwright as mw
from mlwright.api import autopilot
from mlwright.autopilot.loop import ROLLOUT_TAG, Autopilot
from mlwright.store.autopilot import decisions, open_rollout, save_rollout
from mlwright.track.mlflow import alias_version, versions_tagged
from tests.serve.support import serving
from tests.track.test_servers import env_with

TOKEN = "autopilot-token"
pytestmark = pytest.mark.timeout(300)


def rows(n: int, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    return pd.DataFrame({"x1": r.normal(size=n), "x2": r.normal(size=n)})


def label(frame: pd.DataFrame, relation: str) -> list[str]:
    """Before the change the target is the sign of x1 + x2; after it, of x1 − x2 (neither
    column alone gives it away, which the profile would flag as a leak)."""
    sign = 1.0 if relation == "before" else -1.0
    return ["yes" if v > 0 else "no" for v in frame["x1"] + sign * frame["x2"]]


def call(url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Traffic:
    """Requests of one row each, with their true labels fed back; every status is kept."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.statuses: list[int] = []
        self.seed = 100

    def send(self, n: int, relation: str, *, feedback: bool = True) -> list[dict[str, Any]]:
        self.seed += 1
        frame = rows(n, self.seed)
        truth = label(frame, relation)
        answers, items = [], []
        for record, y in zip(frame.to_dict("records"), truth, strict=True):
            status, body = call(f"{self.base}/v1/predict", {"records": [record]})
            self.statuses.append(status)
            answers.append(body)
            if status == 200:
                items.append({"prediction_id": body["predictions"][0]["prediction_id"], "label": y})
        if feedback:
            status, _ = call(f"{self.base}/v1/feedback", {"items": items})
            assert status == 200
        time.sleep(0.4)  # the store's writer flushes every 100 ms
        return answers


def policy(tmp_path: Path, **changes: Any) -> Path:
    spec: dict[str, Any] = {
        "model": "flip",
        "window": "1h",
        "triggers": {"metric_floor": {"metric": "accuracy", "below": 0.8, "min_labels": 100}},
        "retrain": {"mode": "refit", "from_store": {"min_labels": 150, "window": "1h"}},
        "shadow": {"requests": 40, "max_disagreement": 0.9},
        "experiment": {
            "split": 0.5,
            "min_outcomes": 60,
            "max_duration": "1h",
            "guardrails": {"min_requests": 20, "max_prediction_psi": 50},
        },
        "promote": {"when": "better"},
        "rollback": {"probation": {"min_labels": 40, "max_duration": "1h"}, "margin": 0.15},
        "cooldown": "1h",
    }
    spec.update(changes)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def scheduled(tmp_path: Path, **changes: Any) -> Path:
    """A policy whose rollout starts at once (a schedule of every second), retraining on a file
    of the relationship after the change."""
    frame = rows(300, 3)
    frame["y"] = label(frame, "after")
    frame.to_csv(tmp_path / "new.csv", index=False)
    spec = policy(
        tmp_path,
        triggers={"schedule": {"every": "1s"}},
        retrain={"mode": "refit", "data": [str(tmp_path / "new.csv")]},
        **changes,
    )
    time.sleep(1.0)  # the schedule counts from the champion's registration
    return spec


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLWRIGHT_CACHE_DIR", str(tmp_path / "cache"))
    frame = rows(400, 1)
    frame["y"] = label(frame, "before")
    mw.train(frame, target="y", name="flip", max_trials=1, families="linear", progress=False)
    return env_with(
        MLFLOW_TRACKING_URI=uri,
        MLWRIGHT_ADMIN_TOKEN=TOKEN,
        MLWRIGHT_CACHE_DIR=str(tmp_path / "cache"),
    )


@contextmanager
def server(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    store = tmp_path / "serve.db"
    with serving("flip@champion", tmp_path, env=env, store=store) as (base, _):
        yield base, store


def loop(policy_file: Path, base: str, store: Path) -> Autopilot:
    """A new loop for every step: nothing is carried in memory from one step to the next."""
    return autopilot(policy_file, server=base, store=store, token=TOKEN)


def actions(store: Path) -> list[str]:
    return [d["action"] for d in decisions(store, model="flip")]


def test_drift_to_a_promoted_model(tmp_path: Path, registry: dict[str, str], cli: Any) -> None:
    spec = policy(tmp_path)
    with server(tmp_path, registry) as (base, store):
        traffic = Traffic(base)
        traffic.send(160, "before")
        assert loop(spec, base, store).step().decisions == []  # accurate: nothing fires
        traffic.send(200, "after")  # the relationship changed; labels come back
        first = loop(spec, base, store).step()
        assert [d.action for d in first.decisions] == ["trigger", "retrain"]
        assert "metric_floor: accuracy" in first.decisions[0].reason
        assert alias_version("flip", "challenger") == "2"
        lineage = mw.load("flip/2").recipe.lineage
        assert lineage is not None and lineage.rollout == first.decisions[0].rollout
        assert (lineage.rollout or "").startswith("flip-r1-")
        assert lineage.sources[0]["kind"] == "store" and lineage.sources[0]["rows"] >= 150
        # the shadow: version 2 scores a copy of each request, the champion answers
        assert loop(spec, base, store).step().decisions[0].action == "shadow"
        shadowed = traffic.send(50, "after", feedback=False)
        assert {a["model"]["version"] for a in shadowed} == {"1"}
        # a loop killed mid-rollout and started again (here: the command, once) goes on
        once = cli("autopilot", "--policy", str(spec), "--server", base, "--store", str(store),
                   "--once")  # fmt: skip
        assert once.code == 0, once.err
        assert "the shadow passed" in once.out or "go to the A/B" in once.out
        assert open_rollout(store, "flip").phase == "experiment"  # type: ignore[union-attr]
        assert loop(spec, base, store).step().decisions[0].action == "experiment"
        answered = traffic.send(300, "after")
        assert {a["model"]["version"] for a in answered} == {"1", "2"}
        promoted = loop(spec, base, store).step()
        assert [d.action for d in promoted.decisions] == ["promote"]
        assert "better; promote" in promoted.decisions[0].reason
        assert alias_version("flip", "champion") == "2"
        after = traffic.send(60, "after")
        assert {a["model"]["version"] for a in after} == {"2"}
        kept = loop(spec, base, store).step()
        assert [d.action for d in kept.decisions] == ["keep"]
        assert open_rollout(store, "flip") is None
    assert set(traffic.statuses) == {200}
    assert actions(store) == [
        "trigger", "retrain", "shadow", "shadow", "experiment", "promote", "keep",
    ]  # fmt: skip
    runs = [d["run_id"] for d in decisions(store, model="flip")]
    assert all(runs)
    import mlflow

    run = mlflow.get_run(runs[-2])
    assert run.data.tags["mlwright.autopilot.action"] == "promote"
    assert "better; promote" in run.data.tags["mlflow.note.content"]
    # the new version's report, in its training run, explains the rollout
    trained = mlflow.MlflowClient().get_model_version("flip", "2").run_id
    report = Path(mlflow.artifacts.download_artifacts(f"runs:/{trained}/report/report.html"))
    text = report.read_text()
    assert "Lineage" in text and "Rollout" in text and "better; promote" in text
    # the timeline of the monitoring page
    page = tmp_path / "monitor.html"
    shown = cli("monitor", "--store", str(store), "--html", str(page))
    assert shown.code == 0, shown.err
    assert "Decisions" in page.read_text() and "better; promote" in page.read_text()


def test_a_worse_challenger_is_not_promoted(tmp_path: Path, registry: dict[str, str]) -> None:
    noise = rows(300, 7)
    noise["y"] = np.random.default_rng(0).choice(["yes", "no"], size=300)
    noise.to_csv(tmp_path / "noise.csv", index=False)
    spec = policy(
        tmp_path,
        triggers={"schedule": {"every": "1s"}},
        retrain={"mode": "refit", "data": [str(tmp_path / "noise.csv")]},
        shadow=None,
    )
    time.sleep(1.0)
    with server(tmp_path, registry) as (base, store):
        traffic = Traffic(base)
        started = loop(spec, base, store).step()
        assert [d.action for d in started.decisions] == ["trigger", "retrain"]
        assert loop(spec, base, store).step().decisions[0].action == "experiment"
        for _ in range(6):
            traffic.send(100, "before")
            done = loop(spec, base, store).step()
            if done.decisions:
                break
        assert [d.action for d in done.decisions] == ["reject"]
        assert "worse; reject" in done.decisions[0].reason
        assert alias_version("flip", "champion") == "1"
        served = traffic.send(30, "before")
        assert {a["model"]["version"] for a in served} == {"1"}
    assert set(traffic.statuses) == {200}  # not one request failed
    assert actions(store)[-1] == "reject"


def test_approval_then_a_rollback_on_probation(
    tmp_path: Path, registry: dict[str, str], cli: Any
) -> None:
    spec = scheduled(tmp_path, shadow=None, promote={"when": "better", "approval": True})
    with server(tmp_path, registry) as (base, store):
        traffic = Traffic(base)
        loop(spec, base, store).step()  # trigger, retrain
        loop(spec, base, store).step()  # the A/B starts
        traffic.send(300, "after")
        held = loop(spec, base, store).step()
        assert [d.action for d in held.decisions] == ["approval"]
        assert "mlwright models approve flip 2" in held.decisions[0].reason
        assert loop(spec, base, store).step().decisions == []  # still waiting
        assert alias_version("flip", "champion") == "1"
        approved = cli("models", "approve", "flip", "2", "--by", "ana")
        assert approved.code == 0, approved.err
        assert re.search(r"rollout flip-r1-[0-9a-f]{6} promotes it", approved.out)
        promoted = loop(spec, base, store).step()
        assert [d.action for d in promoted.decisions] == ["promote"]
        assert "approved by ana" in promoted.decisions[0].reason
        assert alias_version("flip", "champion") == "2"
        # the relationship goes back: the new champion falls far below its A/B figure
        traffic.send(80, "before")
        rolled = loop(spec, base, store).step()
        assert [d.action for d in rolled.decisions] == ["rollback"]
        assert alias_version("flip", "champion") == "1"
        assert {a["model"]["version"] for a in traffic.send(20, "before")} == {"1"}
    assert set(traffic.statuses) == {200}


def test_a_restart_after_registering_adopts_the_version(
    tmp_path: Path, registry: dict[str, str]
) -> None:
    spec = scheduled(tmp_path)
    with server(tmp_path, registry) as (base, store):
        loop(spec, base, store).step()
        # as if the loop died after registering version 2 but before writing the next phase
        rollout = open_rollout(store, "flip")
        assert rollout is not None and rollout.phase == "shadow"
        rollout.phase = "retraining"
        del rollout.state["challenger"]
        save_rollout(store, rollout)
        again = loop(spec, base, store).step()
        assert [d.action for d in again.decisions] == ["retrain"]
        assert versions_tagged("flip", ROLLOUT_TAG, rollout.id) == ["2"]  # no second version
        assert open_rollout(store, "flip").state["challenger"] == "2"  # type: ignore[union-attr]


def test_a_champion_moved_by_hand_ends_the_rollout(
    tmp_path: Path, registry: dict[str, str]
) -> None:
    spec = scheduled(tmp_path, shadow=None)
    with server(tmp_path, registry) as (base, store):
        loop(spec, base, store).step()
        assert loop(spec, base, store).step().decisions[0].action == "experiment"
        mw.api.promote("flip", "2")  # someone promotes by hand during the A/B
        ended = loop(spec, base, store).step()
        assert [d.action for d in ended.decisions] == ["reject"]
        assert "was moved from version 1 to 2 during the rollout" in ended.decisions[0].reason
        status, body = call(f"{base}/v1/experiments")
        assert status == 200 and [e["status"] for e in body["experiments"]] == ["stopped"]


def test_two_loops_never_step_at_once(tmp_path: Path) -> None:
    from mlwright.autopilot.loop import _step_lock
    from mlwright.store.schema import connect

    store = tmp_path / "serve.db"
    connect(store).close()
    spec = policy(tmp_path)
    with _step_lock(store, "flip") as held:
        assert held
        busy = loop(spec, "http://127.0.0.1:9", store).step()
    assert busy.status == "another autopilot step of this model is running"
    with pytest.raises(mw.MlwrightError, match="no serving store"):
        loop(spec, "http://127.0.0.1:9", tmp_path / "elsewhere.db").step()


def test_an_invalid_policy_is_refused_before_anything_runs(tmp_path: Path, cli: Any) -> None:
    bad = policy(tmp_path, promote={"when": "sometimes"})
    store = tmp_path / "serve.db"
    result = cli("autopilot", "--policy", str(bad), "--server", "http://127.0.0.1:9",
                 "--store", str(store))  # fmt: skip
    assert result.code == 1
    assert "promote.when" in result.err
    assert not store.exists()
    wrong = policy(tmp_path, retrain={"mode": "refit"})
    result = cli("autopilot", "--policy", str(wrong), "--server", "http://127.0.0.1:9")
    assert result.code == 1 and "retrain" in result.err and "source" in result.err
    with pytest.raises(sqlite3.Error):
        sqlite3.connect(f"file:{store}?mode=ro", uri=True).execute("SELECT 1")
