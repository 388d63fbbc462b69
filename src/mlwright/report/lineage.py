"""The report's Lineage section, for a retrained model (``mlwright retrain`` or the
continuous-training loop): which version it retrains, how (its parent's configurations refit, or
a new search), why (the reason and the evidence that triggered it), on which data (each source
with its rows and digest), and how the parent scores on those new rows against this model's
cross-validated score on them.

Everything comes from the recipe's :class:`~mlwright.package.recipe.LineageRecord`; a model
without one has no such section.
"""

from __future__ import annotations

import json
from typing import Any

from mlwright.package.model import Model
from mlwright.package.recipe import LineageRecord
from mlwright.report.document import Section, code, plain, when
from mlwright.report.sections import fmt

DIGEST_CHARS = 12  # a source's digest as the report shows it (the recipe keeps all 64)
EVIDENCE_ROWS = 20  # the trigger's evidence, at most this many entries


def parent_name(lineage: LineageRecord) -> str:
    """``NAME/VERSION`` of the parent, or the reference it was loaded by."""
    parent = lineage.parent
    name, version = parent.get("name"), parent.get("version")
    if name and version:
        return f"{name}/{version}"
    return str(parent.get("ref") or name or "an earlier version")


def retrains_sentence(model: Model) -> str | None:
    """One sentence for the summary: which version this one retrains, and why."""
    lineage = model.recipe.lineage
    if lineage is None:
        return None
    reason = lineage.reason.strip().rstrip(".") or "it was asked to"
    rows = model.recipe.data.rows
    on = f" on {rows:,} new rows" if rows else " on new rows"
    how = (
        f"it refits that version's configurations{on}, with no search"
        if lineage.mode == "refit"
        else f"it was found by a new search{on}"
    )
    return f"This version retrains {code(parent_name(lineage))} because {plain(reason)}; {how}."


def lineage_section(model: Model) -> Section | None:
    """The section, right after the summary; None for a model trained from scratch."""
    lineage = model.recipe.lineage
    if lineage is None:
        return None
    s = Section("Lineage", "lineage", numbered=False)
    parent = lineage.parent
    ref = parent.get("ref")
    named = code(parent_name(lineage)) + (
        f" (loaded as {code(ref)})" if ref and ref != parent_name(lineage) else ""
    )
    how = (
        "**refit**: the configurations behind that version's final model were fitted again on "
        "the new data, cross-validated afresh, with no search"
        if lineage.mode == "refit"
        else "**search**: a new budgeted search on the new data, under that version's options"
    )
    s.p(f"This model retrains {named}. How: {how}.")
    if lineage.rollout:
        s.p(
            f"It was made by the continuous-training loop, in rollout {code(lineage.rollout)}: "
            "`mlwright monitor --html` shows that rollout's decisions."
        )
    s.h("Why")
    s.p(plain(lineage.reason) if lineage.reason else "No reason was recorded.")
    evidence = _flatten(lineage.trigger) if lineage.trigger else []
    s.table(
        ["evidence", "value"],
        [[code(k), plain(v)] for k, v in evidence[:EVIDENCE_ROWS]],
        caption="What triggered the retraining"
        + (
            f" (the first {EVIDENCE_ROWS} of {len(evidence)})"
            if len(evidence) > EVIDENCE_ROWS
            else ""
        ),
    )
    s.h("Data")
    s.table(
        ["source", "location", "rows", "digest (SHA-256)", "details"],
        [_source_row(source) for source in lineage.sources],
        caption="The new rows it was trained on",
    )
    if not lineage.sources:
        s.p("No data source was recorded.")
    s.h("The parent against this model")
    s.table(["model", "scored on", "metric", "score"], _scores(model, lineage))
    return s


def _source_row(source: dict[str, Any]) -> list[str]:
    digest = str(source.get("digest") or "")
    details = []
    if source.get("kind") == "store":
        details.append(
            f"predictions made {when(source.get('since'), 'the first')} – "
            f"{when(source.get('until'), 'now')}"
        )
        if isinstance(source.get("predictions"), int):
            details.append(f"{source['predictions']:,} served, those with feedback kept")
    rows = source.get("rows")
    return [
        plain(source.get("kind") or "?"),
        code(source.get("location") or "?"),
        f"{rows:,}" if isinstance(rows, int) else "?",
        code(digest[:DIGEST_CHARS]) + ("…" if len(digest) > DIGEST_CHARS else "")
        if digest
        else "—",
        plain("; ".join(details)) if details else "—",
    ]


def _scores(model: Model, lineage: LineageRecord) -> list[list[str]]:
    """The parent on its own training data (cross-validated), the parent on the new rows (which
    it never saw), and this model cross-validated on those rows."""
    parent = plain(parent_name(lineage))
    rows: list[list[str]] = []
    cv = lineage.parent.get("cv") or {}
    if cv.get("mean") is not None:
        rows.append(
            [
                parent,
                "its own training data (cross-validated)",
                plain(cv.get("metric") or "?"),
                fmt(cv["mean"]),
            ]
        )
    aged = lineage.parent_on_new_data
    if aged and aged.get("value") is not None:
        n = aged.get("rows")
        on = f"the {n:,} new rows (never trained on)" if isinstance(n, int) else "the new rows"
        rows.append([parent, on, plain(aged.get("metric") or "?"), fmt(aged["value"])])
    own = model.recipe.cv
    if own.mean is not None:
        rows.append(
            [
                "this model",
                _cv_rows(model),
                plain(own.metric or "?"),
                fmt(own.mean) + ("" if own.std is None else f" ± {fmt(own.std)}"),
            ]
        )
    return rows


def _cv_rows(model: Model) -> str:
    """The new rows this model was cross-validated on: all of them, or those left after its
    held-out test rows."""
    n, held_out = model.recipe.data.rows, model.recipe.test_rows
    if not n:
        return "the new rows (cross-validated)"
    if held_out:
        return f"{n - held_out:,} of the {n:,} new rows (cross-validated; {held_out:,} held out)"
    return f"the {n:,} new rows (cross-validated)"


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested evidence as (dotted key, short value) pairs."""
    if isinstance(value, dict) and value:
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return [(prefix or "value", text if len(text) <= 80 else text[:77] + "…")]


def rollout_section(decisions: list[dict[str, Any]]) -> Section | None:
    """What the continuous-training loop decided about this version after it was trained
    (shadow, A/B, approval, promotion or rejection, probation, rollback), oldest first, each
    with its reason: the report the loop writes into the version's MLflow run."""
    if not decisions:
        return None
    s = Section("Rollout", "rollout", numbered=False)
    last = decisions[-1]
    s.p(
        f"The continuous-training loop's decisions about this version, rollout "
        f"{code(last.get('rollout') or '?')}; the latest: **{plain(last.get('action'))}**."
    )
    s.table(
        ["when", "decision", "why"],
        [
            [when(d.get("ts"), "?"), plain(d.get("action") or "?"), plain(d.get("reason") or "")]
            for d in decisions
        ],
    )
    return s
