"""Validation splits: stratified, grouped, time-ordered, or a holdout; and the test split.

Every split is a list of (train positions, validation positions) over the rows it is given,
seeded, and never mixes a group or the future into the training side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlwright.design.plan import ValidationStrategy
from mlwright.errors import DataError

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class SplitInputs:
    """What a splitter may use, for the rows being split (positions 0..n-1)."""

    n: int
    y_codes: np.ndarray | None = None  # class indices, for stratification
    groups: np.ndarray | None = None
    order: np.ndarray | None = None  # sortable time values


def make_splits(strategy: ValidationStrategy, data: SplitInputs, seed: int) -> list[Split]:
    from sklearn.model_selection import (
        GroupKFold,
        GroupShuffleSplit,
        KFold,
        ShuffleSplit,
        StratifiedKFold,
        StratifiedShuffleSplit,
    )

    idx = np.arange(data.n)
    k = strategy.n_splits
    if strategy.kind == "time_series":
        assert data.order is not None
        ordered = np.argsort(data.order, kind="stable")
        return _time_folds(ordered, k)
    if strategy.kind == "group_kfold":
        assert data.groups is not None
        n_groups = len(np.unique(data.groups))
        if n_groups < k:
            raise DataError(
                f"only {n_groups} distinct groups in {strategy.group_column!r}, fewer than "
                f"{k} folds",
                fix="use fewer folds or a column with more groups",
            )
        folds = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return [(a, b) for a, b in folds.split(idx, groups=data.groups)]
    if strategy.kind == "stratified_kfold":
        assert data.y_codes is not None
        strat = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return [(a, b) for a, b in strat.split(idx, data.y_codes)]
    if strategy.kind == "kfold":
        return [(a, b) for a, b in KFold(n_splits=k, shuffle=True, random_state=seed).split(idx)]
    # holdout
    frac = strategy.holdout_fraction
    if strategy.time_column and data.order is not None:
        ordered = np.argsort(data.order, kind="stable")
        cut = round(data.n * (1 - frac))
        return [(np.sort(ordered[:cut]), np.sort(ordered[cut:]))]
    if strategy.group_column and data.groups is not None:
        gss = GroupShuffleSplit(n_splits=1, test_size=frac, random_state=seed)
        return [next(gss.split(idx, groups=data.groups))]
    if data.y_codes is not None:
        sss = StratifiedShuffleSplit(n_splits=1, test_size=frac, random_state=seed)
        return [next(sss.split(idx, data.y_codes))]
    return [next(ShuffleSplit(n_splits=1, test_size=frac, random_state=seed).split(idx))]


def _time_folds(ordered: np.ndarray, k: int) -> list[Split]:
    """Expanding-window folds: each validates on the next block of time."""
    blocks = np.array_split(ordered, k + 1)
    return [(np.sort(np.concatenate(blocks[: i + 1])), np.sort(blocks[i + 1])) for i in range(k)]


def holdout_split(
    data: SplitInputs, test_size: float, seed: int, *, by_time: bool, by_group: bool
) -> Split:
    """Training and test positions; the test part is the latest rows when ``by_time``."""
    holdout = ValidationStrategy(
        kind="holdout",
        n_splits=1,
        reason="test split",
        holdout_fraction=test_size,
        time_column="time" if by_time else None,
        group_column="group" if by_group else None,
    )
    inputs = data
    if not by_time:
        inputs = SplitInputs(data.n, data.y_codes, data.groups if by_group else None, None)
    try:
        return make_splits(holdout, inputs, seed)[0]
    except ValueError:
        # a class too rare to stratify: fall back to a plain shuffle
        plain = SplitInputs(data.n, None, inputs.groups, inputs.order)
        return make_splits(holdout, plain, seed)[0]
