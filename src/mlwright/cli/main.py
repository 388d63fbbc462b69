"""``mlwright`` command line. Each command parses, calls the Python API and prints.

Exit codes: 0 ok, 1 a failure the user can fix (the message says how), 2 a usage error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlwright import __version__
from mlwright.errors import MlwrightError

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="mlwright",
    help="An ML engineer in a box: understand the problem, design, train, deploy, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlwright {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """mlwright command line."""


def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


@app.command("profile")
def profile_command(
    data: Annotated[
        str, typer.Argument(help="CSV or Parquet path, or a SQLAlchemy URL with --sql.")
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.")],
    sql: Annotated[
        str | None, typer.Option(help="Query to run when DATA is a database URL.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the ProblemDefinition as JSON (stable keys).")
    ] = False,
    metric: Annotated[
        str | None, typer.Option(help="Metric to optimise instead of the task's default.")
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="binary, multiclass or regression, instead of inferring it.")
    ] = None,
) -> None:
    """Understand the problem: task, metric, data characteristics, what is wrong with the data."""
    from mlwright.data.profile import profile

    err = _stderr_console()
    if as_json:
        problem = profile(data, target, sql=sql, metric=metric, task=task)
        sys.stdout.write(problem.to_json() + "\n")
        return
    with err.status("profiling…") as status:
        problem = profile(
            data,
            target,
            sql=sql,
            metric=metric,
            task=task,
            on_step=lambda s: status.update(f"profiling: {s}…"),
        )
    from rich.console import Console

    Console().print(problem)


@app.command("demo")
def demo_command(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's files.")] = Path(
        "mlwright-demo"
    ),
) -> None:
    """Run mlwright end to end on a real dataset that ships with it (Mroz, labour supply)."""
    from rich.console import Console

    from mlwright.data.bundled import DATASETS, load_dataset
    from mlwright.data.profile import profile

    out = Console()
    spec = DATASETS["Mroz"]
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / "mroz.csv"
    load_dataset(spec.name).to_csv(csv_path, index=False)
    out.print(f"[bold]mlwright demo[/] — {spec.about}; target {spec.target!r}")
    out.print(f"data written to {csv_path}\n")
    out.print(f"$ mlwright profile {csv_path} --target {spec.target}\n")
    with _stderr_console().status("profiling…"):
        problem = profile(str(csv_path), spec.target)
    out.print(problem)


def run() -> None:
    """Console-script entry point: MlwrightError becomes a message and exit code 1."""
    try:
        app()
    except MlwrightError as exc:
        from rich.text import Text

        _stderr_console().print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("MLWRIGHT_DEBUG"):
            raise
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in mlwright; set MLWRIGHT_DEBUG=1 to see the traceback.\n"
        )
        sys.exit(1)
