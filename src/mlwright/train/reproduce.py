"""Reproducing a package's final model from its recipe: the same rows, configuration and seed,
no search (``mlwright reproduce``, ``mw.reproduce`` and every package's ``report/rebuild.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlwright.config import TrainOptions, usable_cores
from mlwright.data.io import read_table
from mlwright.data.tasks import Task
from mlwright.design.plan import SolutionPlan
from mlwright.errors import ConfigError, DataError
from mlwright.package.golden import check_golden
from mlwright.package.model import Model
from mlwright.train.models import FitContext
from mlwright.train.runner import (
    class_weights,
    digest_version,
    fit_model,
    prepare_rows,
    refits_on_test,
    split_test,
)


@dataclass
class Reproduction:
    """A reproduced model and how its golden-example outputs differ from the recorded ones
    (``mismatches`` is empty when it reproduces)."""

    model: Model
    mismatches: list[str]
    digest_matches: bool


def reproduce(package: Model, data: Any = None, *, sql: str | None = None) -> Reproduction:
    """Rebuild ``package``'s final model from its recipe (no search) and compare its outputs on
    the golden examples with the recorded ones."""
    recipe = package.recipe
    options = TrainOptions.model_validate(recipe.options)
    if recipe.scale:
        source = recipe.data.source.get("location")
        raise ConfigError(
            f"{package.name} was trained on a file set ({source}): its final model learned "
            "from every row, data-parallel, and is rebuilt by training again, not from its "
            "recipe",
            fix=f"mlwright train {source} --target {options.target} --seed {recipe.seed} "
            "with the recipe's options; the recipe's scale.digest identifies the data",
        )
    if data is None:
        source = recipe.data.source
        if source["kind"] not in ("csv", "parquet"):
            raise ConfigError(
                f"the model was trained from {source['kind']} data; reproducing it needs that data",
                fix="pass --data PATH (or a URL with --sql)",
            )
        data = source["location"]
    frame, _ = read_table(data, sql=sql, decimal=package.decimal_mark)
    plan = SolutionPlan.from_dict(recipe.plan)
    task: Task = package.task
    recorded = recipe.data.digest or ""
    prep = prepare_rows(
        frame, package.schema, task, package.classes, plan, digest_version(recorded)
    )
    if prep.digest != recorded:
        raise DataError(
            "the data differs from the data the model was trained on (digest mismatch)",
            fix="pass the exact file the model was trained on",
        )
    seed, threads = recipe.seed, recipe.threads or usable_cores()
    n_classes = len(package.classes) if package.classes else 0
    ctx = FitContext(task, n_classes, seed, threads)
    n = len(prep.y)
    train_pos, test_pos = split_test(prep, plan, task, seed)
    final_pos = np.arange(n) if (refits_on_test(plan, options) or not len(test_pos)) else train_pos
    weights = class_weights(prep.y, n_classes) if plan.class_weights else None
    rebuilt = fit_model(
        prep,
        package.schema,
        recipe.chosen.family,
        recipe.chosen.refit_params,
        ctx,
        final_pos,
        weights,
        options,
    )
    rebuilt.name = package.name
    rebuilt.classes = package.classes
    rebuilt.threshold = package.threshold
    rebuilt.residual_quantiles = package.residual_quantiles
    rebuilt.n_residuals = package.n_residuals
    rebuilt.temperature = package.temperature
    rebuilt.golden = package.golden
    rebuilt.recipe = recipe
    rebuilt.reporter = package.reporter
    return Reproduction(rebuilt, check_golden(rebuilt), True)
