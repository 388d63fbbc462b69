"""Human views of a ProblemDefinition: a rich terminal layout, plain text and notebook HTML."""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

    from mlwright.data.profile import ProblemDefinition

_MAX_COLUMNS_SHOWN = 60
_SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan"}


def _size(n_bytes: int) -> str:
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def summary_rows(p: ProblemDefinition) -> list[tuple[str, str]]:
    rows = [
        ("source", f"{p.source.location} ({p.source.kind})"),
        ("target", p.target),
        ("task", f"{p.task} — {p.task_reason}"),
        (
            "metric",
            f"{p.metric} ({'higher' if p.greater_is_better else 'lower'} is better) — "
            f"{p.metric_reason}",
        ),
        ("size", f"{p.n_rows:,} rows × {p.n_columns:,} columns, {_size(p.memory_bytes)} in memory"),
        (
            "features",
            f"{p.n_features:,}: " + ", ".join(f"{n} {k}" for k, n in p.feature_kinds.items()),
        ),
    ]
    if p.class_balance is not None:
        rows.append(
            (
                "classes",
                ", ".join(f"{c.label!r}: {c.count:,} ({c.share:.1%})" for c in p.class_balance[:12])
                + (f", … {len(p.class_balance) - 12} more" if len(p.class_balance) > 12 else ""),
            )
        )
    if p.target_summary is not None:
        s = p.target_summary
        rows.append(
            (
                "target values",
                f"mean {s['mean']:.4g}, std {s['std']:.4g}, min {s['min']:.4g},"
                f" median {s['median']:.4g}, max {s['max']:.4g}",
            )
        )
    if p.suggested_time_column:
        rows.append(("time order", f"suggested --time-col {p.suggested_time_column}"))
    if p.suggested_group_column:
        rows.append(("groups", f"suggested --group-col {p.suggested_group_column}"))
    if p.dropped_columns:
        rows.append(("dropped by default", ", ".join(p.dropped_columns)))
    for note in p.notes:
        rows.append(("note", note))
    rows.append(("profiled in", f"{p.elapsed_s:.2f} s"))
    return rows


def column_note(p: ProblemDefinition, name: str, reason: str | None) -> str:
    if name in p.leaking_columns:
        return "likely target leak"
    return reason or ""


def profile_renderable(p: ProblemDefinition) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    # names and values from the data are Text, never console markup: a column named "[/]" is
    # a name, not a closing tag
    for key, value in summary_rows(p):
        head.add_row(Text(key), Text(value))

    cols = Table(title="Columns", title_justify="left", show_lines=False)
    for name in ("column", "kind", "role", "missing", "distinct", "note"):
        cols.add_column(
            name, overflow="fold", justify="right" if name in ("missing", "distinct") else "left"
        )
    for c in p.schema.columns[:_MAX_COLUMNS_SHOWN]:
        cols.add_row(
            Text(c.name),
            c.kind,
            c.role,
            f"{c.missing_rate:.1%}",
            f"{c.n_unique:,}",
            Text(column_note(p, c.name, c.role_reason)),
        )
    if len(p.schema.columns) > _MAX_COLUMNS_SHOWN:
        cols.caption = (
            f"… {len(p.schema.columns) - _MAX_COLUMNS_SHOWN} more columns (--json lists all)"
        )

    parts: list[Any] = [Text(f"Problem definition: {p.target}", style="bold underline"), head, cols]
    if p.warnings:
        warn = Table(title=f"Warnings ({len(p.warnings)})", title_justify="left", show_lines=True)
        warn.add_column("severity")
        warn.add_column("code")
        warn.add_column("finding", overflow="fold", ratio=3)
        warn.add_column("action", overflow="fold", ratio=3)
        for w in p.warnings:
            warn.add_row(
                Text(w.severity, style=_SEVERITY_STYLE[w.severity]),
                w.code,
                Text(w.message),
                Text(w.action),
            )
        parts.append(warn)
    else:
        parts.append(Text("No warnings.", style="green"))
    return Group(*parts)


def profile_text(p: ProblemDefinition, width: int = 110) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(
        profile_renderable(p)
    )
    return buffer.getvalue()


def profile_html(p: ProblemDefinition) -> str:
    e = html.escape
    head = "".join(
        f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(v)}</td></tr>"
        for k, v in summary_rows(p)
    )
    cols = "".join(
        f"<tr><td>{e(c.name)}</td><td>{c.kind}</td><td>{c.role}</td><td>{c.missing_rate:.1%}</td>"
        f"<td>{c.n_unique:,}</td><td>{e(column_note(p, c.name, c.role_reason))}</td></tr>"
        for c in p.schema.columns[:_MAX_COLUMNS_SHOWN]
    )
    more = len(p.schema.columns) - _MAX_COLUMNS_SHOWN
    if more > 0:
        cols += f"<tr><td colspan='6'>… {more} more columns</td></tr>"
    colour = {"high": "#b00020", "medium": "#a15c00", "low": "#00677f"}
    warns = (
        "".join(
            f"<tr><td style='color:{colour[w.severity]};font-weight:bold'>{w.severity}</td>"
            f"<td><code>{w.code}</code></td><td>{e(w.message)}</td><td>{e(w.action)}</td></tr>"
            for w in p.warnings
        )
        or "<tr><td colspan='4'>No warnings.</td></tr>"
    )
    return (
        f"<div class='mlwright-profile'><h3>Problem definition: {e(p.target)}</h3>"
        f"<table>{head}</table>"
        "<h4>Warnings</h4><table><tr><th>severity</th><th>code</th><th>finding</th>"
        f"<th>action</th></tr>{warns}</table>"
        "<h4>Columns</h4><table><tr><th>column</th><th>kind</th><th>role</th><th>missing</th>"
        f"<th>distinct</th><th>note</th></tr>{cols}</table></div>"
    )
