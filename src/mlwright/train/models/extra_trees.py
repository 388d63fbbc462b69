"""Extremely randomised trees (scikit-learn)."""

from __future__ import annotations

from mlwright.train.models.forest import BaggedTrees


class ExtraTreesFamily(BaggedTrees):
    name = "extra_trees"
    relative_cost = 3.5
    about = "randomised-split trees; lower variance than a random forest, fast to fit"
    plan_order = 5
    _classifier = "ExtraTreesClassifier"
    _regressor = "ExtraTreesRegressor"
