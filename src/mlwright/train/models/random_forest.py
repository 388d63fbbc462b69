"""Random forest (scikit-learn)."""

from __future__ import annotations

from mlwright.train.models.forest import BaggedTrees


class RandomForestFamily(BaggedTrees):
    name = "random_forest"
    relative_cost = 4.5
    about = "bagged deep trees; robust with little tuning, large on disk"
    plan_order = 6
    _classifier = "RandomForestClassifier"
    _regressor = "RandomForestRegressor"
