"""``mlwright`` command line. Each command parses, calls the Python API and prints.

Exit codes: 0 ok, 1 a failure the user can fix (the message says how), 2 a usage error.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlwright import __version__
from mlwright.cli.signals import stops_cleanly
from mlwright.errors import MlwrightError

if TYPE_CHECKING:
    from rich.console import Console

    from mlwright.api import Model, TensorModel

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


@app.command("train")
def train_command(
    data: Annotated[
        str, typer.Argument(help="CSV or Parquet path, or a SQLAlchemy URL with --sql.")
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.")],
    time_budget: Annotated[
        float | None,
        typer.Option(help="Seconds for the whole run (default 60 without --max-trials)."),
    ] = None,
    max_trials: Annotated[
        int | None, typer.Option(help="Stop after N trials; alone, the clock never cuts a trial.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="The one seed every random source derives from.")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Metric to optimise.")] = None,
    task: Annotated[str | None, typer.Option(help="binary, multiclass or regression.")] = None,
    out: Annotated[str | None, typer.Option(help="Package folder (default models/NAME).")] = None,
    name: Annotated[
        str | None, typer.Option(help="Model name (default: the data file's stem).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file of training options; flags override it.")
    ] = None,
    latency_budget_ms: Annotated[
        float | None,
        typer.Option(help="p99 single-row latency budget (ms), held by the final model."),
    ] = None,
    max_model_mb: Annotated[
        float | None, typer.Option(help="Largest model package (MB), held by the final model.")
    ] = None,
    group_col: Annotated[
        str | None, typer.Option(help="Validate with groups of this column.")
    ] = None,
    time_col: Annotated[
        str | None, typer.Option(help="Validate in the time order of this column.")
    ] = None,
    keep_col: Annotated[
        list[str] | None, typer.Option(help="Keep a column the profile would drop (repeatable).")
    ] = None,
    drop_col: Annotated[list[str] | None, typer.Option(help="Drop a column (repeatable).")] = None,
    family: Annotated[
        list[str] | None, typer.Option(help="Only try this model family (repeatable).")
    ] = None,
    test_size: Annotated[
        float | None, typer.Option(help="Share held out as a test split (0.2).")
    ] = None,
    interval: Annotated[
        float | None, typer.Option(help="Regression: record intervals at this level (e.g. 0.9).")
    ] = None,
    sql: Annotated[
        str | None, typer.Option(help="Query to run when DATA is a database URL.")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment (default: the model name).")
    ] = None,
    tracker: Annotated[
        list[str] | None,
        typer.Option(help="mlflow (default), wandb (logs to W&B as well), or none (repeatable)."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="Where the search's trials run: local (default) or ray."),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="With --backend ray: the cluster to join (default: a local runtime)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="With --backend ray: trials at once (default: CPUs / threads)."),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="Threads per model (default: all cores; 1 per trial on Ray)."),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="Print only the result.")] = False,
) -> None:
    """Train, validate, package, track and register a model: profile, plan, search, test,
    refit."""
    from mlwright.config import TrainOptions

    given = {
        "time_budget": time_budget,
        "max_trials": max_trials,
        "seed": seed,
        "metric": metric,
        "task": task,
        "out": out,
        "name": name,
        "latency_budget_ms": latency_budget_ms,
        "max_model_mb": max_model_mb,
        "group_col": group_col,
        "time_col": time_col,
        "keep_cols": tuple(keep_col) if keep_col else None,
        "drop_cols": tuple(drop_col) if drop_col else None,
        "families": tuple(family) if family else None,
        "test_size": test_size,
        "interval": interval,
        "experiment": experiment,
        "tracker": tuple(tracker) if tracker else None,
        "backend": backend,
        "ray_address": ray_address,
        "workers": workers,
        "threads": threads,
    }
    values: dict[str, object] = {}
    if config is not None:
        values.update(TrainOptions.yaml_mapping(config))
    values.update({k: v for k, v in given.items() if v is not None})
    values["target"] = target
    _train_and_print(data, TrainOptions.from_mapping(values, source="training options"), sql, quiet)


def _train_and_print(data: str, options: Any, sql: str | None, quiet: bool) -> None:
    """Train with the live progress view on stderr and the summary on stdout; SIGTERM stops
    the run cleanly."""
    from rich.console import Console

    from mlwright.api import train_with_options
    from mlwright.cli.train_view import TrainPrinter

    printer = TrainPrinter(_stderr_console(), quiet=quiet)
    try:
        with stops_cleanly():
            model = train_with_options(
                data,
                options,
                sql=sql,
                on_event=printer,
                verbose=not quiet and not printer.live,  # the live line shows epochs itself
                default_out=Path("models"),
            )
    finally:
        printer.close()
    printer.summary(Console(), model)


@app.command("train-torch")
def train_torch_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The run's YAML file (see docs/torch.md).")
    ],
    out: Annotated[Path | None, typer.Option(help="Package folder (default models/NAME).")] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(help="Checkpoints, one per epoch (default checkpoints/NAME)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from the checkpoint a stopped run left.")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
) -> None:
    """Train your own PyTorch model from a config (module:factory, data, loss, loop settings,
    optional search ranges), then package, register and report it like a tabular model."""
    from mlwright.api import read_torch_config, train_torch

    # the config names modules by import path, as `python -m` would find them from here
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.insert(0, here)
    settings = read_torch_config(config)
    with stops_cleanly():
        model = train_torch(
            settings,
            out or Path("models") / settings.name,
            checkpoint_dir=checkpoint_dir or Path("checkpoints") / settings.name,
            resume=resume,
            verbose=not quiet,
        )
    recipe = model.recipe
    scores = ", ".join(f"{k} {v:.4g}" for k, v in model.metrics["validation"].items())
    onnx = recipe.export["onnx"]
    lines = [
        f"trained {model.name}: best epoch {recipe.best_epoch} of {len(recipe.history)}; "
        f"on the {(model.evidence or {}).get('on', 'validation')} data: {scores}",
        f"package: {model.path} (torch.export program"
        + (", ONNX" if onnx["status"] == "ok" else f"; no ONNX: {onnx['reason']}")
        + ")",
        f"report: {model.path}/report/report.html",
    ]
    if model.registry:
        reg = model.registry
        lines.append(f"registered {reg['name']}/{reg['version']} as @{reg['alias']}")
    ref = f"{model.registry['name']}@{model.registry['alias']}" if model.registry else model.path
    lines.append(f"serve it: mlwright serve {ref}")
    for line in lines:
        typer.echo(line)


@app.command("export")
def export_command(
    model: Annotated[str, typer.Argument(help="Package folder, NAME@ALIAS or NAME/VERSION.")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="onnx, or triton (a model repository).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write.")],
) -> None:
    """Export a tabular or PyTorch model to ONNX, or as a Triton Inference Server model
    repository; the export is checked on the golden examples with onnxruntime first."""
    from mlwright.api import export

    loaded = _load(model)
    with _stderr_console().status(f"exporting {loaded.name} to {format}…"):
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


def _tabular(model: Model | TensorModel, command: str) -> Model:
    from mlwright.api import tabular

    return tabular(model, command)


def _load(ref: str) -> Model | TensorModel:
    """A model by folder or registry reference; registry use prints the tracking URI."""
    from mlwright.api import load, parse_reference
    from mlwright.cli.models import print_uri

    if not Path(ref).exists() and parse_reference(ref) is not None:
        print_uri()
    return load(ref)


@app.command("predict")
def predict_command(
    model: Annotated[str, typer.Argument(help="Model package folder.")],
    data: Annotated[
        str, typer.Argument(help="CSV or Parquet path, or a SQLAlchemy URL with --sql.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write (.csv or .parquet).")
    ],
    interval: Annotated[
        float | None, typer.Option(help="Regression: add lower/upper at this level (e.g. 0.9).")
    ] = None,
    sql: Annotated[
        str | None, typer.Option(help="Query to run when DATA is a database URL.")
    ] = None,
) -> None:
    """Predict with a model package: `prediction`, `proba_<class>`, or `lower`/`upper`."""
    from mlwright.cli.files import write_table

    err = _stderr_console()
    loaded = _tabular(_load(model), "mlwright predict")
    features, notices = loaded.prepare(data, sql=sql)
    for note in notices:
        err.print(f"note: {note}", highlight=False, markup=False)
    out = loaded.predict_frame(features, interval=interval)
    write_table(out, output)
    err.print(f"wrote {len(out):,} predictions to {output}", highlight=False, markup=False)


@app.command("evaluate")
def evaluate_command(
    model: Annotated[str, typer.Argument(help="Model package folder.")],
    data: Annotated[str, typer.Argument(help="Labelled CSV or Parquet path, or a URL with --sql.")],
    sql: Annotated[
        str | None, typer.Option(help="Query to run when DATA is a database URL.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Score a model package on labelled data with every metric of its task."""
    import json

    loaded = _tabular(_load(model), "mlwright evaluate")
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
    Console().print(table)


@app.command("reproduce")
def reproduce_command(
    package: Annotated[
        str, typer.Argument(help="Model package folder to rebuild from its recipe.")
    ],
    data: Annotated[
        str | None, typer.Option(help="The training data, if not at the recorded path.")
    ] = None,
    sql: Annotated[str | None, typer.Option(help="Query, when --data is a database URL.")] = None,
) -> None:
    """Reproduce the model from its recipe (no search); exit 1 if its predictions differ."""
    from mlwright.api import check_reproduction

    err = _stderr_console()
    loaded = _tabular(_load(package), "mlwright reproduce")
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


@app.command("report")
def report_command(
    model: Annotated[
        str,
        typer.Argument(
            help="Package folder, NAME@ALIAS, NAME/VERSION, or the MLflow run id of a training."
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

    err = _stderr_console()
    ref = model
    if not Path(model).exists() and _RUN_ID.match(model):
        from mlwright.api import load_run
        from mlwright.cli.models import print_uri

        print_uri()
        loaded, ref = load_run(model)
    else:
        loaded = _load(model)
    target = output or Path(f"{loaded.name}-report.html")
    with err.status("writing the report…"):
        write_report(loaded, target, package_path=ref)
    typer.echo(f"wrote the ML Solution report of {loaded.name} to {target}")


@app.command("demo")
def demo_command(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's files.")] = Path(
        "mlwright-demo"
    ),
    time_budget: Annotated[float, typer.Option(help="Seconds for training.")] = 30.0,
) -> None:
    """Run mlwright end to end on a real dataset that ships with it (Mroz, labour supply):
    profile, train, predict, report."""
    from rich.console import Console

    from mlwright.api import train_with_options
    from mlwright.cli.train_view import TrainPrinter
    from mlwright.config import TrainOptions
    from mlwright.data.bundled import DATASETS, load_dataset
    from mlwright.data.profile import profile

    out = Console()
    err = _stderr_console()
    spec = DATASETS["Mroz"]
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / "mroz.csv"
    load_dataset(spec.name).to_csv(csv_path, index=False)
    out.print(f"[bold]mlwright demo[/] — {spec.about}; target {spec.target!r}")
    out.print(f"data written to {csv_path}\n")

    out.rule("1. understand the problem")
    out.print(f"$ mlwright profile {csv_path} --target {spec.target}\n")
    with err.status("profiling…"):
        problem = profile(str(csv_path), spec.target)
    out.print(problem)

    out.rule("2. design, train, validate, package")
    package = workdir / "models" / "mroz"
    out.print(
        f"$ mlwright train {csv_path} --target {spec.target} --time-budget {time_budget:g} "
        f"--seed 0 --out {package}\n"
    )
    options = TrainOptions(target=spec.target, time_budget=time_budget, seed=0, out=str(package))
    printer = TrainPrinter(out)
    try:
        model = train_with_options(str(csv_path), options, on_event=printer)
    finally:
        printer.close()
    printer.summary(out, model)

    out.rule("3. predict")
    predictions = workdir / "predictions.csv"
    out.print(f"$ mlwright predict {package} {csv_path} --output {predictions}\n")
    from mlwright.api import load
    from mlwright.cli.files import write_table

    predicted = load(package).predict(str(csv_path))
    write_table(predicted, predictions)
    out.print(predicted.head(5))

    out.rule("4. report")
    report = workdir / "report.html"
    out.print(f"$ mlwright report {package} --output {report}\n")
    from mlwright.api import write_report

    write_report(_tabular(load(package), "the demo"), report, package_path=str(package))
    out.print(
        f"the ML Solution report is in {report} (and in the package: {package}/report/)",
        soft_wrap=True,
    )
    out.print(f"\nthe model package is in {package}; predictions are in {predictions}")
    if model.registry:
        name = model.registry["name"]
        out.print(
            f"runs and versions: `mlwright models show {name}`, `mlwright ui`", soft_wrap=True
        )


@app.command("serve")
def serve_command(
    model: Annotated[str, typer.Argument(help="Package folder, NAME@ALIAS or NAME/VERSION.")],
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless you say so).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    threads: Annotated[
        int,
        typer.Option(
            min=1, help="Threads per predict call in each worker (1 suits small requests)."
        ),
    ] = 1,
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
        typer.Option(help="A/B test: a second model (folder, NAME@ALIAS, NAME/VERSION)."),
    ] = None,
    split: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="The challenger's share of the traffic.")
    ] = 0.1,
    shadow: Annotated[
        str | None, typer.Option(help="Shadow test: a model that scores a copy of the traffic.")
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
        str,
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
    from mlwright.serve.launch import launch

    given = {
        "model": model,
        "host": host,
        "port": port,
        "workers": workers,
        "threads": threads,
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
    options = ServeOptions.from_mapping(given, source="serve options")
    launch(options, _load, _stderr_console())


from mlwright.cli.audit import audit_command  # noqa: E402  (commands register here)
from mlwright.cli.experiment import experiment_app  # noqa: E402
from mlwright.cli.keys import keys_app  # noqa: E402
from mlwright.cli.models import models_app, ui_command  # noqa: E402
from mlwright.cli.monitor import monitor_command  # noqa: E402

app.add_typer(models_app, name="models")
app.add_typer(experiment_app, name="experiment")
app.add_typer(experiment_app, name="ab", hidden=True)  # the earlier name of `experiment`
app.add_typer(keys_app, name="keys")
app.command("monitor")(monitor_command)
app.command("audit")(audit_command)
app.command("ui")(ui_command)


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
