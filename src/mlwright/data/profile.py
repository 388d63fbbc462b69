"""Understand the problem: from a table and a target to a :class:`ProblemDefinition`.

The definition says which task this is and why, which metric will be optimised and why, what the
data looks like, and every problem found in it with evidence and a suggested action. Its JSON form
(``to_dict``) is a documented contract (``docs/profile.md``); later stages read it to plan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from mlwright import __version__
from mlwright.config import ProfileSettings
from mlwright.data.checks import (
    SEVERITY_ORDER,
    Finding,
    column_findings,
    duplicate_findings,
    leakage_findings,
    time_findings,
)
from mlwright.data.io import SourceInfo, read_table, require_column
from mlwright.data.leakage import leakage_scores
from mlwright.data.schema import ColumnSchema, TableSchema, infer_schema
from mlwright.data.tasks import DEFAULT_METRIC, METRICS, TASKS, Task, metrics_for
from mlwright.errors import ConfigError, TargetError

PROFILE_FORMAT = 1


@dataclass(frozen=True)
class ClassCount:
    label: Any
    count: int
    share: float


@dataclass(frozen=True)
class ProblemDefinition:
    """What the problem is, as mlwright understood it. Render it, save it, plan from it."""

    target: str
    task: Task
    task_reason: str
    metric: str
    metric_reason: str
    greater_is_better: bool
    n_rows: int
    n_columns: int
    n_features: int
    memory_bytes: int
    n_target_missing: int
    classes: tuple[Any, ...] | None
    positive_class: Any
    class_balance: tuple[ClassCount, ...] | None
    target_summary: dict[str, float] | None
    feature_kinds: dict[str, int]
    suggested_time_column: str | None
    suggested_group_column: str | None
    dropped_columns: tuple[str, ...]
    warnings: tuple[Finding, ...]
    leakage: dict[str, Any]
    schema: TableSchema
    source: SourceInfo
    settings: ProfileSettings
    elapsed_s: float
    notes: tuple[str, ...] = field(default=())

    # --- views ----------------------------------------------------------------------------------
    def warnings_with(self, code: str) -> list[Finding]:
        return [w for w in self.warnings if w.code == code]

    @property
    def leaking_columns(self) -> list[str]:
        return [c for w in self.warnings_with("target_leakage") for c in w.columns]

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile_format": PROFILE_FORMAT,
            "mlwright_version": __version__,
            "source": self.source.to_dict(),
            "target": self.target,
            "task": self.task,
            "task_reason": self.task_reason,
            "metric": self.metric,
            "metric_reason": self.metric_reason,
            "greater_is_better": self.greater_is_better,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "n_features": self.n_features,
            "memory_bytes": self.memory_bytes,
            "n_target_missing": self.n_target_missing,
            "classes": None if self.classes is None else list(self.classes),
            "positive_class": self.positive_class,
            "class_balance": None
            if self.class_balance is None
            else [
                {"label": c.label, "count": c.count, "share": c.share} for c in self.class_balance
            ],
            "target_summary": self.target_summary,
            "feature_kinds": self.feature_kinds,
            "suggested_time_column": self.suggested_time_column,
            "suggested_group_column": self.suggested_group_column,
            "dropped_columns": list(self.dropped_columns),
            "warnings": [w.to_dict() for w in self.warnings],
            "leakage": self.leakage,
            "notes": list(self.notes),
            "schema": self.schema.to_dict(),
            "settings": self.settings.model_dump(),
            "elapsed_s": self.elapsed_s,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, default=str)

    def __repr__(self) -> str:
        from mlwright.data.render import profile_text

        return profile_text(self)

    def _repr_html_(self) -> str:
        from mlwright.data.render import profile_html

        return profile_html(self)

    def __rich__(self) -> Any:
        from mlwright.data.render import profile_renderable

        return profile_renderable(self)


def profile(
    data: Any,
    target: str,
    *,
    sql: str | None = None,
    metric: str | None = None,
    task: str | None = None,
    settings: ProfileSettings | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ProblemDefinition:
    """Profile ``data`` (path, SQLAlchemy URL with ``sql``, DataFrame or Arrow table) for
    predicting ``target``. ``on_step`` is called with a short description as each step starts."""
    started = time.perf_counter()
    step = on_step or (lambda _: None)
    step("reading the data")
    frame, source = read_table(data, sql=sql)
    return profile_frame(
        frame,
        source,
        target,
        metric=metric,
        task=task,
        settings=settings,
        on_step=on_step,
        started=started,
    )


def profile_frame(
    frame: pd.DataFrame,
    source: SourceInfo,
    target: str,
    *,
    metric: str | None = None,
    task: str | None = None,
    settings: ProfileSettings | None = None,
    on_step: Callable[[str], None] | None = None,
    started: float | None = None,
) -> ProblemDefinition:
    """Profile a frame that is already in memory (``source`` says where it came from)."""
    started = time.perf_counter() if started is None else started
    step = on_step or (lambda _: None)
    cfg = settings or ProfileSettings()
    if task is not None and task not in TASKS:
        raise ConfigError(f"unknown task {task!r}", fix=f"use one of {', '.join(TASKS)}")
    require_column(frame, target, "target")
    step(f"inferring the schema of {frame.shape[1]:,} columns")
    schema = infer_schema(frame, target=target, settings=cfg)
    y = frame[target]
    n_missing = int(y.isna().sum())
    if n_missing == len(frame):
        raise TargetError(
            f"every value of the target {target!r} is missing",
            fix="check the target column name, or fill in the target values",
        )
    resolved_task, task_reason = infer_task(schema[target], y, task, cfg)
    resolved_metric, metric_reason = _choose_metric(resolved_task, metric)
    warnings: list[Finding] = []
    notes: list[str] = []
    classes = positive = balance = summary = None
    if resolved_task == "regression":
        summary, target_warnings = _regression_target(target, y)
        warnings += target_warnings
    else:
        classes, positive, balance = _class_balance(y, resolved_task)
        schema = replace(schema, classes=classes)
        warnings += _class_findings(target, balance, len(frame) - n_missing, cfg)
    if n_missing:
        warnings.append(
            Finding(
                "target_missing",
                "medium",
                f"{n_missing} row(s) ({n_missing / len(frame):.1%}) have no target value",
                "they are left out of training and evaluation; predict them with the trained "
                "model if you need values for them",
                (target,),
                {"n_missing": n_missing},
            )
        )
    step("checking columns, time order and duplicates")
    warnings += column_findings(frame, schema, cfg)
    timing, time_col = time_findings(frame, schema)
    warnings += timing
    warnings += duplicate_findings(frame, schema)
    step("checking every feature for target leakage")
    scores, leak_rows = leakage_scores(frame, schema, resolved_task, cfg)
    warnings += leakage_findings(scores, resolved_task, leak_rows, cfg)
    if leak_rows < len(frame) - n_missing:
        notes.append(
            f"the leakage check used a seeded sample of {leak_rows:,} of "
            f"{len(frame) - n_missing:,} labelled rows"
        )
    n_usable = len(frame) - n_missing
    features = schema.features
    warnings += _size_findings(n_usable, len(features), cfg)
    if source.encoding not in (None, "utf-8", "utf-8-sig"):
        notes.append(f"the file was decoded as {source.encoding} (it is not UTF-8)")
    if source.decimal == ",":
        notes.append(
            "numbers were read with a decimal comma (1,5 and 1.234,5), as the file writes them; "
            "a model trained on it reads new CSV files that show no decimal mark the same way"
        )
    groups = [c for w in warnings if w.code == "group_column" for c in w.columns]
    dropped = tuple(
        dict.fromkeys(
            [c.name for c in schema.columns if c.role in ("id", "constant")]
            + [c for w in warnings if w.code == "target_leakage" for c in w.columns]
        )
    )
    warnings.sort(key=lambda w: (SEVERITY_ORDER[w.severity], w.code))
    return ProblemDefinition(
        target=target,
        task=resolved_task,
        task_reason=task_reason,
        metric=resolved_metric,
        metric_reason=metric_reason,
        greater_is_better=METRICS[resolved_metric].greater_is_better,
        n_rows=len(frame),
        n_columns=frame.shape[1],
        n_features=len(features),
        memory_bytes=int(frame.memory_usage(deep=True).sum()),
        n_target_missing=n_missing,
        classes=classes,
        positive_class=positive,
        class_balance=balance,
        target_summary=summary,
        feature_kinds=_kind_counts(features),
        suggested_time_column=time_col,
        suggested_group_column=groups[0] if groups else None,
        dropped_columns=dropped,
        warnings=tuple(warnings),
        leakage={
            "rows_used": leak_rows,
            "scores": {
                s.column: {"forward": s.forward, "baseline": s.baseline, "reverse": s.reverse}
                for s in sorted(scores, key=lambda s: -s.forward)
            },
        },
        schema=schema,
        source=source,
        settings=cfg,
        elapsed_s=round(time.perf_counter() - started, 3),
        notes=tuple(notes),
    )


def infer_task(
    col: ColumnSchema, y: pd.Series, requested: str | None, settings: ProfileSettings
) -> tuple[Task, str]:
    """The task for target column ``col``, with the reason in words."""
    present = y.dropna()
    k = int(present.nunique())
    if k < 2:
        raise TargetError(
            f"the target {col.name!r} has a single value ({present.iloc[0]!r}); there is "
            "nothing to learn",
            fix="check the target column, or collect rows with other outcomes",
        )
    numeric = col.kind in ("numeric", "integer")
    if requested is not None:
        if requested == "regression" and not numeric:
            raise TargetError(
                f"--task regression needs a numeric target, but {col.name!r} is {col.kind}",
                fix="pick binary or multiclass, or convert the target to numbers",
            )
        if requested == "binary" and k != 2:
            raise TargetError(
                f"--task binary needs exactly 2 target values, but {col.name!r} has {k}",
                fix="use --task multiclass, or recode the target into two classes",
            )
        return requested, f"set by the user (the target has {k} distinct values)"  # type: ignore[return-value]
    if col.kind == "datetime":
        raise TargetError(
            f"the target {col.name!r} holds dates; mlwright predicts numbers and classes",
            fix="predict a duration or a count derived from the date instead",
        )
    if col.kind == "boolean":
        return "binary", "boolean target → binary"
    if not numeric:
        task: Task = "binary" if k == 2 else "multiclass"
        return task, f"{col.kind} target with {k} distinct values → {task}"
    if col.kind == "numeric":
        return "regression", "numeric target with non-integer values → regression"
    if k == 2:
        return "binary", "integer target with 2 distinct values → binary"
    if k <= settings.max_integer_classes:
        return (
            "multiclass",
            f"integer target with {k} distinct values → multiclass (if it is a count or an "
            "ordered quantity, pass --task regression)",
        )
    return (
        "regression",
        f"integer target with {k} distinct values (more than {settings.max_integer_classes}) → "
        "regression",
    )


def _choose_metric(task: Task, requested: str | None) -> tuple[str, str]:
    allowed = metrics_for(task)
    if requested is None:
        name = DEFAULT_METRIC[task]
        return name, f"default for {task}: {METRICS[name].why}"
    if requested not in allowed:
        raise ConfigError(
            f"metric {requested!r} does not fit a {task} task",
            fix=f"use one of {', '.join(allowed)}",
        )
    return requested, f"set by the user: {METRICS[requested].why}"


def _class_balance(y: pd.Series, task: Task) -> tuple[tuple[Any, ...], Any, tuple[ClassCount, ...]]:
    counts = y.dropna().value_counts()
    labels = sorted(counts.index, key=_sort_key)
    total = int(counts.sum())
    balance = tuple(
        ClassCount(_native(lab), int(counts[lab]), round(int(counts[lab]) / total, 6))
        for lab in labels
    )
    classes = tuple(_native(lab) for lab in labels)
    positive = classes[-1] if task == "binary" else None
    return classes, positive, balance


def _class_findings(
    target: str, balance: tuple[ClassCount, ...], n: int, settings: ProfileSettings
) -> list[Finding]:
    found = []
    tiny = [c for c in balance if c.count < settings.tiny_class_rows]
    if tiny:
        found.append(
            Finding(
                "tiny_classes",
                "high",
                f"{len(tiny)} class(es) have fewer than {settings.tiny_class_rows} rows: "
                + ", ".join(f"{c.label!r} ({c.count})" for c in tiny[:10]),
                "too few rows to validate or learn; collect more, merge them into a related "
                "class, or drop those rows",
                (target,),
                {"classes": {str(c.label): c.count for c in tiny}},
            )
        )
    largest = max(c.count for c in balance)
    smallest = min(balance, key=lambda c: c.count)
    if smallest.count / largest < settings.imbalance_ratio:
        found.append(
            Finding(
                "class_imbalance",
                "medium",
                f"the rarest class {smallest.label!r} has {smallest.count} rows against "
                f"{largest} for the most common ({smallest.count / largest:.1%})",
                "validation is stratified, class weights are used where the metric calls for "
                "them, and the decision threshold is tuned out of fold",
                (target,),
                {
                    "minority": smallest.label,
                    "minority_share": smallest.share,
                    "ratio": round(smallest.count / largest, 6),
                },
            )
        )
    if len(balance) > 2 and len(balance) > 0.5 * n:
        found.append(
            Finding(
                "many_classes",
                "high",
                f"the target has {len(balance)} classes for {n} rows",
                "most classes appear once or twice: check that the target is a label and not an "
                "identifier or a number",
                (target,),
                {"n_classes": len(balance)},
            )
        )
    return found


def _regression_target(target: str, y: pd.Series) -> tuple[dict[str, float], list[Finding]]:
    from scipy.stats import skew as scipy_skew

    values = np.asarray(pd.to_numeric(y, errors="coerce"), dtype="float64")
    finite = values[np.isfinite(values)]
    found = []
    n_inf = int(np.isinf(values).sum())
    if n_inf:
        found.append(
            Finding(
                "target_invalid",
                "high",
                f"{n_inf} target value(s) are infinite",
                "they are left out of training; fix them at the source",
                (target,),
                {"n_infinite": n_inf},
            )
        )
    summary = {
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
        "min": float(finite.min()),
        "median": float(np.median(finite)),
        "max": float(finite.max()),
        "skew": float(scipy_skew(finite, bias=False)) if len(finite) > 2 else 0.0,
        "n_unique": int(np.unique(finite).size),
    }
    return {k: round(v, 6) for k, v in summary.items()}, found


def _size_findings(n_rows: int, n_features: int, settings: ProfileSettings) -> list[Finding]:
    found = []
    if n_rows < settings.min_rows:
        found.append(
            Finding(
                "too_few_rows",
                "high",
                f"only {n_rows} labelled row(s)",
                f"estimates from fewer than {settings.min_rows} rows are unreliable: collect more "
                "data; mlwright keeps models simple and says how uncertain its scores are",
                (),
                {"n_rows": n_rows, "minimum": settings.min_rows},
            )
        )
    if 0 < n_rows < n_features:
        found.append(
            Finding(
                "wide_data",
                "medium",
                f"more features ({n_features}) than labelled rows ({n_rows})",
                "expect overfitting: regularised linear models and strong feature selection fit "
                "such data best",
                (),
                {"n_rows": n_rows, "n_features": n_features},
            )
        )
    return found


def _kind_counts(features: list[ColumnSchema]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in features:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    return dict(sorted(counts.items()))


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, (bool, np.bool_)):
        return (0, int(value))
    if isinstance(value, (int, float, np.number)):
        return (1, float(value))
    return (2, str(value))
