"""The policy a person writes for the continuous-training loop: what starts a rollout, how the
challenger is trained, how it must prove itself, and when a promotion is undone.

    model: churn
    window: 1d
    triggers:
      metric_drop: {metric: accuracy, margin: 0.05, min_labels: 200}
      schedule: {every: 7d}
    retrain: {mode: refit, from_store: {min_labels: 500, window: 30d}}
    shadow: {requests: 500, max_disagreement: 0.5}
    experiment: {split: 0.2, min_outcomes: 200, max_duration: 3d}
    promote: {when: better}
    rollback: {probation: {min_labels: 200, max_duration: 1d}, margin: 0.02}
    cooldown: 1d

Every part is checked here, once, so the loop never meets a policy it cannot follow: a mistake
is refused with its field path and what to write instead. Durations are ``30s``, ``30m``,
``6h``, ``2d``, ``1w`` or a number of seconds, and are held as float seconds.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from mlwright.errors import ConfigError
from mlwright.experiment.config import ExperimentConfig, Guardrails

FIX = "see the policy's fields in docs/autopilot.md"
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)$")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

# Live metrics are what monitoring reads from predictions joined to feedback; experiment metrics
# are the per-outcome metrics an A/B compares (squared_error's mean is the MSE).
LiveMetric = Literal["accuracy", "log_loss", "rmse", "mae", "reward"]
ExperimentMetric = Literal["accuracy", "log_loss", "squared_error", "reward"]
GREATER_IS_BETTER = {
    "accuracy": True,
    "reward": True,
    "log_loss": False,
    "squared_error": False,
    "rmse": False,
    "mae": False,
}


def seconds(value: Any) -> float:
    """A duration as float seconds: ``30s``, ``30m``, ``6h``, ``2d``, ``1w`` or a number."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; give e.g. 30m, 6h, 2d, 1w or seconds")
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value.strip().lower())):
        out = float(match[1]) * _UNITS[match[2] or "s"]
    else:
        raise ValueError(f"{value!r} is not a duration; give e.g. 30m, 6h, 2d, 1w or seconds")
    if not (math.isfinite(out) and out > 0):
        raise ValueError(f"a duration must be positive, got {value!r}")
    return out


Duration = Annotated[float, BeforeValidator(seconds)]


def _bad(field: str, message: str) -> PydanticCustomError:
    """An error on one field of a model, found by a check across fields: ``parse`` appends the
    field to the model's path so the message names ``promote.margin``, not ``promote``."""
    return PydanticCustomError("policy", "{message}", {"field": field, "message": message})


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DriftTrigger(_Part):
    share: float = Field(gt=0.0, le=1.0, description="share of features drifted")


class FeatureDriftTrigger(_Part):
    feature: str = Field(min_length=1)
    psi: float = Field(gt=0.0, description="the feature's PSI at or above which it fires")


class MetricFloorTrigger(_Part):
    metric: LiveMetric
    below: float | None = None  # for accuracy and reward
    above: float | None = None  # for losses (log_loss, rmse, mae)
    min_labels: int = Field(200, ge=1)

    @model_validator(mode="after")
    def _side(self) -> MetricFloorTrigger:
        higher = GREATER_IS_BETTER[self.metric]
        wanted, other = ("below", "above") if higher else ("above", "below")
        if getattr(self, other) is not None:
            kind = "a score (greater is better)" if higher else "a loss (lower is better)"
            raise _bad(other, f"{self.metric} is {kind}: give `{wanted}:` instead of `{other}:`")
        if getattr(self, wanted) is None:
            raise _bad(wanted, f"give the {self.metric} the live metric must not fall {wanted}")
        return self


class MetricDropTrigger(_Part):
    metric: LiveMetric
    margin: float = Field(ge=0.0, description="worse than the training score by more than this")
    min_labels: int = Field(200, ge=1)


class ScheduleTrigger(_Part):
    every: Duration


class Triggers(_Part):
    drift: DriftTrigger | None = None
    feature_drift: list[FeatureDriftTrigger] = []
    metric_floor: MetricFloorTrigger | None = None
    metric_drop: MetricDropTrigger | None = None
    schedule: ScheduleTrigger | None = None

    @model_validator(mode="after")
    def _any(self) -> Triggers:
        if not (
            self.drift
            or self.feature_drift
            or self.metric_floor
            or self.metric_drop
            or self.schedule
        ):
            raise ValueError(
                "give at least one trigger: drift, feature_drift, metric_floor, metric_drop "
                "or schedule"
            )
        return self


class SqlSource(_Part):
    url: str = Field(min_length=1)
    query: str = Field(min_length=1)


class StoreSource(_Part):
    min_labels: int = Field(500, ge=1, description="labelled predictions needed to retrain")
    window: Duration = 30 * 86400.0


class Retrain(_Part):
    mode: Literal["refit", "search"] = "refit"
    time_budget: float | None = Field(None, gt=0.0, description="seconds, search only")
    data: list[Annotated[str, Field(min_length=1)]] = []
    sql: SqlSource | None = None
    from_store: StoreSource | None = None

    @model_validator(mode="after")
    def _check(self) -> Retrain:
        if self.time_budget is not None and self.mode != "search":
            raise _bad(
                "time_budget",
                "a time budget applies to `mode: search` only (refit does not search)",
            )
        if self.mode == "search" and self.time_budget is None:
            raise _bad("time_budget", "a search needs a time budget in seconds, e.g. 300")
        if not (self.data or self.sql or self.from_store):
            raise ValueError("give at least one source of training data: data, sql or from_store")
        return self


class Shadow(_Part):
    requests: int = Field(500, ge=1, description="requests both models answer before judging")
    max_disagreement: float = Field(
        0.5, ge=0.0, le=1.0, description="labels: the largest share of requests answered apart"
    )
    max_abs_difference: float | None = Field(
        None,
        gt=0.0,
        description="values: the largest mean |challenger − champion|, in target units",
    )


class Experiment(_Part):
    split: float = Field(0.2, gt=0.0, lt=1.0, description="the challenger's share of traffic")
    min_outcomes: int = Field(200, ge=1, description="labelled outcomes per arm before deciding")
    max_duration: Duration = 3 * 86400.0
    # a retrained challenger is meant to answer differently once the data moved (the shadow's
    # disagreement limit judges by how much): the shift of its predictions from the champion's
    # trips only when it is gross (PSI 2, as a model answering alike for everyone shows, where a
    # server's own experiments stop at 0.25); errors and latency are guarded as in any experiment
    guardrails: Guardrails = Guardrails(max_prediction_psi=2.0)


class Promote(_Part):
    when: Literal["better", "not_worse"] = "better"
    metric: ExperimentMetric | None = None  # default: the feedback's primary metric
    margin: float = Field(0.01, ge=0.0, description="not_worse only")
    approval: bool = False

    @model_validator(mode="after")
    def _margin(self) -> Promote:
        if self.when == "not_worse" and self.margin == 0:
            raise _bad("margin", "a margin of 0 asks for `when: better`; give a positive margin")
        if self.metric == "accuracy" and self.margin >= 1:
            raise _bad(
                "margin", f"accuracy moves in [0, 1]: a margin of {self.margin:g} allows all"
            )
        return self


class Probation(_Part):
    min_labels: int = Field(200, ge=1)
    max_duration: Duration = 86400.0


class Rollback(_Part):
    probation: Probation = Probation()
    margin: float = Field(0.02, ge=0.0, description="worse than in the A/B by more than this")


class Policy(_Part):
    model: str = Field(description="the registered model; the server serves MODEL@champion")
    window: Duration = 86400.0
    triggers: Triggers
    retrain: Retrain
    shadow: Shadow | None = Shadow()
    experiment: Experiment = Experiment()
    promote: Promote = Promote()
    rollback: Rollback = Rollback()
    cooldown: Duration = 86400.0

    @model_validator(mode="after")
    def _name(self) -> Policy:
        if not _NAME.match(self.model):
            raise _bad(
                "model", f"{self.model!r} is not a registered model name (letters, digits, _ . -)"
            )
        return self

    @classmethod
    def load(cls, path: Path) -> Policy:
        import yaml

        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}", fix="pass a policy YAML file") from None
        return cls.parse(raw, source=str(path))

    @classmethod
    def parse(cls, raw: Any, *, source: str = "policy") -> Policy:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            path = list(first["loc"])
            ctx = first.get("ctx") or {}
            if first["type"] == "policy":
                path.append(ctx["field"])
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ConfigError(
                f"{source}: {where[1:] or '(top level)'}: {message}", fix=FIX
            ) from None

    def challenger_ref(self, challenger: str) -> str:
        """``NAME/VERSION`` for a challenger given as its version (``4``) or its reference."""
        ref = challenger if "/" in challenger else f"{self.model}/{challenger}"
        name, _, version = ref.partition("/")
        if name != self.model or not version or not _NAME.match(version):
            raise ConfigError(
                f"challenger {challenger!r} is not a version of {self.model!r}",
                fix=f"give a version of the policy's model, e.g. {self.model}/4",
            )
        return ref

    def experiment_config(self, experiment_id: str, challenger: str) -> ExperimentConfig:
        """The A/B the loop starts: the champion keeps ``1 − split`` of traffic."""
        return self._config(experiment_id, challenger, shadow=False)

    def shadow_config(self, experiment_id: str, challenger: str) -> ExperimentConfig:
        """The shadow the loop starts: the challenger answers a copy of every request, unseen."""
        return self._config(experiment_id, challenger, shadow=True)

    def _config(self, experiment_id: str, challenger: str, *, shadow: bool) -> ExperimentConfig:
        return ExperimentConfig.parse(
            {
                "id": experiment_id,
                "mode": "shadow" if shadow else "split",
                "variants": [
                    {"name": "champion", "model": f"{self.model}@champion"},
                    {
                        "name": "challenger",
                        "model": self.challenger_ref(challenger),
                        "weight": 0.0 if shadow else self.experiment.split,
                    },
                ],
                "guardrails": self.experiment.guardrails.model_dump(),
            },
            source=f"the policy's {'shadow' if shadow else 'experiment'} {experiment_id!r}",
        )
