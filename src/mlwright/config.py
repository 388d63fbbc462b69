"""Typed, frozen settings with their defaults in one place.

Unknown keys fail; every settings object can be dumped to JSON and saved with a run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mlwright.errors import ConfigError

S = TypeVar("S", bound="Settings")


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (``taskset``, a cgroup's cpuset), and
    no more than a cgroup v2 CPU quota allows (``docker --cpus``, a Kubernetes CPU limit), not
    the machine's count, so a run confined to two cores of a large server does not start a
    thread per core of the server."""
    try:
        cores = len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform (macOS, Windows)
        cores = os.cpu_count() or 1
    quota = _cpu_quota(Path("/sys/fs/cgroup/cpu.max"))
    return cores if quota is None else max(1, min(cores, quota))


def _cpu_quota(path: Path) -> int | None:
    """Cores a cgroup v2 ``cpu.max`` file ("QUOTA PERIOD", or "max PERIOD") allows, rounded up;
    None without a limit or the file."""
    try:
        fields = path.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        return -(-int(fields[0]) // int(fields[1]))
    except (ValueError, ZeroDivisionError):
        return None


class Settings(BaseModel):
    """Base for all settings: frozen, strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def from_mapping(cls: type[S], values: dict[str, Any], *, source: str = "settings") -> S:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(
                f"invalid {source}: {problems}",
                fix=f"check the field names and values against {cls.__name__}'s documentation",
            ) from None

    @classmethod
    def from_yaml(cls: type[S], path: str | Path) -> S:
        return cls.from_mapping(cls.yaml_mapping(path), source=f"config file {str(path)!r}")

    @staticmethod
    def yaml_mapping(path: str | Path) -> dict[str, Any]:
        """The mapping in a YAML file, or a ConfigError saying what is wrong with the file."""
        import yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist", fix="check the path")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"config file {str(p)!r} is not valid YAML: {exc}",
                fix="fix the syntax (indentation, colons, quotes)",
            ) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"config file {str(p)!r} must hold a mapping of keys to values, "
                f"got {type(loaded).__name__}",
                fix="write one 'key: value' per line",
            )
        return loaded


class ProfileSettings(Settings):
    """Thresholds used by ``mlwright profile``; every warning's trigger lives here."""

    seed: int = Field(0, description="seed for every sample the profile draws")
    leakage_sample_rows: int = Field(
        50_000, ge=100, description="rows sampled for the single-feature leakage check"
    )
    leakage_folds: int = Field(3, ge=2, le=10, description="folds for out-of-fold leakage scores")
    leakage_score: float = Field(
        0.98,
        gt=0,
        le=1,
        description="out-of-fold accuracy (classification) or R² (regression) of one feature "
        "alone at or above which it is reported as a likely leak",
    )
    leakage_lift: float = Field(
        0.9,
        gt=0,
        le=1,
        description="share of the gap between the majority-class baseline and a perfect score "
        "that one feature must close to be reported (classification)",
    )
    id_unique_ratio: float = Field(
        0.95, gt=0, le=1, description="share of distinct values above which a string is ID-like"
    )
    near_constant_share: float = Field(
        0.99,
        gt=0.5,
        le=1,
        description="share of the most common value that makes a column near-constant",
    )
    high_cardinality: int = Field(
        50, ge=2, description="distinct values above which a categorical is high-cardinality"
    )
    heavy_missing: float = Field(
        0.5, gt=0, le=1, description="missing share at or above which a column is flagged"
    )
    tiny_class_rows: int = Field(10, ge=1, description="a class with fewer rows is tiny")
    imbalance_ratio: float = Field(
        0.1,
        gt=0,
        le=1,
        description="minority/majority row ratio below which classes are imbalanced",
    )
    min_rows: int = Field(100, ge=1, description="fewer usable rows than this is too few")
    max_integer_classes: int = Field(
        10, ge=2, description="an integer target with at most this many values is classification"
    )
    text_min_tokens: float = Field(
        3.0, gt=1, description="mean words per value at or above which strings are free text"
    )
    category_limit: int = Field(
        1000, ge=10, description="most frequent categories stored per column in the schema"
    )
    infer_sample_rows: int = Field(
        2000, ge=50, description="values sampled to recognise dates and free text"
    )


class FeatureSettings(Settings):
    """How columns become model inputs; saved with every model."""

    max_levels: int = Field(
        250,
        ge=2,
        le=254,
        description="categories kept per column (by frequency); the rest are "
        "'other'. At most 254 so that histogram models can treat them natively",
    )
    one_hot_max: int = Field(
        20,
        ge=1,
        description="levels one-hot encoded for linear models and the MLP's dense "
        "part; above this a column also gets a frequency encoding",
    )
    text_max_terms: int = Field(200, ge=1, description="TF-IDF vocabulary size per text column")
    text_min_df: int = Field(2, ge=1, description="documents a term must appear in to be kept")


class TrainOptions(Settings):
    """Everything `mlwright train` accepts; the resolved options are saved in the recipe."""

    target: str
    time_budget: float | None = Field(None, gt=0, description="seconds for the whole run")
    max_trials: int | None = Field(None, ge=1, description="stop after this many trials")
    seed: int = Field(0, description="the one seed every random source derives from")
    metric: str | None = None
    task: str | None = None
    name: str | None = None
    out: str | None = None
    latency_budget_ms: float | None = Field(None, gt=0)
    max_model_mb: float | None = Field(None, gt=0)
    group_col: str | None = None
    time_col: str | None = None
    keep_cols: tuple[str, ...] = ()
    drop_cols: tuple[str, ...] = ()
    test_size: float = Field(0.2, ge=0.0, lt=0.9)
    interval: float | None = Field(None, gt=0.0, lt=1.0)
    families: tuple[str, ...] | None = Field(
        None, description="restrict the model families tried (default: the plan decides)"
    )
    n_folds: int = Field(5, ge=2, le=20)
    threads: int | None = Field(
        None,
        ge=1,
        description="threads per model (default: the cores this process may use, less those "
        "other programs keep busy when a time budget is set; on Ray, 1 per trial in the search)",
    )
    backend: Literal["local", "ray"] = Field(
        "local", description="where the search's trials run: this process, or a Ray cluster"
    )
    ray_address: str | None = Field(
        None, description="the Ray cluster to join (default: start a local Ray runtime)"
    )
    workers: int | None = Field(
        None, ge=1, description="trials at once on Ray (default: the cluster's CPUs / threads)"
    )
    refit_on_test: bool = Field(True, description="refit the final model on train + test rows")
    sample_rows: int | None = Field(
        None,
        ge=100,
        description="a file set's seeded sample that profiling, the plan and the search use "
        "(default 200,000 rows)",
    )
    train_workers: int | None = Field(
        None,
        ge=1,
        description="workers of a file set's data-parallel fit (default: on Ray, the cluster's "
        "CPUs / threads, at most one per row group; here, 1)",
    )
    experiment: str | None = Field(None, description="MLflow experiment (default: the model name)")
    tracker: tuple[Literal["mlflow", "wandb", "none"], ...] = Field(
        ("mlflow",),
        description="mlflow always tracks and registers; wandb logs the run too; "
        "none turns tracking off",
    )
    features: FeatureSettings = FeatureSettings()
    profile: ProfileSettings = ProfileSettings()

    @model_validator(mode="after")
    def _ray_options_need_ray(self) -> TrainOptions:
        if self.backend != "ray":
            given = [
                k
                for k in ("ray_address", "workers", "train_workers")
                if getattr(self, k) is not None
            ]
            if given:
                raise ValueError(
                    f"{' and '.join(given)} apply to the Ray backend only: "
                    "pass backend ray (--backend ray) as well"
                )
        return self

    @field_validator("keep_cols", "drop_cols", "families", "tracker", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """A single name is a list of one (``keep_cols="id"`` in Python, one YAML scalar)."""
        return (value,) if isinstance(value, str) else value


class ServeSettings(Settings):
    """What one server process needs besides its model: limits, the gate, the store,
    monitoring, alias following and the admin token (each worker builds its app from these)."""

    max_rows: int = Field(10_000, ge=1, description="most records in one request")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1, description="largest request body")
    gate: bool = Field(True, description="run the deployment gate before taking traffic")
    store: str | None = Field(
        None, description="serving store (SQLite, WAL); None keeps no record of predictions"
    )
    poll_seconds: float | None = Field(
        None, gt=0, description="re-resolve the registry alias the server follows this often"
    )
    admin_token: str | None = Field(None, description="enables /v1/admin/* (bearer token)")
    threads: int = Field(1, ge=1, description="threads per predict call in each worker")
    freeze_gc: bool = Field(False, description="a server process of its own sets it")
    monitor: bool = Field(True, description="count served values against the reference")
    monitor_minutes: float = Field(60.0, gt=0, description="window of the drift gauges")
    monitor_cache_seconds: float = Field(
        15.0, ge=0, description="the gauges are recomputed at most this often"
    )

    @field_validator("store", mode="before")
    @classmethod
    def _path_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value


SERVE_BACKENDS = ("uvicorn", "ray-serve")


class ServeOptions(ServeSettings):
    """Everything `mlwright serve` accepts: the model, where and how to run it, an experiment,
    and the settings of each server process. Options that do not go together are refused
    here, naming them, before anything loads."""

    model: str = Field(description="package folder, NAME@ALIAS or NAME/VERSION")
    host: str = Field("127.0.0.1", description="address to bind (loopback unless you say so)")
    port: int = Field(8000, ge=0, le=65_535)
    workers: int = Field(1, ge=1, description="uvicorn worker processes")
    backend: str = Field("uvicorn", description="uvicorn, or ray-serve (replicas on Ray)")
    replicas: int | None = Field(None, ge=1, description="ray-serve replicas (default 1)")
    replica_cpus: float | None = Field(
        None, ge=0.01, description="CPUs each ray-serve replica asks (default 0.5)"
    )
    ray_address: str | None = Field(None, description="the Ray cluster (default: a local one)")
    challenger: str | None = Field(None, description="A/B test: a second model")
    split: float = Field(0.1, ge=0.0, le=1.0, description="the challenger's share of traffic")
    shadow: str | None = Field(None, description="a model that scores a copy of the traffic")
    experiment_config: Path | None = Field(None, description="experiment file (YAML)")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in SERVE_BACKENDS:
            raise ConfigError(f"unknown --backend {value!r}", fix="use uvicorn or ray-serve")
        return value

    @model_validator(mode="after")
    def _options_go_together(self) -> ServeOptions:
        on_ray = self.backend == "ray-serve"
        ray_only = ("replicas", "replica_cpus", "ray_address")
        misplaced = [_flag(k) for k in ray_only if getattr(self, k) is not None and not on_ray]
        if on_ray and self.workers > 1:
            misplaced.append("--workers")
        if misplaced:
            raise ConfigError(
                f"{', '.join(misplaced)} {'does' if len(misplaced) == 1 else 'do'} not apply "
                f"to --backend {self.backend}",
                fix="use --workers with uvicorn, --replicas/--replica-cpus/--ray-address with "
                "--backend ray-serve",
            )
        experiments = [self.challenger, self.shadow, self.experiment_config]
        if sum(x is not None for x in experiments) > 1:
            raise ConfigError(
                "give one of --challenger, --shadow or --experiment-config",
                fix="put several challengers in an experiment file",
            )
        return self

    @property
    def settings(self) -> ServeSettings:
        """The part each server process builds its app from."""
        return ServeSettings(**{k: getattr(self, k) for k in ServeSettings.model_fields})

    @property
    def tabular_only(self) -> list[str]:
        """The options given that only a tabular model's server takes (experiments, alias
        following), as flags."""
        keys = ("challenger", "shadow", "experiment_config", "poll_seconds")
        return [_flag(k) for k in keys if getattr(self, k) is not None]


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")
