"""`mlwright models ...` (the registry), `mlwright ui`, and finding the model a command names."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlwright.cli.options import examples
from mlwright.cli.output import print_wide

if TYPE_CHECKING:
    from mlwright.api import Model, TensorModel

models_app = typer.Typer(
    help="The model registry: versions and aliases.",
    no_args_is_help=True,
    epilog=examples("mlwright models list", "mlwright models promote churn 3"),
)


def print_uri() -> None:
    """Every command that touches tracking says once which store it uses."""
    from rich.console import Console

    from mlwright.api import tracking_uri

    Console(stderr=True).print(
        f"tracking: {tracking_uri()}", highlight=False, markup=False, soft_wrap=True
    )


def load_model(ref: str) -> Model | TensorModel:
    """A model by folder or registry reference; registry use prints the tracking URI."""
    from mlwright.api import load, parse_reference

    if not Path(ref).exists() and parse_reference(ref) is not None:
        print_uri()
    return load(ref)


def tabular_model(model: Model | TensorModel, command: str) -> Model:
    """``model`` when it is a tabular model; ``command`` names what refuses a PyTorch one."""
    from mlwright.api import tabular

    return tabular(model, command)


@models_app.command("list", epilog=examples("mlwright models list"))
def models_list() -> None:
    """Registered models with their versions and aliases."""
    from rich.console import Console
    from rich.table import Table

    from mlwright.api import list_models

    print_uri()
    models = list_models()
    if not models:
        typer.echo(
            "no registered models in this tracking store: `mlwright train DATA -t TARGET` "
            "registers one (set MLFLOW_TRACKING_URI to use another store)",
            err=True,
        )
        return
    table = Table(title="Registered models", title_justify="left")
    for col in ("name", "versions", "latest", "aliases"):
        table.add_column(col)
    for m in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m["aliases"].items()))
        table.add_row(m["name"], str(m["versions"]), str(m["latest"]), aliases)
    print_wide(Console(), table)


@models_app.command("show", epilog=examples("mlwright models show churn"))
def models_show(name: Annotated[str, typer.Argument(help="Registered model name.")]) -> None:
    """Every version of a model: aliases, metrics, checksum, run."""
    from rich.console import Console
    from rich.table import Table

    from mlwright.api import show_model

    print_uri()
    info = show_model(name)
    table = Table(title=name, title_justify="left")
    for col in ("version", "aliases", "cv / test metrics", "run", "manifest sha256"):
        table.add_column(col, overflow="fold")
    for v in info["versions"]:
        metrics = ", ".join(
            f"{k} {val:.4g}"
            for k, val in sorted(v["metrics"].items())
            if k.startswith(("cv_", "test_"))
        )
        table.add_row(
            v["version"],
            ", ".join(v["aliases"]),
            metrics,
            v["run_id"] or "",
            (v["manifest_sha256"] or "")[:16],
        )
    print_wide(Console(), table)
    for alias, history in info["alias_history"].items():
        typer.echo(f"{alias} history: {' → '.join(history)}")


@models_app.command(
    "promote",
    epilog=examples(
        "mlwright models promote churn 3", "mlwright models promote churn 4 --alias staging"
    ),
)
def models_promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Version to point the alias at.")],
    alias: Annotated[str, typer.Option(help="Alias to move.")] = "champion",
) -> None:
    """Point an alias (champion by default) at a version; the move is recorded for rollback."""
    from mlwright.api import promote

    print_uri()
    done = promote(name, version, alias)
    was = f" (was {done['previous']})" if done["previous"] else ""
    typer.echo(f"{name}@{alias} → version {done['version']}{was}")


@models_app.command(
    "rollback",
    epilog=examples(
        "mlwright models rollback churn", "mlwright models rollback churn --alias staging"
    ),
)
def models_rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias: Annotated[str, typer.Option(help="Alias to move back.")] = "champion",
) -> None:
    """Move an alias back to the version it pointed to before."""
    from mlwright.api import rollback

    print_uri()
    done = rollback(name, alias)
    typer.echo(f"{name}@{alias} → version {done['version']} (was {done['previous']})")


@models_app.command(
    "approve",
    epilog=examples("mlwright models approve churn 4", "mlwright models approve churn 4 --by ana"),
)
def models_approve(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="The version to approve for promotion.")],
    by: Annotated[str | None, typer.Option(help="Who approves (default: the user).")] = None,
) -> None:
    """Approve a version for promotion: the autopilot promotes a challenger that proved itself
    under a policy with `promote: {approval: true}` once it is approved."""
    from mlwright.api import approve

    print_uri()
    done = approve(name, version, by=by)
    waiting = (
        f"; rollout {done['rollout']} promotes it at its next step"
        if done["rollout"]
        else " (no rollout is waiting for it yet)"
    )
    typer.echo(f"{name}/{done['version']} approved by {done['approved_by']}{waiting}")


def ui_command(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
) -> None:
    """Open the MLflow UI on the tracking store mlwright uses (the `ui` extra: the full
    `mlflow` package, with its web server). Ctrl-C stops the UI and all its workers."""
    from importlib.metadata import PackageNotFoundError, version

    from mlwright.api import tracking_uri
    from mlwright.cli.signals import run_group
    from mlwright.errors import MlwrightError

    uri = tracking_uri()
    print_uri()
    if uri.startswith(("http://", "https://")):
        typer.echo(f"the tracking store is a server: open {uri} in a browser")
        return
    try:
        version("mlflow")
    except PackageNotFoundError:
        raise MlwrightError(
            "the MLflow UI is not installed: mlwright's core install carries MLflow's client "
            "(mlflow-skinny), not its web server",
            fix="pip install 'mlwright[ui]'",
        ) from None
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
    ]
    typer.echo(f"MLflow UI on http://{host}:{port} (Ctrl-C to stop)")
    raise typer.Exit(run_group(command))
