"""Retraining a registered model on new data (``mlwright retrain``, ``mw.retrain`` and the
autopilot's retraining step).

New rows come from files or SQL, from the serving store (the predictions that received a true
label or value as feedback, with the features exactly as they were sent), or both. By default
the parent's configurations are refit on them without a search (:mod:`mlwright.train.refit`):
seconds, and the same model for the same rows. ``search=True`` runs a budgeted search instead.
The new version is tracked and registered like any other (as ``challenger`` while a champion
exists), and its recipe, its MLflow run, its registry version and its report record its lineage:
the parent version, each data source with its rows and digest, the reason and the evidence, and
the parent's score on the new rows.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlwright.data.io import is_sql_url, read_table
from mlwright.data.sql import redact
from mlwright.errors import ConfigError, DataError, MlwrightError
from mlwright.package.recipe import LineageRecord
from mlwright.package.store import sha256
from mlwright.store.feedback import labelled_inputs

if TYPE_CHECKING:
    from mlwright.package.model import Model

Event = Callable[[str, Any], None]  # (kind, payload), as training reports its progress


@dataclass(frozen=True)
class StoreSource:
    """The serving store's labelled predictions of the model, made in [``since``, ``until``)."""

    path: Path
    min_labels: int = 100
    since: float | None = None
    until: float | None = None


def retrain(
    model: str | Path,
    *,
    data: Sequence[Any] = (),
    sql: str | None = None,
    from_store: StoreSource | None = None,
    search: bool = False,
    time_budget: float | None = None,
    reason: str = "",
    trigger: dict[str, Any] | None = None,
    rollout: str | None = None,
    out: str | Path | None = None,
    tracker: Sequence[str] | None = None,
    on_event: Event | None = None,
    default_out: Path | None = None,
) -> Model:
    """Retrain ``model`` (a registry reference or a package folder) on new rows: its
    configurations refit (``search=False``), or a search within ``time_budget`` seconds."""
    from mlwright.package.loading import load, tabular
    from mlwright.track.registry import resolve
    from mlwright.train.refit import Refit, retrain_options
    from mlwright.train.runner import run_training

    if search and time_budget is None:
        raise ConfigError("a retraining search needs a time budget", fix="pass --time-budget S")
    if not search and time_budget is not None:
        raise ConfigError(
            "--time-budget applies to a search; a refit has no search to budget",
            fix="pass --search with --time-budget, or drop --time-budget",
        )
    if not data and from_store is None:
        raise ConfigError(
            "no new data to retrain on", fix="pass --data FILE, --from-store STORE, or both"
        )
    emit = on_event or (lambda kind, payload: None)
    emit("step", f"loading {model}")
    parent = tabular(load(model, resolve=resolve), "retraining")
    registry = parent.registry or {}
    frame, sources, unseen = new_rows(parent, data, sql, from_store)
    emit("decision", f"retraining on {len(frame):,} new rows: " + _describe(sources))
    metric = str(parent.recipe.plan.get("metric") or "")
    lineage = LineageRecord(
        parent={
            "name": registry.get("name") or parent.name,
            "version": registry.get("version"),
            "ref": str(model),
            "cv": {"metric": parent.recipe.cv.metric, "mean": parent.recipe.cv.mean},
        },
        mode="search" if search else "refit",
        reason=reason or "retrained on request",
        trigger=trigger,
        rollout=rollout,
        sources=sources,
        parent_on_new_data=_parent_score(parent, unseen, metric),
    )
    refit = Refit.of(parent, lineage)
    overrides = {
        "out": None if out is None else str(out),
        "tracker": tuple(tracker) if tracker is not None else None,
        "time_budget": time_budget,
    }
    options = retrain_options(parent, overrides, refit)
    return run_training(frame, options, on_event=on_event, default_out=default_out, refit=refit)


def new_rows(
    parent: Model,
    data: Sequence[Any],
    sql: str | None,
    from_store: StoreSource | None,
) -> tuple[pd.DataFrame, list[dict[str, Any]], pd.DataFrame]:
    """The new rows from every source, in the parent's columns; each source's record; and the
    rows the parent never trained on (all but those of its own training file)."""
    target = parent.schema.target
    assert target is not None
    features = [c.name for c in parent.schema.features]
    # a grouped or time-ordered split needs its column too, when it is not a feature
    options = parent.recipe.options
    split_by = [
        c for c in (options.get("group_col"), options.get("time_col")) if c and c not in features
    ]
    columns = [*features, target, *split_by]
    frames: list[pd.DataFrame] = []
    sources: list[dict[str, Any]] = []
    if sql is not None and sum(is_sql_url(d) for d in data) != 1:
        raise ConfigError("--sql needs exactly one database URL among --data", fix="pass one")
    for item in data:
        query = sql if is_sql_url(item) else None
        frame, info = read_table(item, sql=query, decimal=parent.decimal_mark)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(
                f"{info.location}: no column(s) {missing}, which the model {parent.name!r} takes",
                fix="retrain on rows with every feature column of the served model and the target",
            )
        frame = frame[frame[target].notna()]
        frames.append(frame)
        digest = sha256(Path(info.location)) if info.kind in ("csv", "parquet") else None
        sources.append(
            {
                "kind": info.kind,
                "location": info.location if info.kind != "sql" else redact(info.location),
                "rows": len(frame),
                "digest": digest or frame_digest(frame, columns),
            }
        )
    if from_store is not None:
        if split_by:
            raise DataError(
                f"the model {parent.name!r} was trained with a split by {split_by}, which the "
                "served requests do not carry, so its predictions cannot be retrained on",
                fix="retrain from files that hold those columns (--data)",
            )
        frame, record = store_rows(parent, from_store)
        frames.append(frame)
        sources.append(record)
    own = _own_training_file(parent)
    unseen = [
        f.loc[:, columns]
        for f, source in zip(frames, sources, strict=True)
        if own is None or not _same_file(str(source.get("location")), own)
    ]
    combined = pd.concat([f.loc[:, columns] for f in frames], ignore_index=True)
    rest = pd.concat(unseen, ignore_index=True) if unseen else combined.iloc[:0]
    return combined, sources, rest


def _own_training_file(parent: Model) -> str | None:
    source = parent.recipe.data.source
    return str(source.get("location")) if source.get("kind") in ("csv", "parquet") else None


def _same_file(location: str, other: str) -> bool:
    try:
        return Path(location).resolve() == Path(other).resolve()
    except OSError:
        return False


def store_rows(parent: Model, source: StoreSource) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The served predictions that received a true label or value, as rows of features and
    target; refused when fewer than ``source.min_labels``."""
    name = (parent.registry or {}).get("name") or parent.name
    target = parent.schema.target
    assert target is not None
    served, rows = labelled_inputs(source.path, model=name, since=source.since, until=source.until)
    if len(rows) < source.min_labels:
        raise DataError(
            f"the serving store {source.path} has {len(rows):,} labelled prediction(s) of "
            f"{name!r} in the window (of {served:,} served); at least {source.min_labels:,} "
            "are needed",
            fix="send true labels to POST /v1/feedback, widen the window, or lower the minimum",
        )
    features = [c.name for c in parent.schema.features]
    kinds = {c.name: c.kind for c in parent.schema.features}
    records = [
        {**{f: inputs.get(f) for f in features}, target: value} for *_, inputs, _, value in rows
    ]
    frame = pd.DataFrame.from_records(records, columns=[*features, target])
    for name in features:  # as the server read them: "0.5" sent for a number is the number
        if kinds[name] in ("numeric", "integer"):
            frame[name] = _numbers(frame[name], f"feature {name!r}", source.path)
    if parent.classes is not None:  # labels arrive as JSON: "1" and 1 name the same class
        by_text = {str(c): c for c in parent.classes}
        unknown = sorted({str(v) for v in frame[target]} - set(by_text))
        if unknown:
            raise DataError(
                f"feedback in {source.path} names label(s) {unknown[:5]} that the model "
                f"{name!r} does not predict (its classes: {sorted(by_text)})",
                fix="correct the feedback, or train a new model with `mlwright train`",
            )
        frame[target] = [by_text[str(v)] for v in frame[target]]
    else:
        frame[target] = _numbers(frame[target], "the feedback's values", source.path)
    record = {
        "kind": "store",
        "location": str(source.path),
        "since": source.since,
        "until": source.until if source.until is not None else time.time(),
        "rows": len(frame),
        "predictions": served,
        "digest": frame_digest(frame, [*features, target]),
    }
    return frame, record


def _numbers(values: pd.Series, what: str, store: Path) -> pd.Series:
    """``values`` as numbers; any that is not one is named (the server refuses such input, so
    the store was written by something else)."""
    out = pd.to_numeric(values, errors="coerce")
    bad = values[out.isna() & values.notna()]
    if len(bad):
        raise DataError(
            f"{store}: {what} holds {len(bad):,} value(s) that are not numbers, e.g. "
            f"{bad.iloc[0]!r}",
            fix="retrain from files instead (--data), or remove those rows from the store",
        )
    return out


def frame_digest(frame: pd.DataFrame, columns: list[str]) -> str:
    """SHA-256 of the rows' values, column by column in ``columns``' order."""
    hashed = pd.util.hash_pandas_object(frame.loc[:, columns], index=False)
    h = hashlib.sha256(",".join(columns).encode())
    h.update(hashed.to_numpy().tobytes())
    return h.hexdigest()


def _parent_score(parent: Model, frame: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    """The parent's score on the new rows it never trained on: how much it has aged."""
    if frame.empty:
        return None
    try:
        scores = parent.evaluate(frame)
    except (MlwrightError, ValueError):  # e.g. a metric undefined on these rows (one class)
        return None
    if metric not in scores:
        return None
    return {"metric": metric, "value": float(scores[metric]), "rows": len(frame)}


def _describe(sources: list[dict[str, Any]]) -> str:
    return "; ".join(f"{s['rows']:,} from {s['kind']} {s['location']}" for s in sources)
