"""Model-based proposals after the portfolio: Optuna's TPE, seeded, one study per family.

Every finished trial of a family is told to that family's study: the default and portfolio
trials too, when their values lie inside the search space, so the first proposals already build
on them. TPE then proposes the next configuration. While a proposed trial runs, it reports its
running out-of-fold score after each fold, and the median pruner stops it when that score is
below the median of the family's earlier trials at the same fold (once a few trials are
complete): the budget goes to promising configurations. Scores are oriented so that greater is
better. With the same seed and the same scores, the same configurations are proposed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright.evaluate.metrics import signed
from mlwright.train.models.base import Param, SearchSpace

if TYPE_CHECKING:
    from mlwright.train.search import Trial

PRUNE_AFTER_TRIALS = 4  # complete trials of a family before its proposals may be pruned
STARTUP_TRIALS = 5  # TPE's random start, counting the default and portfolio trials told to it


class FamilyTuner:
    """One family's study: ``ask`` a configuration, ``stop`` it early, ``tell`` its result."""

    def __init__(self, space: SearchSpace, seed: int, index: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = space
        self._optuna = optuna
        self._distributions = {p.name: _distribution(optuna, p) for p in space.params}
        seed_state = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
        self.study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed_state, n_startup_trials=STARTUP_TRIALS),
            pruner=optuna.pruners.NopPruner(),  # the search decides, with median_stop
        )

    def ask(self) -> tuple[Any, dict[str, Any]]:
        """An Optuna trial handle and the configuration it proposes."""
        handle = self.study.ask(self._distributions)
        params = {p.name: _decode(p, handle.params[p.name]) for p in self.space.params}
        return handle, {**self.space.defaults, **params}

    def stopper(self, handle: Any, metric: str, frozen: bool) -> Callable[[int, float], bool]:
        """``stop(fold, running mean)`` for the search: reports the running score after each
        fold and says whether the proposed trial should stop there. ``frozen``: judge it
        against the trials complete now, when it is asked (what a repeatable run needs when
        several trials run at once), not against those complete when each fold ends."""
        snapshot = self._complete() if frozen else None
        reported: list[float] = []

        def stop(fold: int, running: float) -> bool:
            value = signed(metric, running)
            handle.report(value, fold)
            reported.append(value)
            return median_stop(self._complete() if snapshot is None else snapshot, fold, reported)

        return stop

    def _complete(self) -> list[dict[int, float]]:
        """The running scores per fold of the study's complete trials."""
        states = (self._optuna.trial.TrialState.COMPLETE,)
        return [dict(t.intermediate_values) for t in self.study.get_trials(False, states=states)]

    def tell(self, handle: Any, trial: Trial, metric: str) -> None:
        states = self._optuna.trial.TrialState
        if trial.status == "ok" and trial.mean is not None:
            self.study.tell(handle, signed(metric, trial.mean))
        elif trial.status in ("pruned", "cut"):
            self.study.tell(handle, state=states.PRUNED)
        else:
            self.study.tell(handle, state=states.FAIL)

    def observe(self, trial: Trial, metric: str) -> None:
        """Tell the study about a trial it did not propose (a default or portfolio entry)."""
        if trial.status != "ok" or trial.mean is None:
            return
        values = {}
        for p in self.space.params:
            encoded = _encode(p, trial.params.get(p.name))
            if encoded is None:
                return  # outside the search space: nothing TPE could learn from
            values[p.name] = encoded
        running = np.cumsum(trial.fold_scores) / np.arange(1, len(trial.fold_scores) + 1)
        self.study.add_trial(
            self._optuna.trial.create_trial(
                params=values,
                distributions=self._distributions,
                value=signed(metric, trial.mean),
                intermediate_values={
                    k: signed(metric, float(v)) for k, v in enumerate(running.tolist())
                },
            )
        )


def median_stop(complete: list[dict[int, float]], fold: int, reported: list[float]) -> bool:
    """Optuna's median rule: once ``PRUNE_AFTER_TRIALS`` trials are complete, stop a trial whose
    best running score so far is below the median of theirs at the same fold."""
    if len(complete) < PRUNE_AFTER_TRIALS:
        return False
    finite = [v for v in reported if not np.isnan(v)]
    if not finite:
        return True
    values = [c[fold] for c in complete if fold in c and not np.isnan(c[fold])]
    return bool(values) and max(finite) < float(np.percentile(values, 50))


def _distribution(optuna: Any, p: Param) -> Any:
    d = optuna.distributions
    if p.type == "categorical":  # choices may be lists (layer sizes): the study sees indices
        return d.CategoricalDistribution(list(range(len(p.choices))))
    assert p.low is not None and p.high is not None
    if p.type == "int":
        return d.IntDistribution(int(p.low), int(p.high), log=p.log)
    return d.FloatDistribution(float(p.low), float(p.high), log=p.log)


def _decode(p: Param, value: Any) -> Any:
    if p.type == "categorical":
        return p.choices[int(value)]
    if p.type == "int":
        return int(value)
    return round(float(value), 6)


def _encode(p: Param, value: Any) -> Any:
    """The study's value for a configuration's ``value``, or None when it is outside the space."""
    if value is None:
        return None
    if p.type == "categorical":
        matches = [i for i, c in enumerate(p.choices) if c == value]
        return matches[0] if matches else None
    assert p.low is not None and p.high is not None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not p.low <= value <= p.high:
        return None
    return int(value) if p.type == "int" else float(value)


__all__ = ["FamilyTuner"]
