"""The configuration of an experiment between model variants.

An experiment names its variants (the first is the champion) with traffic weights, how requests
are keyed (:mod:`~mlwright.experiment.assignment`), and whether the challenger serves traffic
(``split``) or only scores a copy of it (``shadow``); its guardrails, and optionally a canary
ramp of the challenger's share.

    id: churn-v3
    variants:
      - {name: champion, model: churn@champion}
      - {name: challenger, model: churn/3, weight: 0.1}
    entity_key: {header: x-user-id}
    canary: {steps: [0.01, 0.05, 0.25, 0.5], min_requests: 500}
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlwright.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    model: str = Field(description="package folder, NAME@ALIAS or NAME/VERSION")
    weight: float | None = Field(
        default=None, ge=0.0, le=1.0, description="share of traffic; the champion takes the rest"
    )


class EntityKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = "entity_key"  # a top-level field of the predict request
    header: str | None = None  # or a request header (checked first)


class Guardrails(BaseModel):
    # finite numbers only: the record is stored as JSON, which has no infinity
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_error_rate: float = Field(0.01, ge=0.0, le=1.0)
    max_p99_ms: float | None = Field(None, gt=0.0)
    max_prediction_psi: float = Field(0.25, gt=0.0)
    min_requests: int = Field(200, ge=1, description="challenger requests before judging")


class Canary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[float] = Field(min_length=1)
    min_requests: int = Field(500, ge=1, description="challenger requests per step")

    @model_validator(mode="after")
    def _increasing(self) -> Canary:
        if any(not 0 < s <= 1 for s in self.steps) or self.steps != sorted(set(self.steps)):
            raise ValueError("canary steps must be increasing shares in (0, 1], e.g. [0.01, 0.05]")
        return self


class ExperimentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    variants: list[Variant] = Field(min_length=2)
    mode: Literal["split", "shadow"] = "split"
    salt: str | None = None  # default: the id
    entity_key: EntityKey = EntityKey()
    guardrails: Guardrails = Guardrails()
    canary: Canary | None = None

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        names = [v.name for v in self.variants]
        for name in [self.id, *names]:
            if not _NAME.match(name):
                raise ValueError(f"{name!r} is not a valid name (letters, digits, _ . -)")
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        if self.variants[0].weight is not None:
            raise ValueError("the first variant is the champion: it takes the traffic left over")
        shares = [v.weight for v in self.variants[1:]]
        if any(w is None for w in shares):
            raise ValueError("give every challenger a weight (a share of traffic in [0, 1])")
        if sum(w or 0.0 for w in shares) > 1.0 + 1e-9:
            raise ValueError(f"challenger weights add up to {sum(w or 0 for w in shares):g} > 1")
        if self.mode == "shadow" and len(self.variants) != 2:
            raise ValueError("shadow mode takes one champion and one challenger")
        if self.canary is not None and len(self.variants) != 2:
            raise ValueError("a canary ramps one challenger")
        return self

    @property
    def champion(self) -> Variant:
        return self.variants[0]

    def weights(self, step: int | None = None) -> dict[str, float]:
        """Each variant's share of traffic (at canary ``step`` when there is a canary)."""
        if self.mode == "shadow":
            return {self.champion.name: 1.0}
        shares = {v.name: float(v.weight or 0.0) for v in self.variants[1:]}
        if self.canary is not None and step is not None:
            (name,) = shares
            shares[name] = self.canary.steps[min(step, len(self.canary.steps) - 1)]
        return {self.champion.name: 1.0 - sum(shares.values()), **shares}

    @classmethod
    def load(cls, path: Path) -> ExperimentConfig:
        import yaml

        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}", fix="pass a YAML file") from None
        return cls.parse(raw, source=str(path))

    @classmethod
    def parse(cls, raw: Any, *, source: str = "experiment") -> ExperimentConfig:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise ConfigError(
                f"{source}: {where}: {first['msg']}",
                fix="see the experiment file's fields in docs/experiment.md",
            ) from None

    @classmethod
    def for_challenger(
        cls, champion: str, challenger: str, *, split: float | None, shadow: bool
    ) -> ExperimentConfig:
        """The experiment ``mlwright serve CHAMPION --challenger X --split F`` (or
        ``--shadow X``) runs."""
        digest = hashlib.sha256(f"{champion}|{challenger}".encode()).hexdigest()[:8]
        return cls.parse(
            {
                "id": f"exp-{digest}",
                "mode": "shadow" if shadow else "split",
                "variants": [
                    {"name": "champion", "model": champion},
                    {"name": "challenger", "model": challenger, "weight": 0.0 if shadow else split},
                ],
            },
            source="--challenger",
        )
