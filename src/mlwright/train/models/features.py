"""From schema-enforced frames to model matrices, in NumPy, with a JSON-serialisable state.

One :class:`FeatureEncoder` is fitted on the training rows; it then turns any enforced frame into
one of three *views*, each a family's own preprocessing:

- ``tree``: numbers as they are (missing stays NaN), booleans 0/1, categories as integer codes
  (declared categorical for families that support it), dates as calendar parts plus elapsed days,
  free text as TF-IDF columns;
- ``dense``: for linear models: numbers imputed with the training median, standardised, plus a
  missing indicator where training had missing values; categories one-hot (the most frequent
  ``one_hot_max`` levels) plus a frequency encoding for high-cardinality columns;
- ``embed``: for the MLP: the dense numeric part, and category codes for embedding tables.

This module is the fast scorer's preprocessing: no scikit-learn, no per-row pandas.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlwright.config import FeatureSettings
from mlwright.data.records import RecordColumns
from mlwright.data.schema import ColumnSchema

View = Literal["tree", "dense", "embed"]
VIEWS: tuple[View, ...] = ("tree", "dense", "embed")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_DAY_US = 86_400 * 10**6
_DAY_NS = 86_400 * 10**9  # what encoders fitted before `days` was recorded divide by


@dataclass
class Design:
    """A model matrix: ``X`` (float64), column names, which columns hold category codes, and
    (``embed`` view) the category codes for embeddings with each column's cardinality."""

    X: np.ndarray
    names: list[str]
    categorical: list[int] = field(default_factory=list)
    codes: np.ndarray | None = None
    cardinalities: list[int] = field(default_factory=list)

    def rows(self, idx: np.ndarray) -> Design:
        return Design(
            self.X[idx],
            self.names,
            self.categorical,
            None if self.codes is None else self.codes[idx],
            self.cardinalities,
        )

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])


def as_float(values: pd.Series | np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray):  # from RecordColumns: float64 already
        return values if values.dtype == np.float64 else values.astype("float64")
    if isinstance(values.dtype, pd.BooleanDtype):
        return np.asarray(values.astype("float64"), dtype="float64")
    return np.array(values, dtype="float64")


def _numeric_block(
    frame: pd.DataFrame | RecordColumns, columns: list[dict[str, Any]]
) -> dict[str, np.ndarray]:
    """A frame's numeric, integer and boolean columns as float64, in one conversion: one per
    column costs tens of microseconds each, which on a table of hundreds of columns was most of
    a predict call (and of permutation importance, which predicts once per column)."""
    names = [c["name"] for c in columns if c["kind"] in ("numeric", "integer", "boolean")]
    if not isinstance(frame, pd.DataFrame) or len(names) < 2:
        return {}
    block = frame[names].to_numpy(dtype="float64", na_value=np.nan)
    return {name: block[:, i] for i, name in enumerate(names)}


class FeatureEncoder:
    """Fitted column encoders. ``state`` is plain JSON; ``from_state`` restores it exactly."""

    def __init__(self, settings: FeatureSettings | None = None) -> None:
        self.settings = settings or FeatureSettings()
        self.columns_: list[dict[str, Any]] | None = None
        self._lookups: dict[str, dict[str | None, int]] = {}  # level -> code, on first use

    # --- fitting --------------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, columns: list[ColumnSchema]) -> FeatureEncoder:
        self.columns_ = [self._fit_column(frame[c.name], c) for c in columns]
        return self

    def _fit_column(self, values: pd.Series, col: ColumnSchema) -> dict[str, Any]:
        s = self.settings
        spec: dict[str, Any] = {"name": col.name, "kind": col.kind}
        if col.kind in ("numeric", "integer", "boolean"):
            x = as_float(values)
            present = x[~np.isnan(x)]
            median = float(np.median(present)) if len(present) else 0.0
            std = float(present.std()) if len(present) > 1 else 0.0
            spec.update(
                median=median,
                mean=float(present.mean()) if len(present) else 0.0,
                scale=std if std > 0 else 1.0,
                has_missing=bool(np.isnan(x).any()),
            )
        elif col.kind == "categorical":
            counts = values.dropna().value_counts()
            levels = [str(v) for v in counts.index[: s.max_levels]]
            total = max(int(counts.sum()), 1)
            spec.update(
                levels=levels,
                freq=[round(float(counts.iloc[i]) / total, 10) for i in range(len(levels))],
                other_freq=round(float(counts.iloc[len(levels) :].sum()) / total, 10),
            )
        elif col.kind == "datetime":
            days = _days(values)
            present = days[~np.isnan(days)]
            hours = pd.to_datetime(values).dt.hour.dropna()
            spec.update(
                origin=float(present.min()) if len(present) else 0.0,
                span=float(np.ptp(present)) if len(present) else 1.0,
                with_hour=bool(len(hours) and hours.nunique() > 1),
                days=True,  # elapsed time in days (see _days)
            )
        elif col.kind == "text":
            docs = values.fillna("").astype(str).tolist()
            df_counts: dict[str, int] = {}
            for doc in docs:
                for tok in set(_TOKEN.findall(doc.lower())):
                    df_counts[tok] = df_counts.get(tok, 0) + 1
            ranked = sorted(
                (t for t, c in df_counts.items() if c >= s.text_min_df),
                key=lambda t: (-df_counts[t], t),
            )[: s.text_max_terms]
            n = len(docs)
            spec.update(
                vocab=ranked,
                idf=[round(math.log((1 + n) / (1 + df_counts[t])) + 1.0, 10) for t in ranked],
            )
        return spec

    def fit_stats(
        self, stats: dict[str, ColumnStats], columns: list[ColumnSchema], medians: dict[str, float]
    ) -> FeatureEncoder:
        """Fit from statistics gathered batch by batch (:class:`ColumnStats`, merged over every
        row) rather than from one frame: the same encoder ``fit`` gives on those rows, except
        that a numeric column's ``median`` (which only the ``dense`` view reads) comes from
        ``medians`` (a sample's), and that levels seen equally often are ordered by their text."""
        self.columns_ = [stats[c.name].spec(c, self.settings, medians.get(c.name)) for c in columns]
        return self

    # --- state ----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        assert self.columns_ is not None, "fit the encoder first"
        return {"settings": self.settings.model_dump(), "columns": self.columns_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureEncoder:
        enc = cls(FeatureSettings.model_validate(state["settings"]))
        enc.columns_ = list(state["columns"])
        return enc

    # --- transforming ---------------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame | RecordColumns, view: View) -> Design:
        """The ``view`` matrix of an enforced frame (or of :class:`RecordColumns`)."""
        assert self.columns_ is not None, "fit the encoder first"
        blocks: list[np.ndarray] = []
        names: list[str] = []
        categorical: list[int] = []
        codes: list[np.ndarray] = []
        cards: list[int] = []
        n = len(frame)
        numbers = _numeric_block(frame, self.columns_)

        def add(block: np.ndarray, block_names: list[str], is_cat: bool = False) -> None:
            if is_cat:
                categorical.extend(range(len(names), len(names) + len(block_names)))
            blocks.append(block.reshape(n, -1))
            names.extend(block_names)

        for spec in self.columns_:
            name, kind = spec["name"], spec["kind"]
            values: Any = numbers[name] if name in numbers else frame[name]
            if kind in ("numeric", "integer", "boolean"):
                x = as_float(values)
                if view == "tree":
                    add(x, [name])
                    continue
                missing = np.isnan(x)
                filled = np.where(missing, spec["median"], x)
                add((filled - spec["mean"]) / spec["scale"], [name])
                if spec["has_missing"]:
                    add(missing.astype("float64"), [f"{name}__missing"])
            elif kind == "categorical":
                code = self._codes(values, spec)  # -1 missing, len(levels) other
                n_levels = len(spec["levels"])
                if view == "tree":
                    add(np.where(code < 0, np.nan, code).astype("float64"), [name], is_cat=True)
                    continue
                if view == "embed":
                    codes.append(code + 1)  # 0 missing, 1..n levels, n+1 other
                    cards.append(n_levels + 2)
                    continue
                k = min(n_levels, self.settings.one_hot_max)
                onehot = np.zeros((n, k + 1))
                rows = np.arange(n)
                hit = code >= 0
                onehot[rows[hit], np.minimum(code[hit], k)] = 1.0
                add(onehot, [f"{name}={lv}" for lv in spec["levels"][:k]] + [f"{name}=(other)"])
                if n_levels > self.settings.one_hot_max:
                    freq = np.array([*spec["freq"], spec["other_freq"], 0.0])
                    add(freq[np.where(code < 0, n_levels + 1, code)], [f"{name}__freq"])
            elif kind == "datetime":
                parts, part_names = _date_parts(values, spec)
                if view != "tree":
                    # scaled to about [0, 1]; missing dates sit at 0; year and day of month are
                    # carried by the elapsed time for linear models
                    parts = np.nan_to_num(parts / _part_scales(spec, part_names), nan=0.0)
                    keep = [
                        i for i, n in enumerate(part_names) if not n.endswith(("__year", "__day"))
                    ]
                    parts, part_names = parts[:, keep], [part_names[i] for i in keep]
                add(parts, part_names)
            elif kind == "text":
                add(
                    _tfidf(values, spec["vocab"], spec["idf"]),
                    [f"{name}~{t}" for t in spec["vocab"]],
                )
        X = np.hstack(blocks) if blocks else np.zeros((n, 0))
        code_matrix = np.column_stack(codes).astype(np.int64) if codes else None
        return Design(X, names, categorical if view == "tree" else [], code_matrix, cards)

    def _codes(self, values: pd.Series | list[str | None], spec: dict[str, Any]) -> np.ndarray:
        """Integer codes: index in the levels; ``len(levels)`` for unseen values; -1 missing."""
        levels: list[str] = spec["levels"]
        if isinstance(values, pd.Series):
            return _codes(values, levels)
        lookup = self._lookups.get(spec["name"])
        if lookup is None:
            lookup = {lv: i for i, lv in enumerate(levels)}
            lookup[None] = -1
            self._lookups[spec["name"]] = lookup
        found = map(lookup.get, values, itertools.repeat(len(levels)))
        return np.fromiter(found, dtype=np.int64, count=len(values))


def _codes(values: pd.Series, levels: list[str]) -> np.ndarray:
    missing = values.isna().to_numpy()
    code = np.asarray(
        pd.Index(levels, dtype=object).get_indexer(pd.Index(values.astype(object))), dtype=np.int64
    )
    code[(code < 0) & ~missing] = len(levels)
    code[missing] = -1
    return code


def _days(values: pd.Series, spec: dict[str, Any] | None = None) -> np.ndarray:
    """Days since the epoch, whatever the resolution pandas holds the dates in (seconds for
    NumPy dates, microseconds for parsed text, nanoseconds for some frames): the same dates
    give the same values. Encoders fitted before ``days`` was recorded divided microseconds by
    a day's nanoseconds; they keep doing so, and now do it whatever the input's resolution."""
    dt = pd.to_datetime(values)
    micros = np.array(dt.astype("datetime64[us]").astype("int64"), dtype="float64")
    micros[dt.isna().to_numpy()] = np.nan
    return micros / (_DAY_US if spec is None or spec.get("days") else _DAY_NS)


def _date_parts(values: pd.Series, spec: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    dt = pd.to_datetime(values)
    name = spec["name"]
    parts = [
        np.array(dt.dt.year, dtype="float64"),
        np.array(dt.dt.month, dtype="float64"),
        np.array(dt.dt.day, dtype="float64"),
        np.array(dt.dt.day_of_week, dtype="float64"),
    ]
    names = [f"{name}__year", f"{name}__month", f"{name}__day", f"{name}__dayofweek"]
    if spec["with_hour"]:
        parts.append(np.array(dt.dt.hour, dtype="float64"))
        names.append(f"{name}__hour")
    parts.append(_days(values, spec) - spec["origin"])
    names.append(f"{name}__elapsed_days")
    return np.column_stack(parts), names


def _part_scales(spec: dict[str, Any], names: list[str]) -> np.ndarray:
    scale = {"year": 10.0, "month": 12.0, "day": 31.0, "dayofweek": 7.0, "hour": 24.0}
    out = [scale.get(n.rsplit("__", 1)[1], max(spec["span"], 1.0)) for n in names]
    return np.array(out)


def _tfidf(values: pd.Series, vocab: list[str], idf: list[float]) -> np.ndarray:
    index = {t: i for i, t in enumerate(vocab)}
    weights = np.array(idf)
    out = np.zeros((len(values), len(vocab)))
    for row, doc in enumerate(values.fillna("").astype(str).tolist()):
        for tok in _TOKEN.findall(doc.lower()):
            j = index.get(tok)
            if j is not None:
                out[row, j] += 1.0
    out *= weights
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(np.divide(out, norms, out=np.zeros_like(out), where=norms > 0))


@dataclass
class ColumnStats:
    """What an encoder learns from one column, gathered a batch at a time: ``add`` a batch,
    ``merge`` another's, then ``spec`` gives the column's encoder
    (:meth:`FeatureEncoder.fit_stats`). Numbers keep a count, mean and sum of squared
    deviations (merged exactly, by Chan's formula); categories and text keep every level's
    (document) count: the full vocabulary."""

    kind: str
    count: int = 0  # values present (rows, for text)
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = math.inf  # datetime: the earliest and latest day
    high: float = -math.inf
    hours: set[int] = field(default_factory=set)  # datetime: up to two distinct hours
    counts: dict[str, int] = field(default_factory=dict)  # levels, or text tokens' documents

    def add(self, values: pd.Series) -> ColumnStats:
        if self.kind in ("numeric", "integer", "boolean"):
            x = as_float(values)
            present = x[~np.isnan(x)]
            self.missing += len(x) - len(present)
            if len(present):
                batch = ColumnStats(
                    self.kind,
                    count=len(present),
                    mean=float(present.mean()),
                    m2=float(((present - present.mean()) ** 2).sum()),
                )
                self.merge(batch)
        elif self.kind == "categorical":
            for level, n in values.dropna().astype(str).value_counts(sort=False).items():
                self.counts[str(level)] = self.counts.get(str(level), 0) + int(n)
        elif self.kind == "datetime":
            days = _days(values)
            present = days[~np.isnan(days)]
            if len(present):
                self.low = min(self.low, float(present.min()))
                self.high = max(self.high, float(present.max()))
            if len(self.hours) < 2:
                found = pd.to_datetime(values).dt.hour.dropna().unique()[:2]
                self.hours.update(int(h) for h in found)
        elif self.kind == "text":
            self.count += len(values)
            for doc in values.fillna("").astype(str).tolist():
                for tok in set(_TOKEN.findall(doc.lower())):
                    self.counts[tok] = self.counts.get(tok, 0) + 1
        return self

    def merge(self, other: ColumnStats) -> ColumnStats:
        if self.kind in ("numeric", "integer", "boolean") and other.count:
            n = self.count + other.count
            delta = other.mean - self.mean
            self.mean += delta * other.count / n
            self.m2 += other.m2 + delta * delta * self.count * other.count / n
            self.count = n
        elif self.kind == "text":
            self.count += other.count
        self.missing += other.missing if self.kind in ("numeric", "integer", "boolean") else 0
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)
        self.hours = set(sorted(self.hours | other.hours)[:2])
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        return self

    def spec(
        self, col: ColumnSchema, settings: FeatureSettings, median: float | None
    ) -> dict[str, Any]:
        """The column's encoder, as :meth:`FeatureEncoder._fit_column` writes it."""
        spec: dict[str, Any] = {"name": col.name, "kind": col.kind}
        if col.kind in ("numeric", "integer", "boolean"):
            std = math.sqrt(self.m2 / self.count) if self.count > 1 else 0.0
            spec.update(
                median=float(median if median is not None else self.mean) if self.count else 0.0,
                mean=float(self.mean) if self.count else 0.0,
                scale=std if std > 0 else 1.0,
                has_missing=self.missing > 0,
            )
        elif col.kind == "categorical":
            ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
            levels = ranked[: settings.max_levels]
            total = max(sum(self.counts.values()), 1)
            spec.update(
                levels=[level for level, _ in levels],
                freq=[round(n / total, 10) for _, n in levels],
                other_freq=round(sum(n for _, n in ranked[len(levels) :]) / total, 10),
            )
        elif col.kind == "datetime":
            present = self.low <= self.high
            spec.update(
                origin=self.low if present else 0.0,
                span=self.high - self.low if present else 1.0,
                with_hour=len(self.hours) > 1,
                days=True,
            )
        elif col.kind == "text":
            ranked_terms = sorted(
                (t for t, c in self.counts.items() if c >= settings.text_min_df),
                key=lambda t: (-self.counts[t], t),
            )[: settings.text_max_terms]
            n = self.count
            spec.update(
                vocab=ranked_terms,
                idf=[
                    round(math.log((1 + n) / (1 + self.counts[t])) + 1.0, 10) for t in ranked_terms
                ],
            )
        return spec
