"""Experiment configuration, sticky assignment and the analysis read from the serving store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlwright.errors import ConfigError
from mlwright.experiment.analysis import analyze
from mlwright.experiment.assignment import Router
from mlwright.experiment.config import ExperimentConfig
from mlwright.store import connect

TWO = {
    "id": "churn-v3",
    "variants": [
        {"name": "champion", "model": "churn@champion"},
        {"name": "challenger", "model": "churn/3", "weight": 0.1},
    ],
}


def test_configs_are_checked_with_the_field_named(tmp_path: Path) -> None:
    bad = [
        ({**TWO, "colour": "red"}, "colour: Extra inputs"),
        ({**TWO, "variants": [TWO["variants"][0]]}, "variants: List should have at least 2"),
        (
            {**TWO, "variants": [{**TWO["variants"][0], "weight": 0.5}, TWO["variants"][1]]},
            "the first variant is the champion",
        ),
        (
            {**TWO, "variants": [*TWO["variants"], {"name": "c2", "model": "m", "weight": 0.95}]},
            "add up to 1.05",
        ),
        ({**TWO, "canary": {"steps": [0.5, 0.1]}}, "canary steps must be increasing"),
        ({**TWO, "id": "has space"}, "not a valid name"),
    ]
    for raw, message in bad:
        with pytest.raises(ConfigError, match=message):
            ExperimentConfig.parse(raw)
    path = tmp_path / "exp.yaml"
    path.write_text("id: x\nvariants: [{name: a, model: m}, {name: b, model: n, weight: 0.2}]\n")
    assert ExperimentConfig.load(path).weights() == {"a": pytest.approx(0.8), "b": 0.2}


def test_assignment_is_balanced_and_sticky_across_restarts() -> None:
    config = ExperimentConfig.parse(TWO)
    weights = config.weights()
    keys = [f"user-{i}" for i in range(20_000)]
    first = [Router(config).assign(k, weights) for k in keys]
    again = [Router(config).assign(k, weights) for k in keys]  # a new process: same answers
    assert first == again
    share = np.mean([v == "challenger" for v in first])
    assert abs(share - 0.1) < 3 * np.sqrt(0.1 * 0.9 / len(keys))
    other = ExperimentConfig.parse({**TWO, "salt": "another"})
    moved = np.mean(
        [Router(other).assign(k, weights) != v for k, v in zip(keys, first, strict=True)]
    )
    assert 0.1 < moved < 0.3  # a new salt reshuffles who is in which variant
    router = Router(config, seed=1)
    random_share = np.mean([router.assign(None, weights) == "challenger" for _ in range(20_000)])
    assert abs(random_share - 0.1) < 3 * np.sqrt(0.1 * 0.9 / 20_000)


def test_a_canary_ramp_only_moves_keys_to_the_challenger() -> None:
    config = ExperimentConfig.parse({**TWO, "canary": {"steps": [0.01, 0.05, 0.25, 0.5]}})
    router = Router(config)
    keys = [f"k{i}" for i in range(5000)]
    previous: set[str] = set()
    for step in range(4):
        weights = config.weights(step)
        assert weights["challenger"] == config.canary.steps[step]  # type: ignore[union-attr]
        now = {k for k in keys if router.assign(k, weights) == "challenger"}
        assert previous <= now
        previous = now
    assert abs(len(previous) / len(keys) - 0.5) < 0.03


def _write(store: Path, variant: str, outcomes: list[bool], start: int) -> None:
    """One request per prediction, and label feedback saying whether it was right."""
    conn = connect(store)
    with conn:
        for i, right in enumerate(outcomes):
            rid = f"{variant}{start + i}"
            output = {
                "prediction_id": f"{rid}:0",
                "prediction": "yes",
                "proba_yes": 0.7,
                "proba_no": 0.3,
            }
            conn.execute(
                "INSERT INTO requests VALUES (?, ?, 'churn', '1', ?, NULL, 1, '[]', '[]', ?)",
                (rid, float(start + i), variant, json.dumps([output])),
            )
            conn.execute(
                "INSERT INTO feedback (prediction_id, ts, kind, value) VALUES (?, ?, 'label', ?)",
                (f"{rid}:0", float(start + i), json.dumps("yes" if right else "no")),
            )
    conn.close()


def test_the_analysis_finds_a_better_challenger_and_a_skewed_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    config = ExperimentConfig.parse(
        {**TWO, "variants": [TWO["variants"][0], {**TWO["variants"][1], "weight": 0.5}]}
    )
    store = tmp_path / "serve.db"
    _write(store, "champion", list(rng.random(3000) < 0.70), 0)
    _write(store, "challenger", list(rng.random(3000) < 0.76), 10_000)
    result = analyze(store, config, config.weights())
    assert result["requests"] == {"champion": 3000, "challenger": 3000}
    assert not result["sample_ratio"]["mismatch"]
    accuracy = next(c for c in result["comparisons"] if c["metric"] == "accuracy")
    assert accuracy["difference"] == pytest.approx(0.06, abs=0.03)
    assert accuracy["sequential_p"] < 0.05
    assert accuracy["verdict"].startswith("the challenger is better on accuracy")
    log_loss = next(c for c in result["comparisons"] if c["metric"] == "log_loss")
    assert log_loss["difference"] < 0 and "better on log loss" in log_loss["verdict"]

    skewed = tmp_path / "skewed.db"
    _write(skewed, "champion", list(rng.random(3000) < 0.7), 0)
    _write(skewed, "challenger", list(rng.random(2600) < 0.7), 10_000)
    result = analyze(skewed, config, config.weights())
    assert result["sample_ratio"]["mismatch"]
    assert all(c["verdict"].startswith("sample ratio mismatch") for c in result["comparisons"])


def test_psi_reads_no_shift_as_small_and_a_real_one_as_large() -> None:
    from mlwright.experiment.guardrails import psi

    rng = np.random.default_rng(0)
    same = psi(list(rng.normal(size=2000)), list(rng.normal(size=2000)))
    moved = psi(list(rng.normal(size=2000)), list(rng.normal(1.0, 1.0, size=2000)))
    assert same is not None and same < 0.05
    assert moved is not None and moved > 0.25
    labels = psi(["a"] * 900 + ["b"] * 100, ["a"] * 100 + ["b"] * 900)
    assert labels is not None and labels > 1.0
    assert psi([], [1.0]) is None
