"""The autopilot's policy: what parses, what is refused (with the field named), durations, and
the experiments a policy starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlwright.autopilot.policy import Policy, seconds
from mlwright.errors import ConfigError

FULL = """\
model: churn
window: 1d
triggers:
  drift: {share: 0.3}
  feature_drift: [{feature: tenure, psi: 0.25}]
  metric_floor: {metric: accuracy, below: 0.80, min_labels: 200}
  metric_drop: {metric: accuracy, margin: 0.05, min_labels: 200}
  schedule: {every: 7d}
retrain:
  mode: refit
  data: [new.csv]
  sql: null
  from_store: {min_labels: 500, window: 30d}
shadow: {requests: 500, max_disagreement: 0.5}
experiment:
  split: 0.2
  min_outcomes: 200
  max_duration: 3d
  guardrails: {max_error_rate: 0.01, max_p99_ms: null, max_prediction_psi: 0.25, min_requests: 200}
promote:
  when: better
  metric: null
  margin: 0.01
  approval: false
rollback:
  probation: {min_labels: 200, max_duration: 1d}
  margin: 0.02
cooldown: 1d
"""

SMALL: dict[str, Any] = {
    "model": "churn",
    "triggers": {"drift": {"share": 0.3}},
    "retrain": {"data": ["new.csv"]},
}


def with_(**parts: Any) -> dict[str, Any]:
    return {**SMALL, **parts}


def test_the_documented_policy_loads_with_durations_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(FULL)
    policy = Policy.load(path)
    assert policy.window == 86400.0
    assert policy.cooldown == 86400.0
    assert policy.triggers.schedule is not None and policy.triggers.schedule.every == 7 * 86400.0
    assert policy.triggers.feature_drift[0].feature == "tenure"
    assert policy.retrain.from_store is not None and policy.retrain.from_store.window == 30 * 86400
    assert policy.experiment.max_duration == 3 * 86400.0
    assert policy.experiment.guardrails.max_prediction_psi == 0.25
    assert policy.rollback.probation.max_duration == 86400.0
    assert policy.shadow is not None and policy.shadow.requests == 500


def test_a_small_policy_takes_the_defaults_and_shadow_null_skips_the_shadow() -> None:
    policy = Policy.parse(SMALL)
    assert policy.shadow is not None  # a shadow by default
    assert policy.experiment.split == 0.2 and policy.promote.when == "better"
    assert Policy.parse(with_(shadow=None)).shadow is None
    search = Policy.parse(
        with_(
            retrain={
                "mode": "search",
                "time_budget": 120,
                "sql": {"url": "sqlite:///x.db", "query": "select * from t"},
            }
        )
    )
    assert search.retrain.time_budget == 120.0
    loss = Policy.parse(with_(triggers={"metric_floor": {"metric": "rmse", "above": 3.5}}))
    assert loss.triggers.metric_floor is not None and loss.triggers.metric_floor.above == 3.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", 30.0),
        ("30m", 1800.0),
        ("6h", 21600.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("1.5h", 5400.0),
        (90, 90.0),
        (2.5, 2.5),
        ("45", 45.0),
        (" 2D ", 172800.0),
    ],
)
def test_durations(text: Any, expected: float) -> None:
    assert seconds(text) == expected
    assert Policy.parse(with_(cooldown=text)).cooldown == expected


@pytest.mark.parametrize("bad", ["3x", "h", "-5m", 0, -1, "0s", True, [1], "1 day"])
def test_bad_durations_are_refused_with_the_field(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"policy: window: .*(not a duration|positive)"):
        Policy.parse(with_(window=bad))


BAD = [
    (with_(colour="red"), r"colour: Extra inputs are not permitted"),
    ({"model": "churn", "retrain": {"data": ["a.csv"]}}, r"triggers: Field required"),
    (with_(triggers={}), r"triggers: give at least one trigger"),
    (with_(triggers={"feature_drift": []}), r"triggers: give at least one trigger"),
    (with_(retrain={"mode": "refit"}), r"retrain: give at least one source of training data"),
    (
        with_(retrain={"data": ["a.csv"], "time_budget": 60}),
        r"retrain\.time_budget: a time budget applies to `mode: search` only",
    ),
    (
        with_(retrain={"data": ["a.csv"], "mode": "search"}),
        r"retrain\.time_budget: a search needs a time budget",
    ),
    (with_(retrain={"data": ["a.csv"], "mode": "grid"}), r"retrain\.mode: Input should be"),
    (
        with_(triggers={"metric_drop": {"metric": "f1", "margin": 0.05}}),
        r"triggers\.metric_drop\.metric: Input should be 'accuracy', 'log_loss', 'rmse'",
    ),
    (with_(promote={"metric": "rmse"}), r"promote\.metric: Input should be 'accuracy'"),
    (
        with_(triggers={"metric_floor": {"metric": "log_loss", "below": 0.3}}),
        r"triggers\.metric_floor\.below: log_loss is a loss .*give `above:`",
    ),
    (
        with_(triggers={"metric_floor": {"metric": "accuracy"}}),
        r"triggers\.metric_floor\.below: give the accuracy",
    ),
    (
        with_(promote={"when": "not_worse", "margin": 0}),
        r"promote\.margin: a margin of 0 asks for `when: better`",
    ),
    (with_(promote={"margin": -0.1}), r"promote\.margin: Input should be greater than or equal"),
    (
        with_(promote={"metric": "accuracy", "margin": 1.5, "when": "not_worse"}),
        r"promote\.margin: accuracy moves in \[0, 1\]",
    ),
    (with_(experiment={"split": 1.0}), r"experiment\.split: Input should be less than 1"),
    (with_(experiment={"split": 0}), r"experiment\.split: Input should be greater than 0"),
    (
        with_(experiment={"guardrails": {"max_error_rate": 2}}),
        r"experiment\.guardrails\.max_error_rate: Input should be less than or equal to 1",
    ),
    (with_(experiment={"guardrails": {"latency": 5}}), r"experiment\.guardrails\.latency: Extra"),
    (with_(triggers={"drift": {"share": 1.5}}), r"triggers\.drift\.share: Input should be less"),
    (
        with_(triggers={"feature_drift": [{"feature": "tenure", "psi": 0}]}),
        r"triggers\.feature_drift\[0\]\.psi: Input should be greater than 0",
    ),
    (with_(shadow={"max_disagreement": 1.2}), r"shadow\.max_disagreement: Input should be less"),
    (with_(model="churn model"), r"model: 'churn model' is not a registered model name"),
    (with_(rollback={"probation": {"max_duration": "soon"}}), r"rollback\.probation\.max_duration"),
    ([1, 2], r"\(top level\): Input should be a valid dictionary"),
]


@pytest.mark.parametrize(("raw", "message"), BAD)
def test_invalid_policies_are_refused_with_the_field_named(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Policy.parse(raw, source="policy.yaml")
    assert str(caught.value).startswith("policy.yaml: ")
    assert caught.value.fix is not None and "docs/autopilot.md" in caught.value.fix


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Policy.load(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read"):
        Policy.load(broken)


def test_policies_are_frozen() -> None:
    policy = Policy.parse(SMALL)
    with pytest.raises(ValueError, match="frozen"):
        policy.model = "other"  # type: ignore[misc]


def test_the_experiments_the_loop_starts() -> None:
    policy = Policy.parse(with_(experiment={"split": 0.25, "guardrails": {"max_error_rate": 0.02}}))
    ab = policy.experiment_config("churn-r2-ab", "4")
    assert ab.id == "churn-r2-ab" and ab.mode == "split"
    assert [(v.name, v.model) for v in ab.variants] == [
        ("champion", "churn@champion"),
        ("challenger", "churn/4"),
    ]
    assert ab.weights() == {"champion": 0.75, "challenger": 0.25}
    assert ab.guardrails.max_error_rate == 0.02
    shadow = policy.shadow_config("churn-r2-shadow", "churn/4")
    assert shadow.mode == "shadow" and shadow.variants[1].model == "churn/4"
    assert shadow.weights() == {"champion": 1.0}
    with pytest.raises(ConfigError, match="'other/4' is not a version of 'churn'"):
        policy.experiment_config("x", "other/4")
    with pytest.raises(ConfigError, match="not a valid name"):
        policy.experiment_config("has space", "4")
