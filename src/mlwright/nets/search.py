"""Optuna search over the ranges a run's config (:class:`~mlwright.nets.config.NetConfig`)
declares under ``search``, for any framework's trainer.

Each trial is a whole training run of the config with the trial's values filled in, untracked
and without checkpoints; TPE is seeded with ``train.seed``, and a trial whose validation score
after an epoch trails the median of earlier trials at that epoch is pruned. The result is the
resolved configuration (the best trial's values, no ``search`` section: training it again gives
the packaged model) and the record of every trial for the recipe, the tracked run and the report.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from mlwright.errors import ConfigError, MlwrightError
from mlwright.nets.config import LOWER_IS_BETTER, NetConfig, Range
from mlwright.nets.run import config_data

C = TypeVar("C", bound=NetConfig)


class EpochLike(Protocol):
    @property
    def epoch(self) -> int: ...

    @property
    def val_loss(self) -> float | None: ...

    @property
    def metrics(self) -> dict[str, float]: ...


class _Pruned(Exception):
    """Raised from the epoch hook to stop a trial the pruner gave up on."""


def resolved(config: C, values: dict[str, Any]) -> C:
    """``config`` with the dotted keys of ``values`` set and the search section dropped."""
    mapping = config.model_dump(mode="json")
    mapping.pop("search", None)
    for key, value in values.items():
        section, _, name = key.partition(".")
        mapping.setdefault(section, {})[name] = value
    return type(config).from_mapping(mapping, source="searched configuration")


def _suggest(trial: Any, key: str, space: Range) -> Any:
    if space.choices is not None:
        return trial.suggest_categorical(key, list(space.choices))
    assert space.low is not None and space.high is not None
    if space.integer:
        step = int(space.step or 1)
        return trial.suggest_int(key, int(space.low), int(space.high), step=step, log=space.log)
    return trial.suggest_float(key, space.low, space.high, step=space.step, log=space.log)


def search(
    config: C,
    *,
    fit: Callable[..., Any],
    data: Any = None,
    verbose: bool = True,
    error: type[MlwrightError] = MlwrightError,
    **objects: Any,
) -> tuple[C, dict[str, Any]]:
    """(the best configuration, the search's record). ``fit(config, data=, on_epoch=,
    verbose=, **objects)`` trains one trial and raises an :class:`MlwrightError` for a
    configuration that does not train (``error`` is what a search none of whose trials finished
    raises, and what the config's data function's failures become)."""
    import optuna
    from rich.console import Console

    settings = config.search
    assert settings is not None
    if config.train.allow_no_validation:
        raise ConfigError(
            "a search needs validation data to compare configurations",
            fix="drop train.allow_no_validation or the search section",
        )
    monitor = config.train.monitor
    lower = LOWER_IS_BETTER.get(monitor, True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize" if lower else "maximize",
        sampler=optuna.samplers.TPESampler(seed=config.train.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    if data is None and not any(k.startswith("data_params.") for k in settings.ranges):
        # one dataset for every trial (the data function is called once)
        data = config_data(config, error)
    console = Console(stderr=True)
    started = time.monotonic()
    trials: list[dict[str, Any]] = []
    for number in range(settings.trials):
        if settings.timeout is not None and time.monotonic() - started > settings.timeout:
            break
        trial = study.ask()
        values = {key: _suggest(trial, key, space) for key, space in settings.ranges.items()}
        record: dict[str, Any] = {"number": number, "values": values, "score": None}
        trial_started = time.monotonic()
        reported: list[float] = []

        def heard(epoch: EpochLike, trial: Any = trial, reported: list[float] = reported) -> None:
            score = epoch.val_loss if monitor == "loss" else epoch.metrics.get(monitor)
            if score is None or not math.isfinite(score):
                return
            reported.append(score)
            trial.report(score, epoch.epoch)
            if trial.should_prune():
                raise _Pruned

        try:
            candidate = resolved(config, values)
            candidate = candidate.model_copy(update={"tracker": ("none",)})
            result = fit(candidate, data=data, on_epoch=heard, verbose=False, **objects)
        except _Pruned:
            record.update(state="pruned", epochs=len(reported))
            record["score"] = (min if lower else max)(reported) if reported else None
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except MlwrightError as exc:
            record.update(state="failed", error=exc.message, epochs=0)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            record.update(state="complete", score=result.best_score, epochs=len(result.history))
            study.tell(trial, result.best_score)
        record["seconds"] = round(time.monotonic() - trial_started, 2)
        trials.append(record)
        if verbose:
            shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
            score = "–" if record["score"] is None else f"{record['score']:.4g}"
            console.print(
                f"search trial {number + 1}/{settings.trials}: {shown} → {monitor} {score} "
                f"({record['state']}, {record['seconds']:.1f} s)",
                highlight=False,
                soft_wrap=True,
            )
    complete = [t for t in trials if t["state"] == "complete" and t["score"] is not None]
    if not complete:
        reasons = sorted({t.get("error", t["state"]) for t in trials})
        raise error(
            f"no search trial finished ({'; '.join(reasons)[:300]})",
            fix="check the ranges: each trial must be a configuration that trains",
        )
    best = (min if lower else max)(complete, key=lambda t: t["score"])
    record = {
        "monitor": monitor,
        "direction": "minimize" if lower else "maximize",
        "seed": config.train.seed,
        "ranges": {k: v.model_dump(mode="json", exclude_none=True) for k, v in
                   settings.ranges.items()},
        "trials": trials,
        "best_trial": best["number"],
        "best_values": best["values"],
        "best_score": best["score"],
        "seconds": round(time.monotonic() - started, 2),
    }  # fmt: skip
    return resolved(config, best["values"]), record


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


__all__ = ["resolved", "search"]
