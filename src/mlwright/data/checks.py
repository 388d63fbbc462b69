"""Data checks that become the profile's warnings.

Each check looks at the frame and its inferred schema and returns :class:`Finding` objects with a
stable ``code``, the columns involved, the evidence (numbers a reader can verify) and the action
mlwright suggests or will take. The codes are part of ``mlwright profile --json``'s contract.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlwright.config import ProfileSettings
from mlwright.data.leakage import LeakScore
from mlwright.data.schema import ID_NAME, TableSchema, parse_datetime
from mlwright.data.tasks import Task

Severity = Literal["high", "medium", "low"]
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}
_SCREEN_ROWS = 10_000  # rows sampled to rule a column out before an exact full-column pass


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    action: str
    columns: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["columns"] = list(self.columns)
        return d


def leakage_findings(
    scores: list[LeakScore], task: Task, n_rows: int, settings: ProfileSettings
) -> list[Finding]:
    found = []
    what = "R²" if task == "regression" else "accuracy"
    for s in scores:
        if s.forward_leak(settings):
            baseline = (
                "" if task == "regression" else f" (majority-class baseline {s.baseline:.3f})"
            )
            found.append(
                Finding(
                    "target_leakage",
                    "high",
                    f"{s.column!r} alone predicts the target with out-of-fold {what} "
                    f"{s.forward:.3f}{baseline}",
                    "check that this value is known before the outcome; if not, it leaks the "
                    f"target: drop it (--drop-col {s.column}). It is dropped by default in "
                    "training "
                    f"unless you pass --keep-col {s.column}",
                    (s.column,),
                    {
                        "direction": "feature_predicts_target",
                        "score": s.forward,
                        "baseline": s.baseline,
                        "metric": what,
                        "rows_used": n_rows,
                    },
                )
            )
        elif s.reverse_leak(settings):
            found.append(
                Finding(
                    "target_leakage",
                    "high",
                    f"{s.column!r} is almost a deterministic function of the target: the target "
                    f"alone predicts it with out-of-fold score {s.reverse:.3f} (baseline "
                    f"{s.reverse_baseline:.3f})",
                    "a column derived from the target (a recoding or bucketing of it) leaks the "
                    f"answer: drop it (--drop-col {s.column}); it is dropped by default unless "
                    f"you pass --keep-col {s.column}",
                    (s.column,),
                    {
                        "direction": "target_determines_feature",
                        "score": s.reverse,
                        "baseline": s.reverse_baseline,
                        "rows_used": n_rows,
                    },
                )
            )
    return found


def column_findings(
    frame: pd.DataFrame, schema: TableSchema, settings: ProfileSettings
) -> list[Finding]:
    found: list[Finding] = []
    n = schema.n_rows
    for col in schema.columns:
        if col.role == "target":
            continue
        if col.role == "id":
            found.append(
                Finding(
                    "id_column",
                    "medium",
                    f"{col.name!r} looks like an identifier: {col.role_reason}",
                    "identifiers carry no signal that generalises; it is dropped by default "
                    f"(--keep-col {col.name} keeps it)",
                    (col.name,),
                    {
                        "n_unique": col.n_unique,
                        "unique_ratio": _ratio(col.n_unique, n - col.n_missing),
                    },
                )
            )
        elif col.role == "constant" and col.n_missing < n:
            found.append(
                Finding(
                    "constant_column",
                    "low",
                    f"{col.name!r} has {col.role_reason}",
                    "it carries no information and is dropped",
                    (col.name,),
                    {"n_unique": col.n_unique, "missing_rate": col.missing_rate},
                )
            )
        if col.missing_rate >= settings.heavy_missing:
            everything = col.n_missing == n
            found.append(
                Finding(
                    "heavy_missing",
                    "medium" if everything else "low",
                    f"{col.name!r} is {'entirely' if everything else f'{col.missing_rate:.0%}'} "
                    "missing",
                    "it is dropped"
                    if everything
                    else "models see missingness as its own signal; check that values are missing "
                    "for a reason that also holds at prediction time",
                    (col.name,),
                    {"missing_rate": col.missing_rate, "n_missing": col.n_missing},
                )
            )
        if col.role != "feature":
            continue
        if col.categories and col.kind in ("categorical", "boolean"):
            top_share = max(col.categories.values()) / max(1, n - col.n_missing)
            if col.n_unique > 1 and top_share >= settings.near_constant_share:
                top = max(col.categories, key=lambda k: col.categories[k] if col.categories else 0)
                found.append(_near_constant(col.name, top, top_share))
        elif col.kind in ("numeric", "integer") and col.n_unique > 1:
            top_share = _top_share(frame[col.name])
            if top_share >= settings.near_constant_share:
                found.append(_near_constant(col.name, _mode(frame[col.name]), top_share))
        if col.kind == "categorical" and col.n_unique > settings.high_cardinality:
            found.append(
                Finding(
                    "high_cardinality",
                    "low",
                    f"{col.name!r} has {col.n_unique} distinct categories",
                    "it is encoded with out-of-fold target or frequency encoding for the model "
                    "families that need it; rare categories are grouped",
                    (col.name,),
                    {
                        "n_unique": col.n_unique,
                        "unique_ratio": _ratio(col.n_unique, n - col.n_missing),
                    },
                )
            )
        if col.kind == "categorical":
            mixed = _mixed_numeric(frame[col.name])
            if mixed is not None:
                found.append(mixed)
        if col.kind in ("integer", "categorical") and ID_NAME.search(col.name):
            per_group = (n - col.n_missing) / max(col.n_unique, 1)
            if col.n_unique >= 5 and per_group >= 2:
                found.append(
                    Finding(
                        "group_column",
                        "medium",
                        f"{col.name!r} identifies groups of rows ({col.n_unique} groups, "
                        f"{per_group:.1f} rows each on average)",
                        "rows of one group are not independent: validate with a grouped split "
                        f"(--group-col {col.name}) so that no group is in both training and "
                        "validation",
                        (col.name,),
                        {"n_groups": col.n_unique, "mean_rows_per_group": round(per_group, 3)},
                    )
                )
    return found


def time_findings(frame: pd.DataFrame, schema: TableSchema) -> tuple[list[Finding], str | None]:
    """Datetime features, and the one suggested for a time-ordered split."""
    found = []
    best: str | None = None
    best_sorted = False
    for col in schema.features:
        if col.kind != "datetime":
            continue
        values = frame[col.name]
        if not pd.api.types.is_datetime64_any_dtype(values.dtype):
            values = parse_datetime(values.astype(str).where(values.notna()), col.datetime_format)
        present = values.dropna()
        sorted_rows = bool(present.is_monotonic_increasing)
        if best is None or (sorted_rows and not best_sorted):
            best, best_sorted = col.name, sorted_rows
        found.append(
            Finding(
                "time_order",
                "medium",
                f"{col.name!r} holds dates from {col.minimum} to {col.maximum}"
                + (" and the rows are sorted by it" if sorted_rows else ""),
                "if you will predict the future from the past, random cross-validation is "
                f"optimistic: validate in time order (--time-col {col.name}); the column is also "
                "turned into calendar and elapsed-time features",
                (col.name,),
                {
                    "minimum": col.minimum,
                    "maximum": col.maximum,
                    "rows_sorted": sorted_rows,
                    "n_unique": col.n_unique,
                },
            )
        )
    return found, best


def duplicate_findings(frame: pd.DataFrame, schema: TableSchema) -> list[Finding]:
    target = schema.target
    assert target is not None
    ignored = [c.name for c in schema.columns if c.role == "id"]
    features = [c.name for c in schema.columns if c.role != "target" and c.name not in ignored]
    if not features:
        return []
    h_feat = _row_hash(frame[features])
    h_target = _row_hash(frame[[target]])
    h_all = h_feat * np.uint64(1_000_003) ^ h_target
    found = []
    n_exact = int(pd.Series(h_all).duplicated().sum())
    where = f" (ignoring identifier column(s) {ignored})" if ignored else ""
    if n_exact:
        found.append(
            Finding(
                "duplicate_rows",
                "medium" if n_exact / len(frame) >= 0.01 else "low",
                f"{n_exact} row(s) repeat an earlier row exactly{where}",
                "duplicates can land in both training and validation and inflate scores; "
                "remove them unless repeats are real events",
                (),
                {
                    "n_duplicate_rows": n_exact,
                    "share": _ratio(n_exact, len(frame)),
                    "ignored_columns": ignored,
                },
            )
        )
    dup = pd.Series(h_feat).duplicated(keep=False).to_numpy()
    if dup.any():
        sub = pd.DataFrame({"h": h_feat[dup], "y": h_target[dup]})
        per_group = sub.groupby("h")["y"].nunique()
        conflicting = per_group[per_group > 1]
        if len(conflicting):
            n_rows = int(sub["h"].isin(conflicting.index).sum())
            found.append(
                Finding(
                    "conflicting_duplicates",
                    "medium",
                    f"{n_rows} row(s) in {len(conflicting)} group(s) have identical features but "
                    f"different targets{where}",
                    "no model can fit these exactly: check for label noise or a missing feature "
                    "that tells them apart",
                    (),
                    {"n_rows": n_rows, "n_groups": len(conflicting), "ignored_columns": ignored},
                )
            )
    return found


def _row_hash(frame: pd.DataFrame) -> np.ndarray:
    try:
        hashed = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:  # unhashable cells (lists, dicts): hash their text
        hashed = pd.util.hash_pandas_object(frame.astype(str), index=False)
    return hashed.to_numpy(dtype="uint64")


def _near_constant(name: str, top: Any, share: float) -> Finding:
    return Finding(
        "near_constant_column",
        "low",
        f"{share:.1%} of {name!r} is the single value {top!r}",
        "it carries little information; kept, but check that the rare values are not errors",
        (name,),
        {"top_value": top, "top_share": round(share, 6)},
    )


def _top_share(values: pd.Series) -> float:
    present = values.dropna()
    if len(present) == 0:
        return 0.0
    if len(present) > _SCREEN_ROWS:
        # a value holding ≥ 99% of the column holds far more than half of any sample of it
        screen = present.sample(_SCREEN_ROWS, random_state=0)
        if screen.value_counts().iloc[0] / _SCREEN_ROWS < 0.5:
            return float(screen.value_counts().iloc[0] / _SCREEN_ROWS)
    return float(present.value_counts().iloc[0] / len(present))


def _mode(values: pd.Series) -> Any:
    top = values.dropna().value_counts().index[0]
    return top.item() if isinstance(top, np.generic) else top


def _mixed_numeric(values: pd.Series) -> Finding | None:
    """A text column whose values are nearly all numbers: a few stray tokens block parsing."""
    present = values.dropna().astype(str).str.strip()
    if len(present) == 0:
        return None
    if len(present) > _SCREEN_ROWS:
        screen = pd.to_numeric(present.sample(_SCREEN_ROWS, random_state=0), errors="coerce")
        if screen.notna().mean() < 0.5:
            return None
    parsed = pd.to_numeric(present, errors="coerce")
    bad = present[parsed.isna()]
    share_numeric = 1 - len(bad) / len(present)
    if share_numeric < 0.9 or len(bad) == 0:
        return None
    tokens = bad.value_counts()
    examples = [str(t) for t in tokens.index[:5]]
    name = str(values.name)
    return Finding(
        "mixed_types",
        "medium",
        f"{name!r} is {share_numeric:.1%} numbers, but {len(bad)} value(s) are not "
        f"(e.g. {', '.join(repr(e) for e in examples)}), so it is read as text",
        "if these tokens mean 'missing', convert them to empty values before training; "
        "otherwise fix the values",
        (name,),
        {"share_numeric": round(share_numeric, 6), "n_non_numeric": len(bad), "examples": examples},
    )


def _ratio(a: int, b: int) -> float:
    return round(a / b, 6) if b else 0.0
