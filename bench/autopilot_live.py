"""The continuous-training loop on real data, against a real server: does it promote a retrained
model only when it is better on the new traffic, and how long does each phase take?

Data: `401ksubs` of the judging half of the benchmark catalogue (``bench/catalogue.py``: no
rule, portfolio or threshold was learned on it): 9,275 households, target `e401k`, whether they
are eligible for a 401(k) plan. The champion is trained on the households whose head is at most
the median age (population A). Three streams follow:

- **moved**: the traffic comes from the older households (population B). Labels come back for
  every prediction; the loop (a `schedule` trigger, so a rollout starts at once) refits the
  champion on its training rows plus the labelled traffic, shadows it, A/B-tests it at 50%, and
  promotes or rejects it.
- **rule**: the traffic comes from population A's held-out rows, but the rules changed: married
  households are no longer eligible (`e401k` is `0`). The retrained model can learn it, and
  should be promoted.
- **same**: the traffic comes from population A's held-out rows: the retrained model has nothing
  new to learn, so it should not be promoted.

Traffic is drawn with replacement from each stream's rows in batches of 400 labelled requests,
with one step of the loop after each batch (up to 80 batches). Half the rows of each stream are
never sent, and judge the decision afterwards: both models scored on them. Of the rows sent, the
first two batches (the labels the retraining learns from) come from 40% of them and every later
batch from the other 60%, so the A/B never judges the challenger on rows it was trained on.

    python bench/autopilot_live.py            # writes bench/results/autopilot_live.md
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # the benchmark catalogue
RESULTS = ROOT / "bench" / "results" / "autopilot_live.md"
TOKEN = "bench-token"
DATASET, SPLIT, MODEL = "401ksubs", "age", "live"  # a judging-half table, split by age
PER_HOUR = 400


def call(url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(store: Path, env: dict[str, str], log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    command = [str(Path(sys.executable).parent / "mlwright"), "serve", f"{MODEL}@champion"]
    command += ["--port", str(port), "--store", str(store)]
    proc = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if call(f"{base}/ready")[0] == 200:
                return base, proc
        except OSError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the server did not start; see {log}")


def send(base: str, rows: pd.DataFrame, target: str, rng: np.random.Generator) -> list[int]:
    """One hour of traffic: PER_HOUR single-row requests drawn from ``rows``, each labelled."""
    picked = rows.iloc[rng.integers(0, len(rows), PER_HOUR)]
    statuses, items = [], []
    for record in picked.to_dict("records"):
        label = record.pop(target)
        status, body = call(f"{base}/v1/predict", {"records": [record]})
        statuses.append(status)
        if status == 200:
            items.append({"prediction_id": body["predictions"][0]["prediction_id"], "label": label})
    assert call(f"{base}/v1/feedback", {"items": items})[0] == 200
    time.sleep(0.3)  # the store's writer flushes every 100 ms
    return statuses


def scenario(
    name: str, stream: pd.DataFrame, target: str, work: Path, env: dict[str, str]
) -> dict[str, Any]:
    import mlwright as mw
    from mlwright.api import autopilot

    rng = np.random.default_rng(0)
    shuffled = stream.sample(frac=1.0, random_state=1)
    judge, live = shuffled.iloc[: len(shuffled) // 2], shuffled.iloc[len(shuffled) // 2 :]
    # the traffic the retraining learns from, and the later traffic the A/B is judged on: no
    # row of the second was trained on (traffic repeats rows, since it is drawn with replacement)
    before, after = live.iloc[: len(live) * 2 // 5], live.iloc[len(live) * 2 // 5 :]
    policy = {
        "model": MODEL,
        "window": "30d",
        "triggers": {"schedule": {"every": "1s"}},
        "retrain": {
            "mode": "refit",
            "data": [str(work / "a_train.csv")],
            "from_store": {"min_labels": 300, "window": "30d"},
        },
        "shadow": {"requests": 200, "max_disagreement": 0.5},
        "experiment": {"split": 0.5, "min_outcomes": 200, "max_duration": "3d"},
        "promote": {"when": "better"},
        "rollback": {"probation": {"min_labels": 200, "max_duration": "1d"}, "margin": 0.05},
        "cooldown": "30d",
    }
    (work / "policy.yaml").write_text(yaml.safe_dump(policy))
    store = work / f"{name}.db"
    base, proc = serve(store, env, work / f"{name}.log")
    timeline: list[dict[str, Any]] = []
    statuses: list[int] = []
    try:
        statuses += send(base, before, target, rng)  # labelled traffic before the rollout
        statuses += send(base, before, target, rng)
        time.sleep(1.0)
        hour = 0  # batches sent since the first step
        while hour < 80:
            loop = autopilot(work / "policy.yaml", server=base, store=store, token=TOKEN)
            started = time.perf_counter()
            result = loop.step()
            seconds = time.perf_counter() - started
            for d in result.decisions:
                timeline.append(
                    {"hour": hour, "action": d.action, "reason": d.reason, "step_s": seconds}
                )
            if any(d.action in ("reject", "keep", "rollback", "error") for d in result.decisions):
                break
            if not result.decisions and hour == 79:
                timeline.append(
                    {
                        "hour": hour,
                        "action": "(undecided)",
                        "reason": result.status,
                        "step_s": seconds,
                    }
                )
            statuses += send(base, after, target, rng)
            hour += 1
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    champion, challenger = mw.load(f"{MODEL}/1"), None
    versions = [d for d in timeline if d["action"] == "retrain"]
    scores = {"champion": champion.evaluate(judge)}
    if versions:
        challenger = mw.load(f"{MODEL}/2")
        scores["challenger"] = challenger.evaluate(judge)
    return {
        "name": name,
        "timeline": timeline,
        "failed_requests": sum(s != 200 for s in statuses),
        "requests": len(statuses),
        "scores": scores,
        "judge_rows": len(judge),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    import catalogue
    import mlwright as mw

    (entry,) = [e for e in catalogue.select("judging") if e.name == DATASET]
    target = entry.target
    frame = catalogue.load(entry)
    frame[target] = frame[target].astype(int)  # 0/1, as the model reads its CSV back
    median = frame[SPLIT].median()
    a, b = frame[frame[SPLIT] <= median], frame[frame[SPLIT] > median]
    a_train = a.sample(frac=0.6, random_state=0)
    a_rest = a.drop(a_train.index)
    results = []
    # the rules change: married households are no longer eligible
    rule = a_rest.assign(**{target: a_rest[target].where(a_rest["marr"] != 1, 0)})
    for name, stream in (("moved", b), ("rule", rule), ("same", a_rest)):
        with tempfile.TemporaryDirectory(prefix="mlwright-autopilot-live-") as tmp:
            work = Path(tmp)
            env = dict(os.environ)
            env.update(
                MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
                MLWRIGHT_CACHE_DIR=str(work / "cache"),
                MLWRIGHT_ADMIN_TOKEN=TOKEN,
            )
            os.environ.update({k: env[k] for k in ("MLFLOW_TRACKING_URI", "MLWRIGHT_CACHE_DIR")})
            a_train.to_csv(work / "a_train.csv", index=False)
            started = time.perf_counter()
            csv = str(work / "a_train.csv")
            mw.train(csv, target=target, name=MODEL, max_trials=12, progress=False)
            trained = time.perf_counter() - started
            result = scenario(name, stream, target, work, env)
            result["champion_train_s"] = trained
            results.append(result)
    write(results, len(a_train), len(a_rest), len(b))


def write(results: list[dict[str, Any]], n_train: int, n_rest: int, n_b: int) -> None:
    lines = [
        "# Autopilot on real data, against a real server",
        "",
        "Command: `python bench/autopilot_live.py` "
        f"({time.strftime('%Y-%m-%d', time.gmtime())}, 2-core machine, seeds 0/1).",
        "",
        f"`{DATASET}`, of the judging half (target `e401k`): the champion is trained on "
        f"{n_train:,} rows of the households whose head is at most the median age (A), 12 "
        f"trials. **moved**: traffic from the older households (B, {n_b:,} rows); **rule**: "
        f"traffic from A's {n_rest:,} held-out rows where married households are no longer "
        "eligible (`e401k` = `0`); **same**: traffic from A's held-out rows as they are. "
        f"Each stream's rows are split in half: one half is sent (batches of {PER_HOUR} labelled "
        "requests drawn with replacement, a loop step after each, up to 80), the other judges "
        "the decision afterwards. Policy: a "
        "rollout at once (schedule), refit on A's training rows plus the labelled traffic, a "
        "200-request shadow, an A/B at 50% until 200 outcomes per arm at least, `when: better`, "
        "the policy's default guardrails. The first two batches (before the rollout) are drawn "
        "from 40% of the rows sent, the later ones from the other 60%.",
        "",
    ]
    for r in results:
        lines += [f"## {r['name']}", "", "| batch | decision | why | step (s) |"]
        lines += ["|---|---|---|---:|"]
        for d in r["timeline"]:
            why = d["reason"].replace("|", "/")
            lines.append(f"| {d['hour']} | {d['action']} | {why} | {d['step_s']:.1f} |")
        lines += [""]
        judged = r["scores"]
        for who, s in judged.items():
            lines.append(
                f"- {who} on the {r['judge_rows']:,} judging rows (never sent): accuracy "
                f"{s['accuracy']:.4f}, ROC AUC {s.get('roc_auc', float('nan')):.4f}"
            )
        lines.append(
            f"- requests: {r['requests']:,}, failed: {r['failed_requests']}; champion trained "
            f"in {r['champion_train_s']:.1f} s"
        )
        lines.append("")
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
