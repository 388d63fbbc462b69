"""What a bring-your-own-model run is made of, whatever the framework: every hyperparameter lives
here, none in code.

A run's YAML file (``mlwright train-torch``, ``train-keras`` or ``train-jax`` ``--config``):

.. code-block:: yaml

    name: digits-cnn
    model: examples.digits_cnn:make_model      # module:function, config.params → the model
    data: examples.digits_cnn:make_data        # module:function, config.data_params → the data
    loss: cross_entropy                        # or mse, l1, bce_with_logits
    metrics: [accuracy]
    params: {channels: 16, dropout: 0.1}
    train: {epochs: 10, batch_size: 64, lr: 0.002}
    output: {task: classification, classes: [zero, one, ...]}   # how outputs are served
    search: {trials: 20, ranges: {train.lr: {low: 0.0005, high: 0.01, log: true}}}

Each framework's config (:class:`~mlwright.torch.config.TorchConfig`,
:class:`~mlwright.keras.config.KerasConfig`, :class:`~mlwright.jax.config.JaxConfig`) is a
:class:`NetConfig` with its own ``train`` settings. Unknown keys fail, naming the key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mlwright.config import Settings

LOSSES = ("cross_entropy", "mse", "l1", "bce_with_logits")
METRICS = ("accuracy", "mae", "rmse")
LOWER_IS_BETTER = {"loss": True, "mae": True, "rmse": True, "accuracy": False}


def reference(value: str) -> str:
    """``value`` when it reads ``module:function``; a ValueError saying what it should be."""
    module, sep, attribute = value.partition(":")
    if not sep or not module or not attribute:
        raise ValueError(f"{value!r} is not module:function (e.g. mypackage.models:make_model)")
    return value


class CommonLoopSettings(Settings):
    """The training loop's settings every framework shares; the defaults suit small and medium
    models."""

    epochs: int = Field(10, ge=1, description="passes over the training data")
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0, description="AdamW's (peak) learning rate")
    weight_decay: float = Field(0.01, ge=0, description="AdamW's decoupled weight decay")
    schedule: Literal["onecycle", "cosine", "constant"] = Field(
        "onecycle", description="learning-rate schedule, stepped once per optimizer step"
    )
    warmup_share: float = Field(0.1, gt=0, lt=1, description="onecycle: share spent warming up")
    clip_grad_norm: float | None = Field(
        1.0,
        gt=0,
        description="clip the gradients' total norm to this; null turns clipping off "
        "(refused for recurrent and attention layers)",
    )
    accumulate: int = Field(1, ge=1, description="batches whose gradients make one step")
    patience: int | None = Field(
        5, ge=1, description="stop after this many epochs without a better validation score"
    )
    monitor: str = Field(
        "loss", description="the validation score that chooses the best epoch: loss or a metric"
    )
    seed: int = Field(0, description="seeds every random source and the data order")
    validation_share: float = Field(
        0.2, gt=0, lt=1, description="held out when the data gives no validation set"
    )
    allow_no_validation: bool = Field(
        False, description="train without any validation data (the report says so)"
    )
    log_every: int = Field(10, ge=1, description="log the training loss every N steps")


class OutputSettings(Settings):
    """How the model's output becomes the served ``prediction`` (and ``proba_<class>``)."""

    task: Literal["auto", "classification", "regression"] = Field(
        "auto",
        description="auto: classification for cross_entropy and bce_with_logits, else regression",
    )
    classes: tuple[str | int | float | bool, ...] | None = Field(
        None, description="classification: the label of each output (default 0, 1, ...)"
    )


class Range(Settings):
    """One searched value: ``low``/``high`` (``log`` scale, integer when both are integers,
    optional ``step``) or a list of ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)
    choices: tuple[Any, ...] | None = None
    integer: bool = Field(False, description="set by the config: low and high are integers")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return {"choices": tuple(value)}
        if isinstance(value, dict) and "integer" not in value:
            low, high = value.get("low"), value.get("high")
            whole = [isinstance(v, int) and not isinstance(v, bool) for v in (low, high)]
            return {**value, "integer": all(whole)}
        return value

    @model_validator(mode="after")
    def _complete(self) -> Range:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("give either a non-empty list of choices or low and high")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError("give low < high (or a list of choices)")
        elif self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        elif self.log and self.step is not None:
            raise ValueError("a range is either log or stepped, not both")
        scalar = (str, int, float, bool, type(None))
        if self.choices is not None and not all(isinstance(c, scalar) for c in self.choices):
            raise ValueError("choices must be numbers, strings, booleans or null")
        return self


class SearchSettings(Settings):
    """Optuna (TPE, seeded with ``train.seed``) over ranges of the config, pruning trials
    whose monitored score trails the median; the best configuration is then trained, tracked
    and packaged like any run."""

    trials: int = Field(ge=1, description="configurations to try")
    timeout: float | None = Field(None, gt=0, description="stop proposing after this many seconds")
    ranges: dict[str, Range] = Field(
        description="dotted config keys (params.*, data_params.*, train.*) → range or choices"
    )

    @field_validator("ranges")
    @classmethod
    def _known_keys(cls, value: dict[str, Range]) -> dict[str, Range]:
        if not value:
            raise ValueError("declare at least one range")
        for key in value:
            section, _, name = key.partition(".")
            if section not in ("params", "data_params", "train") or not name:
                raise ValueError(f"{key!r}: search keys start with params., data_params. or train.")
            if key in ("train.seed", "train.device", "train.allow_no_validation"):
                raise ValueError(f"{key!r} is not a hyperparameter to search")
        return value


class NetConfig(Settings):
    """One bring-your-own-model run; each framework's config adds its ``train`` settings."""

    name: str = Field(description="the model's name in the registry")
    model: str = Field(description="module:function that takes `params` and returns the model")
    data: str = Field(
        description="module:function that takes `data_params` and returns the data, or "
        "(train, validation) data"
    )
    loss: str = Field("cross_entropy", description=f"one of {', '.join(LOSSES)}")
    metrics: tuple[str, ...] = Field((), description=f"any of {', '.join(METRICS)}")
    params: dict[str, Any] = Field(default_factory=dict, description="given to the model factory")
    data_params: dict[str, Any] = Field(
        default_factory=dict, description="given to the data function"
    )
    train: CommonLoopSettings = CommonLoopSettings()
    tracker: tuple[Literal["mlflow", "wandb", "none"], ...] = Field(
        ("mlflow",), description="where the run is logged: mlflow, wandb as well, or none"
    )
    experiment: str | None = Field(None, description="MLflow experiment (default: the name)")
    inputs: tuple[str, ...] | None = Field(
        None,
        description="names of the model's inputs in requests (default: input, or input_0, "
        "input_1, ... for several; dict-valued inputs name themselves)",
    )
    output: OutputSettings = OutputSettings()
    search: SearchSettings | None = None

    @property
    def task(self) -> Literal["classification", "regression"]:
        if self.output.task != "auto":
            return self.output.task
        return (
            "classification" if self.loss in ("cross_entropy", "bce_with_logits") else "regression"
        )

    @field_validator("tracker", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("model", "data")
    @classmethod
    def _is_reference(cls, value: str) -> str:
        return reference(value)

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        if value not in LOSSES:
            raise ValueError(f"unknown loss {value!r}: use {', '.join(LOSSES)}")
        return value

    @field_validator("metrics", mode="before")
    @classmethod
    def _known_metrics(cls, value: Any) -> Any:
        names = (value,) if isinstance(value, str) else value
        unknown = [m for m in names or () if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}: use {', '.join(METRICS)}")
        return names

    @model_validator(mode="after")
    def _searched_settings_exist(self) -> NetConfig:
        fields = type(self.train).model_fields
        for key in () if self.search is None else self.search.ranges:
            section, _, name = key.partition(".")
            if section == "train" and name not in fields:
                raise ValueError(f"search key {key!r}: train has no setting {name!r}")
        return self


__all__ = [
    "LOSSES",
    "LOWER_IS_BETTER",
    "METRICS",
    "CommonLoopSettings",
    "NetConfig",
    "OutputSettings",
    "Range",
    "SearchSettings",
    "reference",
]
