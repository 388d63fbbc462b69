"""Retraining a registered model on new data (``mlwright retrain``): what the new version keeps of
its parent.

The new version must take the same requests as the version it may replace, so that a server can
swap it in or A/B-test it: the same feature columns, in the same order, of the same kinds, and
the same task and classes. A **refit** also keeps the parent's configurations: the trials behind
its final model (one, or an ensemble's members) are cross-validated again on the new rows, with
no search, so the post-processing (threshold, calibration, intervals) and the ensemble's weights
are learned again out of fold and the new version has an honest score on the data it is fitted
to. A refit needs no time budget and gives the same model for the same rows, seed and library
versions. A **search** runs a budgeted search on the new rows under the parent's options.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from mlwright.config import TrainOptions
from mlwright.data.profile import ProblemDefinition
from mlwright.data.schema import ColumnSchema, TableSchema
from mlwright.errors import ColumnError, DataError
from mlwright.package.model import Model
from mlwright.package.recipe import LineageRecord, Recipe
from mlwright.train.search import StaticPlan

_NUMBERS = frozenset({"numeric", "integer"})
# the option fields a retraining never takes from its parent: where it is written and tracked
_OWN = ("out", "name", "tracker", "experiment", "time_budget", "max_trials", "families")


@dataclass(frozen=True)
class Refit:
    """What a retraining keeps of its parent version, and its lineage."""

    features: tuple[ColumnSchema, ...]  # the parent's feature columns, in order
    classes: tuple[Any, ...] | None
    static: StaticPlan | None  # the configurations to refit; None: a search
    lineage: LineageRecord

    @classmethod
    def of(cls, parent: Model, lineage: LineageRecord) -> Refit:
        recipe = _recipe_of(parent)
        static = parent_configurations(recipe) if lineage.mode == "refit" else None
        return cls(tuple(parent.schema.features), parent.classes, static, lineage)

    def columns(self, options: TrainOptions) -> list[str]:
        """The columns a retraining reads: the features, the target, the group and time
        columns."""
        extra = [c for c in (options.group_col, options.time_col) if c]
        names = [c.name for c in self.features]
        return [*names, options.target, *[c for c in extra if c not in names]]


def parent_configurations(recipe: Recipe) -> StaticPlan:
    """The configurations behind the parent's final model: its trial, or its ensemble's
    members, as the static plan of a search without proposals."""
    chosen = recipe.chosen
    by_number = {t.number: t for t in recipe.trials}
    numbers = chosen.members if chosen.kind != "single" and chosen.members else [chosen.trial]
    plan: StaticPlan = []
    for number in numbers:
        trial = by_number.get(number) if number is not None else None
        if trial is None or not trial.family:
            if chosen.kind == "single" and chosen.params is not None and chosen.family:
                plan.append((chosen.family, dict(chosen.params), "parent"))
                continue
            raise DataError(
                f"the parent's recipe does not record the configuration of trial {number}",
                fix="retrain with --search (a budgeted search) instead of a refit",
            )
        plan.append((trial.family, dict(trial.params), "parent"))
    return plan


def retrain_options(parent: Model, overrides: dict[str, Any], refit: Refit) -> TrainOptions:
    """The parent's resolved options, with the task and metric it chose pinned, its columns
    kept, and ``overrides`` (name, out, tracker, the search's budget) applied."""
    recipe = _recipe_of(parent)
    base = {k: v for k, v in recipe.options.items() if k not in _OWN}
    base.update(
        task=parent.task,
        metric=recipe.plan.get("metric") or base.get("metric"),
        keep_cols=tuple(c.name for c in refit.features),
        drop_cols=(),
        name=parent.name,
    )
    if refit.static is not None:  # a refit: exactly the parent's configurations, no clock
        families = tuple(dict.fromkeys(family for family, _, _ in refit.static))
        base.update(time_budget=None, max_trials=len(refit.static), families=families)
    base.update({k: v for k, v in overrides.items() if v is not None})
    return TrainOptions.model_validate(base)


def select_columns(frame: pd.DataFrame, refit: Refit, options: TrainOptions) -> pd.DataFrame:
    """The new rows with the parent's columns, in its order; a missing column, or classes
    other than the parent's, are refused by name."""
    wanted = refit.columns(options)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ColumnError(
            f"the new data lacks column(s) {missing} that the parent version takes",
            fix="retrain on data with every feature column of the served model and its target",
        )
    if refit.classes is not None:
        labels = frame[options.target].dropna()
        new, old = set(map(str, labels.unique())), set(map(str, refit.classes))
        if new != old:
            raise DataError(
                f"the new data's classes {sorted(new)} differ from the parent's {sorted(old)} "
                f"(missing: {sorted(old - new)}, new: {sorted(new - old)})",
                fix="retrain on rows of every class the served model predicts; a model with "
                "other classes needs `mlwright train` and a new server",
            )
    return frame.loc[:, wanted]


def align_problem(problem: ProblemDefinition, refit: Refit) -> ProblemDefinition:
    """The new data's problem with the parent's feature columns as features, of the parent's
    kinds (whole numbers in a window of a numeric column stay numeric); a column whose kind
    changed otherwise is refused by name."""
    schema = problem.schema
    columns = []
    for col in schema.columns:
        parent = next((f for f in refit.features if f.name == col.name), None)
        if parent is None:
            columns.append(col)
            continue
        if col.kind != parent.kind and not {col.kind, parent.kind} <= _NUMBERS:
            raise DataError(
                f"column {col.name!r} is {col.kind} in the new data but {parent.kind} in the "
                "parent version",
                fix=f"send {col.name!r} as the served model takes it ({parent.kind})",
            )
        columns.append(
            replace(col, kind=parent.kind, role="feature", role_reason="a feature of the parent")
        )
    aligned = replace(schema, columns=tuple(columns))
    return replace(problem, schema=aligned)


def check_features(schema: TableSchema, refit: Refit) -> None:
    """The final schema's features are the parent's, in order and kind."""
    have = [(c.name, c.kind) for c in schema.features]
    want = [(c.name, c.kind) for c in refit.features]
    if have != want:
        raise DataError(
            f"the retrained features {have} differ from the parent's {want}",
            fix="retrain on data with the served model's columns",
        )


def _recipe_of(parent: Model) -> Recipe:
    recipe = parent.recipe
    if not isinstance(recipe, Recipe) or not recipe.plan:
        raise DataError(
            f"{parent.name!r} has no tabular recipe to retrain from",
            fix="retrain a model trained by `mlwright train`",
        )
    return recipe
