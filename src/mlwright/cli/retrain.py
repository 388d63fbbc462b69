"""`mlwright retrain`: a registered model retrained on new rows, registered as a challenger with
its lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlwright.cli.options import (
    FLOAT_METAVAR,
    MODEL_HELP,
    POSITIVE,
    STORE_HELP,
    examples,
)
from mlwright.cli.output import stderr_console
from mlwright.cli.signals import stops_cleanly

RETRAIN_EXAMPLES = examples(
    "mlwright retrain churn@champion --data churn-2025-q1.csv",
    "mlwright retrain churn@champion --from-store mlwright-serve.db --since 30d --min-labels 500",
    "mlwright retrain churn@champion --data new.csv --from-store mlwright-serve.db "
    "--search --time-budget 300 --reason 'quarterly refresh'",
    "mlwright retrain churn/3 --data postgresql://db/shop --sql 'SELECT * FROM churn_2025'",
)


def retrain_command(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", "-d", help="New labelled rows: CSV or Parquet, or a URL with --sql (repeat)."
        ),
    ] = None,
    sql: Annotated[str | None, typer.Option(help="Query, when a --data is a database URL.")] = None,
    from_store: Annotated[
        Path | None,
        typer.Option(
            help=f"{STORE_HELP} Its predictions that received a true label or value as "
            "feedback become training rows."
        ),
    ] = None,
    min_labels: Annotated[
        int, typer.Option(min=1, help="The fewest labelled predictions --from-store must hold.")
    ] = 100,
    since: Annotated[
        str | None,
        typer.Option(help="--from-store window start: 30m, 6h, 2d, 1w ago, or a date (UTC)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="--from-store window end (default: now).")
    ] = None,
    search: Annotated[
        bool,
        typer.Option(
            "--search", help="Search again within --time-budget (default: refit, no search)."
        ),
    ] = False,
    time_budget: Annotated[
        float | None,
        typer.Option(
            "--time-budget", parser=POSITIVE, metavar=FLOAT_METAVAR, help="Seconds (--search)."
        ),
    ] = None,
    reason: Annotated[
        str, typer.Option(help="Why, in words: kept in the lineage, the run and the registry.")
    ] = "",
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Package folder (default: models/NAME).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
) -> None:
    """Retrain a model on new rows: its configurations refit without a search (seconds,
    reproducible), or a budgeted search with --search. The new version takes the same requests,
    registers as challenger while a champion exists, and records its parent, data and reason."""
    from rich.console import Console

    from mlwright.api import retrain
    from mlwright.cli.train_view import TrainPrinter

    printer = TrainPrinter(stderr_console(), quiet=quiet)
    try:
        with stops_cleanly():
            retrained = retrain(
                model,
                data=list(data or ()),
                sql=sql,
                from_store=from_store,
                min_labels=min_labels,
                since=since,
                until=until,
                search=search,
                time_budget=time_budget,
                reason=reason,
                out=output,
                on_event=printer,
                default_out=Path("models"),
            )
    finally:
        printer.close()
    printer.summary(Console(), retrained)
    lineage = retrained.recipe.lineage
    if lineage is not None:
        parent = lineage.parent
        aged = lineage.parent_on_new_data
        line = f"retrained {parent.get('name')}/{parent.get('version')} ({lineage.mode})"
        if aged is not None:
            line += f"; the parent scores {aged['metric']} {aged['value']:.4f} on the new rows"
        typer.echo(line)
