"""``mlwright`` command line. Each command parses, calls the Python API and prints.

Exit codes: 0 ok, 1 a failure the user can fix (the message says how), 2 a usage error (an
unknown command or option, a value outside an option's choices, options that do not go
together). Option spellings, choices and help examples: :mod:`mlwright.cli.options`.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mlwright import __version__
from mlwright.cli.audit import AUDIT_EXAMPLES, audit_command
from mlwright.cli.autopilot import AUTOPILOT_EXAMPLES, autopilot_command
from mlwright.cli.demo import DEMO_EXAMPLES, demo_command
from mlwright.cli.experiment import experiment_app
from mlwright.cli.keys import keys_app
from mlwright.cli.models import load_model, models_app, print_uri, tabular_model, ui_command
from mlwright.cli.monitor import MONITOR_EXAMPLES, monitor_command
from mlwright.cli.options import (
    DATA_HELP,
    MODEL_HELP,
    SQL_HELP,
    ExportFormat,
    Metric,
    Task,
    TrainBackend,
    examples,
)
from mlwright.cli.output import print_wide, stderr_console
from mlwright.cli.retrain import RETRAIN_EXAMPLES, retrain_command
from mlwright.cli.serve import SERVE_EXAMPLES, serve_command
from mlwright.cli.signals import stops_cleanly
from mlwright.cli.train import (
    TRAIN_EXAMPLES,
    TRAIN_JAX_EXAMPLES,
    TRAIN_KERAS_EXAMPLES,
    TRAIN_TORCH_EXAMPLES,
    train_command,
    train_jax_command,
    train_keras_command,
    train_torch_command,
)
from mlwright.errors import MlwrightError

app = typer.Typer(
    name="mlwright",
    help="An ML engineer in a box: understand the problem, design, train, deploy, report.",
    epilog=examples(
        "mlwright demo",
        "mlwright train churn.csv -t churned",
        "mlwright serve churn@champion",
        "mlwright train --help",
    ),
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


@app.command(
    "profile",
    epilog=examples(
        "mlwright profile churn.csv -t churned",
        "mlwright profile churn.csv -t churned --task binary --metric average_precision --json",
        "mlwright profile sqlite:///shop.db --sql 'select * from customers' -t churned",
    ),
)
def profile_command(
    data: Annotated[str, typer.Argument(help=DATA_HELP)],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.")],
    sql: Annotated[str | None, typer.Option(help=SQL_HELP)] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the ProblemDefinition as JSON (stable keys).")
    ] = False,
    metric: Annotated[
        Metric | None, typer.Option(help="Metric to optimise instead of the task's default.")
    ] = None,
    task: Annotated[Task | None, typer.Option(help="The task, instead of inferring it.")] = None,
) -> None:
    """Understand the problem: task, metric, data characteristics, what is wrong with the data."""
    from mlwright.data.profile import profile

    err = stderr_console()
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

    Console().print(problem)  # its tables fold long cells: nothing is cut


# the commands, in the order help lists them
app.command("train", epilog=TRAIN_EXAMPLES)(train_command)
app.command("train-torch", epilog=TRAIN_TORCH_EXAMPLES)(train_torch_command)
app.command("train-keras", epilog=TRAIN_KERAS_EXAMPLES)(train_keras_command)
app.command("train-jax", epilog=TRAIN_JAX_EXAMPLES)(train_jax_command)
app.command("retrain", epilog=RETRAIN_EXAMPLES)(retrain_command)


@app.command(
    "export",
    epilog=examples(
        "mlwright export churn@champion -f onnx -o exports/churn",
        "mlwright export models/digits -f triton -o model_repository",
    ),
)
def export_command(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    format: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="onnx, or triton (a model repository)."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write.")],
) -> None:
    """Export a tabular, PyTorch, Keras or JAX model to ONNX, or as a Triton Inference Server model
    repository; the export is checked on the golden examples with onnxruntime first."""
    from mlwright.api import export

    loaded = load_model(model)
    with stderr_console().status(f"exporting {loaded.name} to {format}…"):
        done = export(loaded, format, output)
    for path in done.files:
        typer.echo(f"  {path}")
    if done.checked_rows:
        typer.echo(
            f"checked: onnxruntime reproduces the {done.checked_rows} golden examples (largest "
            f"difference {done.max_difference:.2g})"
        )
    else:
        typer.echo("not checked: onnxruntime is not installed (pip install 'mlwright[onnx]')")
    typer.echo(f"exported {loaded.name} to {done.output} ({format})")


@app.command(
    "predict",
    epilog=examples(
        "mlwright predict churn@champion new.csv -o predictions.csv",
        "mlwright predict models/prices houses.parquet -o prices.parquet --interval 0.9",
    ),
)
def predict_command(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    data: Annotated[str, typer.Argument(help=DATA_HELP)],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write (.csv or .parquet).")
    ],
    interval: Annotated[
        float | None, typer.Option(help="Regression: add lower/upper at this level (e.g. 0.9).")
    ] = None,
    sql: Annotated[str | None, typer.Option(help=SQL_HELP)] = None,
    backend: Annotated[
        TrainBackend,
        typer.Option(help="Where a directory of Parquet files is scored: here, or on Ray."),
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="The Ray cluster to join (default: a local runtime).")
    ] = None,
    concurrent_files: Annotated[
        int | None,
        typer.Option(
            min=1, help="Files scored at once on Ray, one actor each (default: its CPUs)."
        ),
    ] = None,
    batch_rows: Annotated[
        int | None,
        typer.Option(min=1, help="Rows scored at once per file (the memory bound; 65,536)."),
    ] = None,
) -> None:
    """Predict with a model: `prediction`, `proba_<class>`, or `lower`/`upper`. DATA may be a
    directory or a glob of Parquet files of any size: they are scored in batches and written
    to the --output directory partitioned like the input, on Ray with --backend ray."""
    from mlwright.api import is_file_set
    from mlwright.cli.files import write_table

    err = stderr_console()
    if is_file_set(data):
        _predict_files(
            model, data, output, backend, ray_address, concurrent_files, batch_rows, interval
        )
        return
    if backend == "ray":
        raise typer.BadParameter(
            "--backend ray scores a directory or a glob of Parquet files", param_hint="--backend"
        )
    loaded = tabular_model(load_model(model), "mlwright predict")
    features, notices = loaded.prepare(data, sql=sql)
    for note in notices:
        err.print(f"note: {note}", highlight=False, markup=False)
    out = loaded.predict_frame(features, interval=interval)
    write_table(out, output)
    err.print(f"wrote {len(out):,} predictions to {output}", highlight=False, markup=False)


def _predict_files(
    model: str,
    data: str,
    output: Path,
    backend: str,
    ray_address: str | None,
    workers: int | None,
    batch_rows: int | None,
    interval: float | None,
) -> None:
    from mlwright.api import parse_reference, predict_files

    err = stderr_console()
    if not Path(model).exists() and parse_reference(model) is not None:
        print_uri()

    def done(record: dict[str, Any]) -> None:
        err.print(f"{record['target']}: {record['rows']:,} rows", highlight=False, markup=False)

    with stops_cleanly():
        scored = predict_files(
            model,
            data,
            output,
            backend="ray" if backend == "ray" else "local",
            ray_address=ray_address,
            workers=workers,
            batch_rows=batch_rows,
            interval=interval,
            on_file=done,
        )
    rate = scored["rows"] / scored["seconds"] if scored["seconds"] else 0.0
    err.print(
        f"wrote {scored['rows']:,} predictions in {len(scored['files'])} file(s) to {output} "
        f"in {scored['seconds']:.1f} s ({rate:,.0f} rows/s)",
        highlight=False,
        markup=False,
    )


@app.command(
    "evaluate",
    epilog=examples(
        "mlwright evaluate churn@champion labelled.csv",
        "mlwright evaluate churn/3 labelled.csv --json",
    ),
)
def evaluate_command(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    data: Annotated[str, typer.Argument(help="Labelled CSV or Parquet path, or a URL with --sql.")],
    sql: Annotated[str | None, typer.Option(help=SQL_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Score a model on labelled data with every metric of its task."""
    import json

    loaded = tabular_model(load_model(model), "mlwright evaluate")
    scores = loaded.evaluate(data, sql=sql)
    if as_json:
        sys.stdout.write(json.dumps(scores, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{loaded.name} on {data}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in scores.items():
        table.add_row(key, f"{value:.6f}")
    print_wide(Console(), table)


@app.command(
    "reproduce",
    epilog=examples(
        "mlwright reproduce models/churn",
        "mlwright reproduce churn@champion --data archive/churn-2024.csv",
    ),
)
def reproduce_command(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    data: Annotated[
        str | None, typer.Option(help="The training data, if not at the recorded path.")
    ] = None,
    sql: Annotated[str | None, typer.Option(help="Query, when --data is a database URL.")] = None,
) -> None:
    """Reproduce the model from its recipe (no search); exit 1 if its predictions differ."""
    from mlwright.api import check_reproduction

    err = stderr_console()
    loaded = tabular_model(load_model(model), "mlwright reproduce")
    with err.status("rebuilding the model from its recipe…"), stops_cleanly():
        result = check_reproduction(loaded, data, sql=sql)
    n = len(loaded.golden["inputs"]) if loaded.golden else 0
    if result.mismatches:
        err.print(
            f"[bold red]not reproduced:[/] {len(result.mismatches)} difference(s) on {n} "
            "golden rows"
        )
        for line in result.mismatches[:20]:
            err.print(f"  {line}", highlight=False, markup=False)
        sys.exit(1)
    typer.echo(
        f"reproduced: the rebuilt model matches all {n} golden predictions "
        "(labels exact, numbers within 1e-6)"
    )


_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@app.command(
    "report",
    epilog=examples(
        "mlwright report churn@champion -o churn-report.html",
        "mlwright report models/churn -o docs/churn.md",
    ),
)
def report_command(
    model: Annotated[
        str,
        typer.Argument(
            help="The model: a package folder, NAME@ALIAS, NAME/VERSION, or the MLflow run id "
            "of a training."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="FILE.html (one self-contained page) or FILE.md (plots beside)."
        ),
    ] = None,
) -> None:
    """Write the ML Solution report: problem, architecture, pipeline, evaluation, deployment."""
    from mlwright.api import write_report

    err = stderr_console()
    ref = model
    if not Path(model).exists() and _RUN_ID.match(model):
        from mlwright.api import load_run

        print_uri()
        loaded, ref = load_run(model)
    else:
        loaded = load_model(model)
    target = output or Path(f"{loaded.name}-report.html")
    with err.status("writing the report…"):
        write_report(loaded, target, package_path=ref)
    typer.echo(f"wrote the ML Solution report of {loaded.name} to {target}")


app.command("demo", epilog=DEMO_EXAMPLES)(demo_command)
app.command("serve", epilog=SERVE_EXAMPLES)(serve_command)
app.add_typer(models_app, name="models")
app.add_typer(experiment_app, name="experiment")
app.add_typer(experiment_app, name="ab", hidden=True)  # the earlier name of `experiment`
app.add_typer(keys_app, name="keys")
app.command("monitor", epilog=MONITOR_EXAMPLES)(monitor_command)
app.command("autopilot", epilog=AUTOPILOT_EXAMPLES)(autopilot_command)
app.command("audit", epilog=AUDIT_EXAMPLES)(audit_command)
app.command("ui", epilog=examples("mlwright ui", "mlwright ui --port 5001"))(ui_command)


def run() -> None:
    """Console-script entry point: MlwrightError becomes a message and exit code 1."""
    from mlwright.runtime import mark_command_line

    mark_command_line()
    try:
        app()
    except MlwrightError as exc:
        from rich.text import Text

        stderr_console().print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("MLWRIGHT_DEBUG"):
            raise
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in mlwright; set MLWRIGHT_DEBUG=1 to see the traceback.\n"
        )
        sys.exit(1)
