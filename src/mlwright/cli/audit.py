"""`mlwright audit`: the seed's anti-patterns in your own ML code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mlwright.cli.options import AuditFormat, Severity, examples

AUDIT_EXAMPLES = examples(
    "mlwright audit src/ notebooks/",
    "mlwright audit train.py --fail-on high -f sarif -o audit.sarif",
    "mlwright audit . --select MLW101 --ignore MLW108",
    "mlwright audit --list-rules",
)


def audit_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files and folders (.py, .ipynb).")
    ] = None,
    format: Annotated[
        AuditFormat | None, typer.Option("--format", "-f", help="Report format (default text).")
    ] = None,
    fail_on: Annotated[
        Severity | None,
        typer.Option(help="Exit 1 when a finding is this severe or more (default medium)."),
    ] = None,
    select: Annotated[
        list[str] | None, typer.Option(help="Only these rules (ids or names; repeatable).")
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option(help="Not these rules (ids or names; repeatable).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="pyproject.toml with [tool.mlwright.audit] (default: the nearest).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here, not stdout.")
    ] = None,
    list_rules: Annotated[bool, typer.Option("--list-rules", help="Print the rules.")] = False,
) -> None:
    """Find ML anti-patterns in Python files and notebooks without running them: unseeded
    randomness, no validation, leakage, no tracking, unclipped RNNs, hard-coded
    hyperparameters, silent failures, unversioned saves, inference without eval()."""
    from dataclasses import replace

    from rich.console import Console

    from mlwright.audit import audit, load_settings, settings_from
    from mlwright.audit import output as render
    from mlwright.audit.core import RULES

    if list_rules:
        for info in sorted(RULES.values(), key=lambda r: r.id):
            typer.echo(f"{info.id}  {info.name:<28} {info.severity:<7} {info.summary}")
        return
    if not paths:
        raise typer.BadParameter("give the files or folders to audit", param_hint="PATH...")
    settings = load_settings(paths[0], config)
    given = {
        "select": select or None,
        "ignore": ignore or None,
        "fail-on": fail_on,
        "format": format,
    }
    overrides = {k: v for k, v in given.items() if v}
    if overrides:  # checked as the config file's values are
        merged = {
            "select": list(settings.select),
            "ignore": list(settings.ignore),
            "exclude": list(settings.exclude),
            "fail-on": settings.fail_on,
            "severity": settings.severity,
            "format": settings.format,
            **overrides,
        }
        settings = replace(settings_from(merged), source=settings.source)
    result = audit(paths, settings)
    if settings.format == "text":
        if output is not None:
            with output.open("w", encoding="utf-8") as handle:
                render.text(result, Console(file=handle, width=120, no_color=True))
        else:
            render.text(result, Console())
    else:
        body = render.as_json(result) if settings.format == "json" else render.sarif(result)
        if output is not None:
            output.write_text(body + "\n", encoding="utf-8")
        else:
            sys.stdout.write(body + "\n")
    if result.at_least(settings.fail_on):
        raise typer.Exit(1)
