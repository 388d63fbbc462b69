"""An experiment's analysis counts the traffic of its own models only: another model served into
the same store names its variant ``champion`` too."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mlwright.experiment.analysis import analyze, served_models
from mlwright.experiment.config import ExperimentConfig
from mlwright.store.schema import connect


def served(store: Path, model: str, variant: str, n: int, right: int, ts: float) -> None:
    """``n`` one-row requests of ``model`` answered by ``variant``, the first ``right`` of them
    correctly (their feedback says "yes"; every answer is "yes" or "no")."""
    conn = connect(store)
    for i in range(n):
        rid = f"{model}-{variant}-{i}"
        answer = {"prediction_id": f"{rid}:0", "prediction": "yes" if i < right else "no"}
        conn.execute(
            "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rid, ts, model, "1", variant, None, 1, '["x"]', "[[1.0]]", json.dumps([answer])),
        )
        conn.execute(
            "INSERT INTO feedback (prediction_id, ts, kind, value) VALUES (?, ?, 'label', ?)",
            (f"{rid}:0", ts + 1, json.dumps("yes")),
        )
    conn.close()


def test_other_models_traffic_is_left_out(tmp_path: Path) -> None:
    store, now = tmp_path / "serve.db", time.time()
    config = ExperimentConfig.parse(
        {
            "id": "churn-ab",
            "variants": [
                {"name": "champion", "model": "churn@champion"},
                {"name": "challenger", "model": "churn/2", "weight": 0.5},
            ],
        }
    )
    assert served_models(config) == ["churn"]
    served(store, "churn", "champion", 100, 80, now)
    served(store, "churn", "challenger", 100, 90, now)
    served(store, "fraud", "champion", 300, 0, now)  # another model, another server
    result = analyze(store, config, config.weights(), since=now - 10)
    assert result["requests"] == {"champion": 100, "challenger": 100}
    assert not result["sample_ratio"]["mismatch"]
    accuracy = next(c for c in result["comparisons"] if c["metric"] == "accuracy")
    assert accuracy["control"]["n"] == 100 and accuracy["control"]["mean"] == 0.8
    # a package folder's served name is not known from the config: nothing is left out
    folders = ExperimentConfig.for_challenger("models/churn", "models/churn-v2", split=0.5,
                                              shadow=False)  # fmt: skip
    assert served_models(folders) is None
