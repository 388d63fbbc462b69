"""The recipe of a trained model, typed and versioned (:mod:`mlwright.package.recipe`, where a
package can hold it without importing the trainer)."""

from mlwright.package.recipe import (
    RECIPE_FORMAT,
    BudgetRecord,
    ChosenRecord,
    CvRecord,
    DataRecord,
    Recipe,
    RecipeError,
    RecipePart,
    TorchRecipe,
    TrialRecord,
    read_recipe,
)

__all__ = [
    "RECIPE_FORMAT",
    "BudgetRecord",
    "ChosenRecord",
    "CvRecord",
    "DataRecord",
    "Recipe",
    "RecipeError",
    "RecipePart",
    "TorchRecipe",
    "TrialRecord",
    "read_recipe",
]
