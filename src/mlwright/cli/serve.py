"""`mlwright serve`: a model over HTTP, alone or in an experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlwright.cli.models import load_model
from mlwright.cli.options import (
    MODEL_HELP,
    ServeBackend,
    Threads,
    examples,
)
from mlwright.cli.output import stderr_console

SERVE_EXAMPLES = examples(
    "mlwright serve churn@champion --workers 2 --host 0.0.0.0",
    "mlwright serve churn@champion --challenger churn/3 --split 0.2",
    "mlwright serve models/churn --backend ray-serve --replicas 2",
)


def serve_command(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless you say so).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (uvicorn).")] = 1,
    threads_: Threads = None,
    max_rows: Annotated[int, typer.Option(min=1, help="Most records in one request.")] = 10_000,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, in MB.")] = 16.0,
    store: Annotated[
        Path, typer.Option(help="Serving store (SQLite, WAL) where every prediction is recorded.")
    ] = Path("mlwright-serve.db"),
    poll_seconds: Annotated[
        float | None,
        typer.Option(help="With NAME@ALIAS: follow the alias, checking it this often."),
    ] = None,
    challenger: Annotated[
        str | None,
        typer.Option(help="A/B test: a second model (folder, NAME@ALIAS or NAME/VERSION)."),
    ] = None,
    split: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="The challenger's share of the traffic.")
    ] = 0.1,
    shadow: Annotated[
        str | None,
        typer.Option(
            help="Shadow test: a model (folder, NAME@ALIAS or NAME/VERSION) that scores a copy "
            "of the traffic."
        ),
    ] = None,
    experiment_config: Annotated[
        Path | None, typer.Option(help="Experiment file (YAML): variants, weights, keys.")
    ] = None,
    monitor: Annotated[
        bool,
        typer.Option(
            help="Count served values against the training reference (drift, in the store)."
        ),
    ] = True,
    monitor_minutes: Annotated[
        float, typer.Option(min=1, help="Window of the drift and performance gauges, minutes.")
    ] = 60.0,
    backend: Annotated[
        ServeBackend,
        typer.Option(help="uvicorn (worker processes here) or ray-serve (replicas on Ray)."),
    ] = "uvicorn",
    replicas: Annotated[
        int | None, typer.Option(min=1, help="With --backend ray-serve: replicas (default 1).")
    ] = None,
    replica_cpus: Annotated[
        float | None,
        typer.Option(min=0.01, help="With --backend ray-serve: CPUs each replica asks (0.5)."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="With --backend ray-serve: the cluster (default: a local runtime)."),
    ] = None,
) -> None:
    """Serve a model over HTTP (uvicorn, or replicas on Ray Serve): /v1/predict, /invocations,
    /health, /ready, /docs, /metrics, /v1/monitor/drift. The model must pass its deployment gate
    before /ready answers 200."""
    from mlwright.config import ServeOptions
    from mlwright.errors import ConfigError

    given = {
        "model": model,
        "host": host,
        "port": port,
        "workers": workers,
        "threads": threads_,
        "max_rows": max_rows,
        "max_body_bytes": int(max_body_mb * 1024 * 1024),
        "store": str(store.resolve()),
        "poll_seconds": poll_seconds,
        "challenger": challenger,
        "split": split,
        "shadow": shadow,
        "experiment_config": experiment_config,
        "monitor": monitor,
        "monitor_minutes": monitor_minutes,
        "backend": backend,
        "replicas": replicas,
        "replica_cpus": replica_cpus,
        "ray_address": ray_address,
    }
    try:
        options = ServeOptions.from_mapping(
            {k: v for k, v in given.items() if k != "threads" or v is not None},
            source="serve options",
        )
    except ConfigError as exc:  # every value here came from the command line: a usage error
        raise typer.BadParameter(f"{exc.message}; {exc.fix}" if exc.fix else exc.message) from None
    from mlwright.serve.launch import launch

    launch(options, load_model, stderr_console())
