"""Single-feature leakage check.

For every candidate column, how well does that column *alone* predict the target out of fold?
A legitimate feature rarely predicts the target almost perfectly; one that does was usually
recorded after the outcome (or is the outcome in disguise). We also test the reverse direction:
a column that is a deterministic function of the target (a recoded or bucketed target) is a leak
even when it cannot predict the target back exactly.

Columns with few distinct values are scored with an exact per-value lookup; continuous ones with
a shallow decision tree. Large frames are sampled (``leakage_sample_rows``), never skipped.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlwright.config import ProfileSettings
from mlwright.data.schema import ColumnSchema, TableSchema
from mlwright.data.tasks import Task

_LOOKUP_MAX_VALUES = 64
_TREE_LEAVES = 64


@dataclass(frozen=True)
class LeakScore:
    column: str
    forward: float  # OOF accuracy (classification) or R² (regression) of column -> target
    baseline: float  # majority-class accuracy, or 0.0 for R²
    reverse: float | None  # OOF score of target -> column, when it was measured
    reverse_baseline: float | None

    def forward_leak(self, settings: ProfileSettings) -> bool:
        return _is_leak(self.forward, self.baseline, settings)

    def reverse_leak(self, settings: ProfileSettings) -> bool:
        if self.reverse is None or self.reverse_baseline is None:
            return False
        return _is_leak(self.reverse, self.reverse_baseline, settings)


def _is_leak(score: float, baseline: float, settings: ProfileSettings) -> bool:
    if score < settings.leakage_score or baseline >= 1.0:
        return False
    lift = (score - baseline) / (1.0 - baseline)
    return lift >= settings.leakage_lift


def sample_rows(n: int, limit: int, seed: int) -> np.ndarray:
    """Sorted row positions of a seeded sample of at most ``limit`` rows."""
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=limit, replace=False))


def leakage_scores(
    frame: pd.DataFrame,
    schema: TableSchema,
    task: Task,
    settings: ProfileSettings,
) -> tuple[list[LeakScore], int]:
    """Scores for every feature and ID column, and the number of rows they were measured on."""
    target = schema.target
    assert target is not None
    y_raw = frame[target]
    keep = y_raw.notna().to_numpy()
    if task == "regression":
        y_num = pd.to_numeric(y_raw, errors="coerce").to_numpy(dtype="float64")
        keep = keep & np.isfinite(y_num)
    rows = np.flatnonzero(keep)
    rows = rows[sample_rows(len(rows), settings.leakage_sample_rows, settings.seed)]
    n = len(rows)
    if n < 2 * settings.leakage_folds:
        return [], n
    folds = np.random.default_rng(settings.seed).permutation(n) % settings.leakage_folds
    if task == "regression":
        y: np.ndarray = y_num[rows]
    else:
        y = pd.factorize(y_raw.iloc[rows], sort=True)[0]
    scores = []
    for col in schema.columns:
        if col.role not in ("feature", "id") or col.kind == "text":
            continue
        x_codes, x_num = _encode(col, frame[col.name].iloc[rows])
        forward = _oof(x_codes, x_num, y, task != "regression", folds, settings.seed)
        reverse = reverse_base = None
        if x_codes is not None:
            # does the target determine this column? (class -> value, or binned target -> value)
            y_codes, y_cont = (None, y) if task == "regression" else (y, None)
            reverse = _oof(y_codes, y_cont, x_codes, True, folds, settings.seed)
            reverse_base = _majority_share(x_codes)
        elif task == "regression" and x_num is not None:
            known = ~np.isnan(x_num)  # the column is the target here: only rows that have it
            if known.sum() >= 2 * settings.leakage_folds:
                reverse = _oof(
                    None,
                    y[known].astype("float64"),
                    x_num[known],
                    False,
                    folds[known],
                    settings.seed,
                )
                reverse_base = 0.0
        scores.append(
            LeakScore(
                column=col.name,
                forward=round(forward, 6),
                baseline=0.0 if task == "regression" else round(_majority_share(y), 6),
                reverse=None if reverse is None else round(reverse, 6),
                reverse_baseline=None if reverse_base is None else round(reverse_base, 6),
            )
        )
    return scores, n


def _encode(col: ColumnSchema, values: pd.Series) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Integer codes (NaN as its own code) for few-valued columns, else a float array."""
    if col.kind in ("numeric", "integer"):
        num = np.array(pd.to_numeric(values, errors="coerce"), dtype="float64")
        num[~np.isfinite(num)] = np.nan
    elif col.kind == "datetime":
        from mlwright.data.schema import parse_datetime

        dt = (
            values
            if pd.api.types.is_datetime64_any_dtype(values.dtype)
            else parse_datetime(values.astype(str), col.datetime_format)
        )
        num = np.array(dt.astype("int64"), dtype="float64")
        num[dt.isna().to_numpy()] = np.nan
    else:
        codes = pd.factorize(values.astype(str).where(values.notna()), use_na_sentinel=True)[0]
        return np.where(codes < 0, codes.max() + 1, codes), None
    if np.unique(num[~np.isnan(num)]).size <= _LOOKUP_MAX_VALUES:
        codes = pd.factorize(pd.Series(num), use_na_sentinel=True)[0]
        return np.where(codes < 0, codes.max() + 1, codes), None
    return None, num


def _majority_share(codes: np.ndarray) -> float:
    counts = np.bincount(codes)
    return float(counts.max() / counts.sum())


def _oof(
    x_codes: np.ndarray | None,
    x_num: np.ndarray | None,
    y: np.ndarray,
    classify: bool,
    folds: np.ndarray,
    seed: int,
) -> float:
    """Out-of-fold accuracy (classify) or R² of predicting ``y`` from one column."""
    pred = np.empty(len(y), dtype="float64")
    for k in np.unique(folds):
        test = folds == k
        train = ~test
        if x_codes is not None:
            pred[test] = _lookup(x_codes[train], y[train], x_codes[test], classify)
        else:
            assert x_num is not None
            pred[test] = _tree(x_num[train], y[train], x_num[test], classify, seed)
    if classify:
        return float(np.mean(pred == y))
    sst = float(np.sum((y - y.mean()) ** 2))
    if sst == 0.0:
        return 0.0
    return 1.0 - float(np.sum((y - pred) ** 2)) / sst


def _lookup(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, classify: bool
) -> np.ndarray:
    n_codes = int(max(x_train.max(), x_test.max())) + 1
    if classify:
        n_classes = int(y_train.max()) + 1
        table = np.bincount(x_train * n_classes + y_train, minlength=n_codes * n_classes)
        table = table.reshape(n_codes, n_classes)
        best = table.argmax(axis=1).astype("float64")
        unseen = table.sum(axis=1) == 0
        best[unseen] = np.bincount(y_train).argmax()
        return np.asarray(best[x_test])
    sums = np.bincount(x_train, weights=y_train, minlength=n_codes)
    counts = np.bincount(x_train, minlength=n_codes)
    means = np.divide(sums, counts, out=np.full(n_codes, y_train.mean()), where=counts > 0)
    return np.asarray(means[x_test])


def _tree(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, classify: bool, seed: int
) -> np.ndarray:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    model: DecisionTreeClassifier | DecisionTreeRegressor
    if classify:
        model = DecisionTreeClassifier(max_leaf_nodes=_TREE_LEAVES, random_state=seed)
    else:
        model = DecisionTreeRegressor(max_leaf_nodes=_TREE_LEAVES, random_state=seed)
    with warnings.catch_warnings():
        # many distinct codes is expected when a column is scored from the target
        warnings.filterwarnings(
            "ignore", message="The number of unique classes", category=UserWarning
        )
        model.fit(x_train.reshape(-1, 1), y_train)
    return np.asarray(model.predict(x_test.reshape(-1, 1)), dtype="float64")
