"""The typed recipe: what a trained package writes, recipes of earlier releases, keys of newer
ones, and the dict-style reading older scripts do."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import mlwright as mw
from mlwright.package.recipe import (
    RECIPE_FORMAT,
    ChosenRecord,
    Recipe,
    RecipeError,
    TorchRecipe,
    TrialRecord,
    read_recipe,
)
from mlwright.report.document import Section, Table
from mlwright.report.script import rebuild_script
from mlwright.report.sections import architecture_section, pipeline_section, problem_section
from tests.conftest import make_frame

# The keys the tabular recipe has been written with, in order (recipe_format 1).
RECIPE_KEYS = [
    "recipe_format",
    "created_utc",
    "name",
    "seed",
    "threads",
    "options",
    "plan",
    "data",
    "search",
    "budget",
    "trials",
    "chosen",
    "problem",
    "cv",
    "test_rows",
    "final_rows",
    "library_versions",
    "elapsed_s",
]
CHOSEN_KEYS = [
    "trial",
    "family",
    "kind",
    "members",
    "params",
    "refit_params",
    "calibration",
    "threshold",
    "combinations",
    "tradeoff",
    "constraints_checked",
]

# A recipe as the first release wrote it: no search, budget or problem; ``chosen`` without
# kind, members, post-processing or constraints; cv without the budget's notes.
FIRST_RELEASE: dict[str, Any] = {
    "recipe_format": 1,
    "created_utc": "2026-01-05T10:00:00+00:00",
    "name": "churn",
    "seed": 7,
    "threads": 2,
    "options": {"target": "churned", "seed": 7, "max_trials": 2, "time_budget": None},
    "plan": {"metric": "roc_auc", "families": []},
    "data": {
        "source": {"kind": "csv", "location": "churn.csv"},
        "digest": "0" * 64,
        "rows": 300,
        "columns": ["age", "plan", "churned"],
        "decisions": [],
    },
    "trials": [
        {
            "number": 0,
            "family": "lightgbm",
            "source": "default",
            "status": "ok",
            "params": {"num_leaves": 31},
            "fold_scores": [0.81, 0.8],
            "mean": 0.805,
            "std": 0.005,
            "seconds": 1.25,
            "predict_ms": None,
            "error": None,
        }
    ],
    "chosen": {
        "trial": 0,
        "family": "lightgbm",
        "params": {"num_leaves": 31},
        "refit_params": {"num_leaves": 31, "rounds": 40},
    },
    "cv": {"metric": "roc_auc", "mean": 0.805, "std": 0.005, "folds": 2},
    "test_rows": 60,
    "final_rows": 300,
    "library_versions": {"python": "3.11.9", "mlwright": "0.1.0"},
    "elapsed_s": 4.5,
}


def _text(section: Section) -> str:
    """The section's paragraphs, bullets and table cells as plain text."""
    out: list[str] = []
    for block in section.blocks:
        if isinstance(block, str):
            out.append(block)
        elif isinstance(block, list):
            out += [str(item) for item in block]
        elif isinstance(block, Table):
            out += [str(block.caption), *(str(c) for row in block.rows for c in row)]
    return "\n".join(out)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[mw.Model, Path]:
    path = tmp_path_factory.mktemp("pkg") / "churn"
    model = mw.train(
        make_frame(300), target="churned", max_trials=2, families=("lightgbm",), out=str(path)
    )
    return model, path


def test_a_trained_package_writes_the_recipe_key_for_key(
    trained: tuple[mw.Model, Path],
) -> None:
    model, path = trained
    written = json.loads((path / "recipe.json").read_text(encoding="utf-8"))
    assert list(written) == RECIPE_KEYS
    assert list(written["chosen"]) == CHOSEN_KEYS
    assert isinstance(model.recipe, Recipe)
    assert model.recipe.recipe_format == RECIPE_FORMAT == written["recipe_format"]
    # what the package holds is the model's recipe, dumped as JSON
    in_memory = model.recipe.model_dump(mode="json", exclude_unset=True)
    assert {k: v for k, v in in_memory.items() if k != "elapsed_s"} == {
        k: v for k, v in written.items() if k != "elapsed_s"
    }  # elapsed_s counts the writing too, so it is set once the package is written
    loaded = mw.load(path)
    assert isinstance(loaded.recipe, Recipe)
    assert loaded.recipe.model_dump(mode="json", exclude_unset=True) == written
    assert loaded.recipe.lineage is None  # a model trained from scratch has none
    assert json.dumps(loaded.recipe.to_dict()) == json.dumps(written)  # same order too


def test_saving_a_loaded_package_again_writes_the_same_recipe(
    trained: tuple[mw.Model, Path], tmp_path: Path
) -> None:
    _, path = trained
    again = mw.load(path).save(tmp_path / "again")
    assert (again / "recipe.json").read_text(encoding="utf-8") == (path / "recipe.json").read_text(
        encoding="utf-8"
    )


def test_a_recipe_of_the_first_release_reads_with_defaults() -> None:
    recipe = Recipe.read(copy.deepcopy(FIRST_RELEASE))
    assert recipe.seed == 7 and recipe.threads == 2
    assert recipe.chosen.family == "lightgbm" and recipe.chosen.kind == "single"
    assert recipe.chosen.members == [] and recipe.chosen.constraints_checked == []
    assert recipe.search == {} and recipe.problem == {} and recipe.budget.seconds is None
    assert recipe.cv.note is None and recipe.cv.trials_cut == 0
    assert (
        recipe.trials == [TrialRecord.model_validate(FIRST_RELEASE["trials"][0])]
        and recipe.trials[0].capped_folds == 0
    )
    assert recipe.data.digest == "0" * 64 and recipe.data.source["kind"] == "csv"
    # written back, it is what was read: the defaults are not added to the file
    assert recipe.to_dict() == FIRST_RELEASE
    assert json.dumps(recipe.to_dict()) == json.dumps(FIRST_RELEASE)


def test_keys_this_version_does_not_know_are_kept() -> None:
    newer = copy.deepcopy(FIRST_RELEASE)
    newer["recipe_format"] = RECIPE_FORMAT + 1
    newer["hardware"] = {"gpus": 0}
    newer["chosen"]["why"] = "best cross-validated score"
    newer["trials"][0]["memory_mb"] = 120
    newer["cv"]["folds_skipped"] = [3]
    recipe = Recipe.read(newer)
    assert recipe.recipe_format == RECIPE_FORMAT + 1
    assert (
        recipe["hardware"] == {"gpus": 0} and recipe.chosen["why"] == "best cross-validated score"
    )
    assert recipe.to_dict() == newer
    assert Recipe.read(json.loads(json.dumps(recipe.to_dict()))).to_dict() == newer
    clashing = Recipe.read({"copy": 1, "schema": {"v": 2}})  # names of the model's own methods
    assert clashing["copy"] == 1 and clashing.get("schema") == {"v": 2}
    assert clashing.to_dict() == {"copy": 1, "schema": {"v": 2}}


def test_dict_style_reading_is_kept_for_older_scripts(trained: tuple[mw.Model, Path]) -> None:
    _, path = trained
    written = json.loads((path / "recipe.json").read_text(encoding="utf-8"))
    recipe = mw.load(path).recipe
    for key, value in written.items():
        assert recipe[key] == value, key
        assert recipe.get(key) == value, key
        assert key in recipe
    assert recipe["chosen"]["family"] == written["chosen"]["family"]
    assert isinstance(recipe["chosen"], dict) and isinstance(recipe["trials"][0], dict)
    assert recipe["data"]["source"] == written["data"]["source"]
    assert (recipe.get("options") or {}).get("latency_budget_ms") is None  # as the server reads
    assert recipe.get("not a key") is None and recipe.get("not a key", {}) == {}
    assert "not a key" not in recipe
    with pytest.raises(KeyError, match="not a key"):
        recipe["not a key"]
    assert recipe.chosen.get("family") == recipe.chosen.family
    # a first-release recipe answers the keys it lacks with their defaults
    old = Recipe.read(FIRST_RELEASE)
    assert old["search"] == {} and old["chosen"] == FIRST_RELEASE["chosen"]


def test_consumers_read_the_recipe_by_attribute(trained: tuple[mw.Model, Path]) -> None:
    _, path = trained
    loaded = mw.load(path)
    assert "lightgbm" in repr(loaded) and loaded.recipe.cv.metric in repr(loaded)
    text = _text(architecture_section(loaded)) + _text(pipeline_section(loaded, str(path)))
    assert f"trial {loaded.recipe.chosen.trial}" in text
    assert f"seed {loaded.recipe.seed}" in text
    assert f"seed: {loaded.recipe.seed}" in _text(problem_section(loaded))
    assert f"{loaded.recipe.chosen.family}" in rebuild_script(loaded)


def test_a_first_release_recipe_renders_its_report(trained: tuple[mw.Model, Path]) -> None:
    _, path = trained
    loaded = mw.load(path)
    loaded.recipe = Recipe.read(FIRST_RELEASE)
    assert "The final model is one **lightgbm** model (trial 0)" in _text(
        architecture_section(loaded)
    )
    assert "The profile's findings were not recorded" in _text(problem_section(loaded))
    assert "trials ran one at a time" in _text(pipeline_section(loaded, str(path)))


def test_torch_recipes_are_their_own_shape() -> None:
    written = {
        "kind": "torch",
        "created_utc": "2026-02-01T09:00:00+00:00",
        "seed": 0,
        "config": {"model": "pkg.nets:make", "train": {"lr": 0.001}},
        "history": [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.4, "metrics": {}}],
        "best_epoch": 1,
        "export": {"program": {"status": "ok", "max_abs_difference": 0.0}},
        "search": None,
        "tuned": True,  # a newer writer's key
    }
    recipe = read_recipe(written)
    assert isinstance(recipe, TorchRecipe)
    assert recipe.best_epoch == 1 and recipe.monitor == "loss" and recipe.validated is True
    assert recipe["export"]["program"]["status"] == "ok" and recipe["tuned"] is True
    assert recipe.to_dict() == written
    assert TorchRecipe.read({}).to_dict() == {}  # a package without a recipe reads as before
    assert isinstance(read_recipe(FIRST_RELEASE), Recipe)


def test_a_recipe_with_wrong_values_names_them() -> None:
    with pytest.raises(RecipeError, match=r"'trials'.*valid list"):
        Recipe.read({**FIRST_RELEASE, "trials": "all of them"})
    with pytest.raises(RecipeError, match="JSON object"):
        Recipe.read([1, 2])  # type: ignore[arg-type]


def test_numbers_keep_their_json_type() -> None:
    chosen = ChosenRecord.model_validate({"trial": 3, "family": "linear", "refit_params": {}})
    assert chosen.to_dict() == {"trial": 3, "family": "linear", "refit_params": {}}
    cv = Recipe.read({"cv": {"mean": 1, "std": 0.5}}).cv
    assert json.dumps(cv.to_dict()) == '{"mean": 1, "std": 0.5}'  # an int stays an int


def test_a_recipe_reads_like_the_mapping_it_is_written_as() -> None:
    from mlwright.package.recipe import Recipe

    written = {"recipe_format": 1, "name": "churn", "seed": 3, "cv": {"metric": "roc_auc"}}
    recipe = Recipe.read(written)
    assert dict(recipe.items()) == written and list(recipe.keys()) == list(written)
    assert len(recipe) == len(written) and list(recipe.values())[1] == "churn"
    assert "threads" not in recipe and recipe.get("threads", 4) == 4  # not in the file
    assert "seed" in recipe and recipe.get("seed", 9) == 3
