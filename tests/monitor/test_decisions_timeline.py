"""The continuous-training loop's decisions in `mlwright monitor`: a timeline and a table in the
HTML report (every value escaped), the list in ``--json``, the latest ten in the printed output;
a store written before the loop existed still reads, with no such section."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlwright.data.schema import infer_schema
from mlwright.monitor.overview import overview
from mlwright.monitor.page import monitoring_report
from mlwright.package.reference import build_reference
from mlwright.report.document import to_html, to_markdown
from mlwright.serve.feedback import FeedbackItem
from mlwright.serve.feedback import record as record_feedback
from mlwright.store.autopilot import Decision, record_decision
from tests.monitor.test_drift import training
from tests.monitor.traffic import Traffic

HOUR = 3600.0
START = 1_700_002_800.0  # a whole hour (2023-11-14 23:00 UTC)
HOSTILE = '<script>alert("x")</script> **bold** `tick` | pipe'
ACTIONS = ("trigger", "retrain", "shadow", "experiment", "promote", "keep")


def _served_store(path: Path) -> Path:
    """Three hours of a regression model's traffic (version 1, the champion) with feedback for
    every prediction: a live RMSE per step."""
    rng = np.random.default_rng(3)
    frame = training(2_000, rng)
    reference = build_reference(
        frame, infer_schema(frame, target="y"), "regression", rng.normal(size=2_000), None
    )
    traffic = Traffic(path, model="churn")
    traffic.watch("champion", "1", reference, path.parent / "v1.json")
    feedback = []
    for step in range(6):
        rows = training(40, rng).drop(columns="y")
        answers = [{"prediction": float(v)} for v in rng.normal(size=40)]
        ids = traffic.send(rows, answers, ts=START + step * HOUR / 2, version="1")
        feedback += [FeedbackItem(prediction_id=i, value=float(rng.normal())) for i in ids]
    traffic.close()
    record_feedback(path, feedback)
    return path


def _decide(store: Path, count: int) -> list[Decision]:
    """``count`` decisions of the loop for `churn`, one every ten minutes, the third with a
    reason that tries to be markup."""
    made = []
    for k in range(count):
        action = ACTIONS[k % len(ACTIONS)]
        decision = Decision(
            model="churn",
            action=action,
            reason=HOSTILE if k == 2 else f"step {k}: {action}",
            evidence={"k": k, "note": HOSTILE},
            rollout="churn-r1",
            version="2" if k else None,
            run_id=f"run{k:03d}",
            ts=START + 600 * (k + 1),
        )
        record_decision(store, decision)
        made.append(decision)
    return made


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = _served_store(tmp_path_factory.mktemp("decided") / "serve.db")
    _decide(store, 12)
    return store


def test_the_overview_holds_the_decisions(decided: Path) -> None:
    result = overview(decided, model="churn")
    assert [d["run_id"] for d in result.decisions] == [f"run{k:03d}" for k in range(12)]
    assert result.decisions[2]["reason"] == HOSTILE
    assert result.decisions[2]["evidence"] == {"k": 2, "note": HOSTILE}
    assert result.to_dict()["decisions"] == result.decisions
    later = overview(decided, since=START + 600 * 10)
    assert [d["run_id"] for d in later.decisions] == ["run009", "run010", "run011"]


def test_the_page_shows_a_timeline_and_an_escaped_table(decided: Path) -> None:
    doc = monitoring_report(overview(decided))
    titles = [title for _, title in doc.headings()]
    assert titles[-1] == "5. Decisions"
    page = to_html(doc)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; **bold** `tick` | pipe" in page
    section = page[page.index('id="decisions"') :]
    assert 'data-name="decisions_churn.png"' in section
    assert "the champion&#x27;s live rmse" in section  # the live metric behind the markers
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td>", section)
    assert len(rows) == 12
    assert rows[0] == ("2023-11-15 01:00 UTC", "keep")  # latest first
    assert rows[1] == ("2023-11-15 00:50 UTC", "<strong>promote</strong>")  # outcomes stand out
    assert rows[-1] == ("2023-11-14 23:10 UTC", "trigger")
    for k in range(12):
        assert f"<code>run{k:03d}</code>" in section
    markdown = to_markdown(doc)
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown


def test_monitor_json_html_and_text_show_the_decisions(
    decided: Path, cli: Any, tmp_path: Path
) -> None:
    as_json = cli("monitor", "--store", str(decided), "--json")
    assert as_json.code == 0, as_json.out + as_json.err
    body = json.loads(as_json.out)
    assert len(body["decisions"]) == 12
    assert body["decisions"][2]["reason"] == HOSTILE
    assert body["decisions"][4] | {"evidence": None} == {
        "ts": START + 3000,
        "model": "churn",
        "rollout": "churn-r1",
        "action": "promote",
        "reason": "step 4: promote",
        "evidence": None,
        "version": "2",
        "run_id": "run004",
    }
    shown = cli("monitor", "--store", str(decided))
    assert shown.code == 0, shown.out + shown.err
    text = shown.out
    assert "decisions of the continuous-training loop (the latest 10 of 12)" in text
    assert "step 11: keep" in text and "step 3: experiment" in text
    assert "step 0: trigger" not in text and "step 1: retrain" not in text
    assert "<script>alert" in text  # printed as it is, not as markup
    page = tmp_path / "monitor.html"
    written = cli("monitor", "--store", str(decided), "--model", "churn", "--html", str(page))
    assert written.code == 0, written.out + written.err
    html = page.read_text(encoding="utf-8")
    assert ". Decisions</h2>" in html and "<script>" not in html


def test_decisions_without_traffic_are_still_shown(tmp_path: Path, cli: Any) -> None:
    store = tmp_path / "serve.db"
    _decide(store, 3)
    shown = cli("monitor", "--store", str(store))
    assert shown.code == 0, shown.out + shown.err
    assert "no monitored traffic" in shown.out
    assert "decisions of the continuous-training loop" in shown.out
    assert "step 1: retrain" in shown.out
    page = to_html(monitoring_report(overview(store)))
    assert "Monitoring report: churn" in page and ". Decisions</h2>" in page
    assert "the champion&#x27;s live" not in page  # no feedback: markers alone


def test_a_store_from_before_the_loop_reads_without_the_section(tmp_path: Path, cli: Any) -> None:
    store = _served_store(tmp_path / "old.db")
    with sqlite3.connect(store) as conn:
        conn.execute("DROP TABLE autopilot_decisions")
        conn.execute("DROP TABLE autopilot_rollouts")
    result = overview(store)
    assert result.decisions == [] and len(result.monitored) == 1
    page = to_html(monitoring_report(result))
    assert "Decisions" not in page and ". Live performance</h2>" in page
    as_json = cli("monitor", "--store", str(store), "--json")
    assert as_json.code == 0, as_json.out + as_json.err
    assert json.loads(as_json.out)["decisions"] == []
    shown = cli("monitor", "--store", str(store))
    assert shown.code == 0 and "continuous-training" not in shown.out
    with sqlite3.connect(store) as conn:  # reading it created nothing
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "autopilot_decisions" not in tables
