"""TableSchema v1: what every column is, what role it plays, and what values it accepts.

The schema is inferred once from the training data (:func:`infer_schema`), saved as JSON with the
model package, and enforced on every later frame (:meth:`TableSchema.enforce`): the trainer, the
``predict`` command and the model server all read data through it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlwright.config import ProfileSettings
from mlwright.errors import ColumnError, DataError, SchemaViolationError, Violation

SCHEMA_VERSION = 1

Kind = Literal["numeric", "integer", "boolean", "categorical", "datetime", "text"]
Role = Literal["feature", "target", "id", "constant", "ignored"]
KINDS: tuple[Kind, ...] = ("numeric", "integer", "boolean", "categorical", "datetime", "text")
ROLES: tuple[Role, ...] = ("feature", "target", "id", "constant", "ignored")

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_BOOL_WORDS = frozenset({"true", "false"})
ID_NAME = re.compile(
    r"(?i)^(id|uuid|guid|key|index|row|rowid|row_?id|row_?num(ber)?|unnamed: ?\d+)$"
    r"|(^|[_\W])(id|uuid|guid|key)$|^(id|uuid|guid)[_\W]"
)
_TIME_NAME = re.compile(r"(?i)(year|month|week|day|date|time|hour|period|age)")
_DATE_FORMATS = (
    "ISO8601",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%m-%d-%Y",
    "%d-%m-%Y",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d %b %Y",
    "%b %d %Y",
    "%d %B %Y",
    "%B %d, %Y",
)
_DATE_CHARS = re.compile(r"\d.*[-/.:\s].*\d")


@dataclass(frozen=True)
class ColumnPolicy:
    """What a later frame may do differently from the training data."""

    nulls: Literal["allow", "reject"] = "allow"
    unknown_category: Literal["allow", "reject"] = "allow"
    out_of_range: Literal["allow", "clip", "reject"] = "allow"


@dataclass(frozen=True)
class ColumnSchema:
    name: str
    kind: Kind
    role: Role
    source_dtype: str
    n_missing: int
    missing_rate: float
    n_unique: int
    role_reason: str | None = None
    minimum: float | str | None = None
    maximum: float | str | None = None
    categories: dict[str, int] | None = None
    other_count: int = 0
    datetime_format: str | None = None
    mean_tokens: float | None = None
    policy: ColumnPolicy = field(default_factory=ColumnPolicy)

    @property
    def is_feature(self) -> bool:
        return self.role == "feature"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnSchema:
        values = dict(d)
        if values.get("kind") not in KINDS:
            raise DataError(
                f"schema column {values.get('name')!r} has unknown kind {values.get('kind')!r}"
            )
        if values.get("role") not in ROLES:
            raise DataError(
                f"schema column {values.get('name')!r} has unknown role {values.get('role')!r}"
            )
        values["policy"] = ColumnPolicy(**values.get("policy", {}))
        return cls(**values)


@dataclass(frozen=True)
class TableSchema:
    columns: tuple[ColumnSchema, ...]
    n_rows: int
    target: str | None = None
    classes: tuple[Any, ...] | None = None
    version: int = SCHEMA_VERSION

    # --- access ---------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> ColumnSchema:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def features(self) -> list[ColumnSchema]:
        return [c for c in self.columns if c.role == "feature"]

    def with_roles(self, roles: dict[str, Role], reason: str) -> TableSchema:
        """A copy with some columns' roles changed (e.g. ``--drop-col``, ``--keep-col``)."""
        unknown = [n for n in roles if n not in self.names]
        if unknown:
            raise ColumnError(f"unknown column(s) {unknown} in role change")
        cols = tuple(
            replace(c, role=roles[c.name], role_reason=reason) if c.name in roles else c
            for c in self.columns
        )
        return replace(self, columns=cols)

    # --- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.version,
            "n_rows": self.n_rows,
            "target": self.target,
            "classes": None if self.classes is None else list(self.classes),
            "columns": [c.to_dict() for c in self.columns],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableSchema:
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DataError(
                f"schema version {version!r} is not supported (this mlwright reads version "
                f"{SCHEMA_VERSION})",
                fix="use the mlwright version that wrote the schema, or retrain",
            )
        classes = d.get("classes")
        return cls(
            columns=tuple(ColumnSchema.from_dict(c) for c in d["columns"]),
            n_rows=int(d["n_rows"]),
            target=d.get("target"),
            classes=None if classes is None else tuple(classes),
        )

    @classmethod
    def from_json(cls, text: str) -> TableSchema:
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(
                f"schema JSON is malformed: {exc}", fix="regenerate it with infer_schema"
            ) from None

    # --- enforcement ----------------------------------------------------------------------------
    def check(
        self,
        frame: pd.DataFrame,
        *,
        roles: Iterable[Role] = ("feature",),
        max_per_column: int = 20,
    ) -> tuple[pd.DataFrame, list[Violation], int]:
        """Convert ``frame`` to the trained dtypes. Returns the converted frame (the schema's
        columns with the given roles, in schema order), the violations found (at most
        ``max_per_column`` listed per column) and the total number of violations."""
        wanted = [c for c in self.columns if c.role in set(roles)]
        present = {str(c) for c in frame.columns}
        violations: list[Violation] = []
        total = 0
        out: dict[str, pd.Series] = {}
        for col in wanted:
            if col.name not in present:
                violations.append(
                    Violation(col.name, "required column is missing", f"a {col.kind} column")
                )
                total += 1
                continue
            converted, found, count = enforce_column(col, frame[col.name], max_per_column)
            out[col.name] = converted
            violations.extend(found)
            total += count
        result = pd.DataFrame(out, index=frame.index)
        return result, violations, total

    def enforce(self, frame: pd.DataFrame, *, roles: Iterable[Role] = ("feature",)) -> pd.DataFrame:
        """The frame with the trained dtypes, or a SchemaViolationError listing every problem."""
        result, violations, total = self.check(frame, roles=roles)
        if violations:
            raise SchemaViolationError(violations, total=total)
        return result

    def extra_columns(self, frame: pd.DataFrame) -> list[str]:
        """Columns of ``frame`` the schema does not know (ignored by enforce)."""
        known = set(self.names)
        return [str(c) for c in frame.columns if str(c) not in known]


# --- inference ----------------------------------------------------------------------------------


def infer_schema(
    frame: pd.DataFrame,
    target: str | None = None,
    settings: ProfileSettings | None = None,
) -> TableSchema:
    """Infer every column's kind and role from ``frame``."""
    cfg = settings or ProfileSettings()
    rng = np.random.default_rng(cfg.seed)
    columns = tuple(
        infer_column(str(name), frame[name], cfg, rng, is_target=(str(name) == target))
        for name in frame.columns
    )
    return TableSchema(columns=columns, n_rows=len(frame), target=target)


def infer_column(
    name: str,
    series: pd.Series,
    settings: ProfileSettings,
    rng: np.random.Generator,
    *,
    is_target: bool = False,
) -> ColumnSchema:
    n = len(series)
    n_missing = int(series.isna().sum())
    nonnull = series.dropna()
    kind, fmt, values = _infer_kind(nonnull, settings, rng)
    n_unique = int(values.nunique()) if len(values) else 0
    base: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "source_dtype": str(series.dtype),
        "n_missing": n_missing,
        "missing_rate": round(n_missing / n, 6) if n else 0.0,
        "n_unique": n_unique,
        "datetime_format": fmt,
    }
    if kind in ("numeric", "integer") and len(values):
        finite = values[np.isfinite(values.to_numpy(dtype="float64"))]
        if len(finite):
            base["minimum"] = _py(finite.min())
            base["maximum"] = _py(finite.max())
    elif kind == "datetime" and len(values):
        base["minimum"] = values.min().isoformat()
        base["maximum"] = values.max().isoformat()
    if kind in ("categorical", "boolean"):
        counts = values.astype(str).value_counts()
        top = counts.iloc[: settings.category_limit]
        base["categories"] = {str(k): int(v) for k, v in top.items()}
        base["other_count"] = int(counts.iloc[settings.category_limit :].sum())
    if kind == "text":
        base["mean_tokens"] = round(_mean_tokens(values, rng, settings.infer_sample_rows), 3)
    role, reason = _infer_role(name, kind, values, n_unique, settings, rng, is_target)
    return ColumnSchema(role=role, role_reason=reason, **base)


def _infer_kind(
    nonnull: pd.Series, settings: ProfileSettings, rng: np.random.Generator
) -> tuple[Kind, str | None, pd.Series]:
    """The column's kind, its date format if any, and its non-null values in that kind."""
    dtype = nonnull.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean", None, nonnull
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical", None, nonnull.astype(str)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime", None, nonnull
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "numeric", None, nonnull.dt.total_seconds()
    if pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_integer_dtype(dtype):
            return "integer", None, nonnull
        arr = nonnull.to_numpy(dtype="float64")
        finite = arr[np.isfinite(arr)]
        integral = len(finite) > 0 and bool(np.all(finite == np.floor(finite)))
        return ("integer" if integral else "numeric"), None, nonnull
    # strings and mixed Python objects
    as_str = nonnull.astype(str)
    if len(as_str) == 0:
        return "categorical", None, as_str
    lowered = as_str.str.strip().str.lower()
    if set(lowered.unique()) <= _BOOL_WORDS:
        return "boolean", None, lowered == "true"
    sample = _sample(as_str, settings.infer_sample_rows, rng)
    fmt = detect_datetime_format(sample)
    if fmt is not None:
        parsed = parse_datetime(as_str, fmt)
        if parsed.notna().mean() >= 0.99:
            return "datetime", fmt, parsed.dropna()
    unique_ratio = as_str.nunique() / len(as_str)
    if unique_ratio >= 0.5 and _mean_tokens(sample, rng, len(sample)) >= settings.text_min_tokens:
        return "text", None, as_str
    return "categorical", None, as_str


def _infer_role(
    name: str,
    kind: Kind,
    values: pd.Series,
    n_unique: int,
    settings: ProfileSettings,
    rng: np.random.Generator,
    is_target: bool,
) -> tuple[Role, str | None]:
    if is_target:
        return "target", "the target column"
    if n_unique <= 1:
        if len(values) == 0:
            return "constant", "every value is missing"
        return "constant", f"one distinct value ({_short(values.iloc[0])!r})"
    n = len(values)
    ratio = n_unique / n if n else 0.0
    if kind in ("integer", "categorical") and ID_NAME.search(name) and ratio >= 0.5:
        return "id", f"named like an identifier and {ratio:.0%} of its values are distinct"
    if kind == "categorical" and n >= 20 and ratio >= settings.id_unique_ratio:
        sample = _sample(values, settings.infer_sample_rows, rng)
        if _mean_tokens(sample, rng, len(sample)) < 2:
            return "id", f"{ratio:.1%} of its values are distinct single tokens"
    if kind == "integer" and n >= 20 and n_unique == n and not _TIME_NAME.search(name):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo + 1 == n:
            return (
                "id",
                f"every value is distinct and they form the range {lo}..{hi} (a row number)",
            )
    return "feature", None


# --- helpers shared with enforcement and the profile -------------------------------------------


def detect_datetime_format(sample: pd.Series) -> str | None:
    """The first format that parses every value of ``sample`` (strings), or None."""
    if len(sample) == 0:
        return None
    text = sample.astype(str)
    if not text.str.contains(_DATE_CHARS).all():
        return None
    for fmt in _DATE_FORMATS:
        parsed = parse_datetime(text, fmt)
        if parsed.notna().all():
            return fmt
    return None


def parse_datetime(values: pd.Series, fmt: str | None) -> pd.Series:
    """Parse strings with one explicit format; unparseable values become NaT."""
    try:
        # mlwright: ignore[MLW107] on purpose: the callers flag every value that became NaT
        parsed = pd.to_datetime(values, format=fmt or "ISO8601", errors="coerce")
    except (ValueError, TypeError, OverflowError):
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    return _naive_utc(parsed)


def _naive_utc(values: pd.Series) -> pd.Series:
    """Timezone-aware datetimes as naive UTC; naive ones unchanged."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        naive: pd.Series = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return naive
    return values


def enforce_column(
    col: ColumnSchema, series: pd.Series, limit: int
) -> tuple[pd.Series, list[Violation], int]:
    """One column in its trained dtype, at most ``limit`` violations listed, and their count."""
    found: list[Violation] = []
    count = 0

    def flag(mask: pd.Series, reason: str, expected: str) -> None:
        nonlocal count
        hits = series.index[mask.to_numpy()]
        count += len(hits)
        for idx in hits[: max(0, limit - len(found))]:
            found.append(
                Violation(col.name, reason, expected, row=_py(idx), value=_py(series[idx]))
            )

    missing = series.isna()
    if col.kind in ("numeric", "integer"):
        if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
            out = series.astype("float64")
        else:
            out = pd.to_numeric(series.astype(object), errors="coerce").astype("float64")
            flag(out.isna() & ~missing, "not a number", "a number")
        infinite = pd.Series(np.isinf(out.to_numpy()), index=series.index)
        if col.policy.nulls == "reject":
            flag(infinite, "infinite value", "a finite number")
        out = out.mask(infinite)  # like a missing value, as in training
        if col.minimum is not None and col.maximum is not None:
            lo, hi = float(col.minimum), float(col.maximum)
            outside = (out < lo) | (out > hi)
            if col.policy.out_of_range == "reject":
                flag(outside, "outside the training range", f"a value in [{lo}, {hi}]")
            elif col.policy.out_of_range == "clip":
                out = out.clip(lo, hi)
    elif col.kind == "boolean":
        out, bad = _to_boolean(series)
        flag(bad, "not a boolean", "true/false, yes/no or 1/0")
    elif col.kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            out = _naive_utc(series)
        else:
            out = parse_datetime(series.astype(object).where(~missing), col.datetime_format)
            expected = f"a date in the format {col.datetime_format or 'ISO 8601'}"
            flag(out.isna() & ~missing, "not a date", expected)
    else:
        out = _to_text(series)
        if (
            col.kind == "categorical"
            and col.categories is not None
            and col.other_count == 0
            and col.policy.unknown_category == "reject"
        ):
            unknown = ~out.isin(list(col.categories)) & ~missing
            flag(unknown, "category not seen in training", f"one of {sorted(col.categories)[:10]}")
    if col.policy.nulls == "reject":
        flag(missing, "missing value", "a value (this column may not be empty)")
    return out, found, count


def _to_boolean(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    missing = series.isna()
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("boolean"), pd.Series(False, index=series.index)
    text = series.astype("str").str.strip().str.lower().str.removesuffix(".0")
    is_true = text.isin(list(_TRUE))
    is_false = text.isin(list(_FALSE))
    bad = ~(is_true | is_false) & ~missing
    out = pd.Series(pd.NA, index=series.index, dtype="boolean")
    out[is_true] = True
    out[is_false] = False
    return out, bad


def _to_text(series: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(series.dtype):
        # 3.0 read where 3 was trained must give the category "3", not "3.0"
        return series.map(_number_text, na_action="ignore").astype("str")
    return series.astype(object).where(series.notna()).astype("str")


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _sample(values: pd.Series, n: int, rng: np.random.Generator) -> pd.Series:
    if len(values) <= n:
        return values
    idx = np.sort(rng.choice(len(values), size=n, replace=False))
    return values.iloc[idx]


def _mean_tokens(values: pd.Series, rng: np.random.Generator, n: int) -> float:
    sample = _sample(values, n, rng)
    if len(sample) == 0:
        return 0.0
    return float(sample.astype(str).str.count(r"\S+").mean())


def _short(value: Any, width: int = 40) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _py(value: Any) -> Any:
    """A JSON-friendly Python scalar."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
