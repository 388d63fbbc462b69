"""`mlwright train` (tabular AutoML) and `mlwright train-torch` (your own PyTorch model)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mlwright.cli.options import (
    DATA_HELP,
    FLOAT_METAVAR,
    LEVEL,
    POSITIVE,
    SQL_HELP,
    TEST_SHARE,
    Family,
    Metric,
    Task,
    Threads,
    Tracker,
    TrainBackend,
    either,
    examples,
)
from mlwright.cli.output import stderr_console
from mlwright.cli.signals import stops_cleanly

TRAIN_EXAMPLES = examples(
    "mlwright train churn.csv -t churned --time-budget 120",
    "mlwright train churn.csv -t churned --max-trials 20 --seed 1 -o models/churn -q",
    "mlwright train churn.csv -t churned -c train.yaml --backend ray --concurrent-trials 4",
)


# the options of `mlwright train`, one alias each, so that the command reads as its list
TimeBudget = Annotated[
    float | None,
    typer.Option(
        parser=POSITIVE,
        metavar=FLOAT_METAVAR,
        help="Seconds for the whole run (default 60 without --max-trials).",
    ),
]
MaxTrials = Annotated[
    int | None,
    typer.Option(min=1, help="Stop after N trials; alone, the clock never cuts a trial."),
]
Seed = Annotated[int | None, typer.Option(help="The one seed every random source derives from.")]
Output = Annotated[
    str | None, typer.Option("--output", "-o", help="Package folder (default models/NAME).")
]
Name = Annotated[str | None, typer.Option(help="Model name (default: the data file's stem).")]
Config = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML file of training options; flags override it."),
]
LatencyBudget = Annotated[
    float | None,
    typer.Option(
        parser=POSITIVE,
        metavar=FLOAT_METAVAR,
        help="p99 single-row latency budget (ms), held by the final model.",
    ),
]
MaxModelMb = Annotated[
    float | None,
    typer.Option(
        parser=POSITIVE,
        metavar=FLOAT_METAVAR,
        help="Largest model package (MB), held by the final model.",
    ),
]
GroupCol = Annotated[str | None, typer.Option(help="Validate with groups of this column.")]
TimeCol = Annotated[str | None, typer.Option(help="Validate in the time order of this column.")]
KeepCol = Annotated[
    list[str] | None, typer.Option(help="Keep a column the profile would drop (repeatable).")
]
DropCol = Annotated[list[str] | None, typer.Option(help="Drop a column (repeatable).")]
Families = Annotated[
    list[Family] | None, typer.Option(help="Only try this model family (repeatable).")
]
TestSize = Annotated[
    float | None,
    typer.Option(
        parser=TEST_SHARE, metavar=FLOAT_METAVAR, help="Share held out as a test split (0.2)."
    ),
]
Interval = Annotated[
    float | None,
    typer.Option(
        parser=LEVEL,
        metavar=FLOAT_METAVAR,
        help="Regression: record intervals at this level (e.g. 0.9).",
    ),
]
Experiment = Annotated[
    str | None, typer.Option(help="MLflow experiment (default: the model name).")
]
Trackers = Annotated[
    list[Tracker] | None,
    typer.Option(help="mlflow (default), wandb (logs to W&B as well), or none (repeatable)."),
]
Backend = Annotated[
    TrainBackend | None,
    typer.Option(help="Where the search's trials run: local (default) or ray."),
]
RayAddress = Annotated[
    str | None,
    typer.Option(help="With --backend ray: the cluster to join (default: a local runtime)."),
]
ConcurrentTrials = Annotated[
    int | None,
    typer.Option(min=1, help="With --backend ray: trials at once (default: CPUs / threads)."),
]
SampleRows = Annotated[
    int | None,
    typer.Option(
        min=100,
        help="DATA a directory or glob of Parquet files: rows of the seeded sample that "
        "profiling, the plan and the search use (default 200000); the final model learns "
        "from every row.",
    ),
]
TrainWorkers = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="With --backend ray and a file set: workers of the data-parallel fit "
        "(default: CPUs / threads, at most one per row group).",
    ),
]


def train_command(
    data: Annotated[str, typer.Argument(help=DATA_HELP)],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.")],
    time_budget: TimeBudget = None,
    max_trials: MaxTrials = None,
    seed: Seed = None,
    metric: Annotated[Metric | None, typer.Option(help="Metric to optimise.")] = None,
    task: Annotated[Task | None, typer.Option(help="The task, instead of inferring it.")] = None,
    output: Output = None,
    name: Name = None,
    config: Config = None,
    latency_budget_ms: LatencyBudget = None,
    max_model_mb: MaxModelMb = None,
    group_col: GroupCol = None,
    time_col: TimeCol = None,
    keep_col: KeepCol = None,
    drop_col: DropCol = None,
    family: Families = None,
    test_size: TestSize = None,
    interval: Interval = None,
    sql: Annotated[str | None, typer.Option(help=SQL_HELP)] = None,
    experiment: Experiment = None,
    tracker: Trackers = None,
    backend: Backend = None,
    ray_address: RayAddress = None,
    concurrent_trials: ConcurrentTrials = None,
    threads_: Threads = None,
    sample_rows: SampleRows = None,
    train_workers: TrainWorkers = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result.")] = False,
    # earlier spellings, hidden from help
    out: Annotated[str | None, typer.Option("--out", hidden=True)] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, hidden=True)] = None,
    no_quiet: Annotated[bool, typer.Option("--no-quiet", hidden=True)] = False,
) -> None:
    """Train, validate, package, track and register a model: profile, plan, search, test,
    refit."""
    concurrent_trials = either(concurrent_trials, workers, "--concurrent-trials/--workers")
    given = {
        "time_budget": time_budget,
        "max_trials": max_trials,
        "seed": seed,
        "metric": metric,
        "task": task,
        "out": either(output, out, "--output/--out"),
        "name": name,
        "latency_budget_ms": latency_budget_ms,
        "max_model_mb": max_model_mb,
        "group_col": group_col,
        "time_col": time_col,
        "keep_cols": tuple(keep_col) if keep_col else None,
        "drop_cols": tuple(drop_col) if drop_col else None,
        "families": tuple(f.value for f in family) if family else None,
        "test_size": test_size,
        "interval": interval,
        "experiment": experiment,
        "tracker": tuple(t.value for t in tracker) if tracker else None,
        "backend": backend,
        "ray_address": ray_address,
        "workers": concurrent_trials,
        "threads": threads_,
        "sample_rows": sample_rows,
        "train_workers": train_workers,
    }
    options = _train_options(target, config, given)
    _train_and_print(data, options, sql, quiet and not no_quiet)


def _train_options(target: str, config: Path | None, given: dict[str, Any]) -> Any:
    """The checked TrainOptions: the config file's, overridden by the flags given."""
    from mlwright.config import TrainOptions

    values: dict[str, object] = {}
    if config is not None:
        values.update(TrainOptions.yaml_mapping(config))
    values.update({k: v for k, v in given.items() if v is not None})
    values["target"] = target
    ray_only = {
        "--concurrent-trials": given["workers"],
        "--ray-address": given["ray_address"],
        "--train-workers": given.get("train_workers"),
    }
    misplaced = [flag for flag, value in ray_only.items() if value is not None]
    if misplaced and values.get("backend", "local") != "ray":
        verb = "applies" if len(misplaced) == 1 else "apply"
        raise typer.BadParameter(
            f"{' and '.join(misplaced)} {verb} to the Ray backend only: pass --backend ray too"
        )
    return TrainOptions.from_mapping(values, source="training options")


def _train_and_print(data: str, options: Any, sql: str | None, quiet: bool) -> None:
    """Train with the live progress view on stderr and the summary on stdout; SIGTERM stops
    the run cleanly."""
    from rich.console import Console

    from mlwright.api import train_with_options
    from mlwright.cli.train_view import TrainPrinter

    printer = TrainPrinter(stderr_console(), quiet=quiet)
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


TRAIN_TORCH_EXAMPLES = examples(
    "mlwright train-torch -c examples/digits_cnn.yaml",
    "mlwright train-torch -c run.yaml -o models/digits --no-resume -q",
)


def train_torch_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The run's YAML file (see docs/torch.md).")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Package folder (default models/NAME).")
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(help="Checkpoints, one per epoch (default checkpoints/NAME)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from the checkpoint a stopped run left.")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
    # earlier spellings, hidden from help
    out: Annotated[Path | None, typer.Option("--out", hidden=True)] = None,
    no_quiet: Annotated[bool, typer.Option("--no-quiet", hidden=True)] = False,
) -> None:
    """Train your own PyTorch model from a config (module:factory, data, loss, loop settings,
    optional search ranges), then package, register and report it like a tabular model."""
    output = either(output, out, "--output/--out")
    _train_net("torch", config, output, checkpoint_dir, resume, quiet and not no_quiet)


# the options train-keras and train-jax share with train-torch
PackageFolder = Annotated[
    Path | None, typer.Option("--output", "-o", help="Package folder (default models/NAME).")
]
CheckpointDir = Annotated[
    Path | None, typer.Option(help="Checkpoints, one per epoch (default checkpoints/NAME).")
]
Resume = Annotated[bool, typer.Option(help="Continue from the checkpoint a stopped run left.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")]

TRAIN_KERAS_EXAMPLES = examples(
    "mlwright train-keras -c examples/keras_digits_cnn.yaml",
    "mlwright train-keras -c run.yaml -o models/digits --no-resume -q",
)


def train_keras_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The run's YAML file (see docs/keras.md).")
    ],
    output: PackageFolder = None,
    checkpoint_dir: CheckpointDir = None,
    resume: Resume = True,
    quiet: Quiet = False,
) -> None:
    """Train your own Keras 3 model (JAX backend by default; TensorFlow or PyTorch) from a
    config, then package it with an ONNX model the server runs without Keras, register and
    report it."""
    _train_net("keras", config, output, checkpoint_dir, resume, quiet)


TRAIN_JAX_EXAMPLES = examples(
    "mlwright train-jax -c examples/flax_digits_cnn.yaml",
    "mlwright train-jax -c run.yaml -o models/digits --no-resume -q",
)


def train_jax_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The run's YAML file (see docs/jax.md).")
    ],
    output: PackageFolder = None,
    checkpoint_dir: CheckpointDir = None,
    resume: Resume = True,
    quiet: Quiet = False,
) -> None:
    """Train your own Flax NNX model with an optax optimiser from a config, then package it with
    an ONNX model the server runs without JAX, register and report it."""
    _train_net("jax", config, output, checkpoint_dir, resume, quiet)


def _train_net(
    kind: str,
    config: Path,
    output: Path | None,
    checkpoint_dir: Path | None,
    resume: bool,
    quiet: bool,
) -> None:
    """train-torch, train-keras and train-jax: read the config, train, print the summary."""
    from mlwright import api

    # the config names modules by import path, as `python -m` would find them from here
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.insert(0, here)
    reader = {"torch": api.read_torch_config, "keras": api.read_keras_config,
              "jax": api.read_jax_config}[kind]  # fmt: skip
    trainer = {"torch": api.train_torch, "keras": api.train_keras, "jax": api.train_jax}[kind]
    settings = reader(config)
    with stops_cleanly():
        model = trainer(
            settings,  # type: ignore[arg-type]
            output or Path("models") / settings.name,
            checkpoint_dir=checkpoint_dir or Path("checkpoints") / settings.name,
            resume=resume,
            verbose=not quiet,
        )
    recipe = model.recipe
    scores = ", ".join(f"{k} {v:.4g}" for k, v in model.metrics["validation"].items())
    onnx = recipe.export["onnx"]
    if kind == "torch":
        served = "torch.export program" + (
            ", ONNX" if onnx["status"] == "ok" else f"; no ONNX: {onnx['reason']}"
        )
    else:
        native = recipe.export["native"]["file"]
        served = (f"{native} and the ONNX model it serves, within "
                  f"{onnx['max_abs_difference']:.2g} of it on the golden examples")  # fmt: skip
    lines = [
        f"trained {model.name}: best epoch {recipe.best_epoch} of {len(recipe.history)}; "
        f"on the {(model.evidence or {}).get('on', 'validation')} data: {scores}",
        f"package: {model.path} ({served})",
        f"report: {model.path}/report/report.html",
    ]
    if model.registry:
        reg = model.registry
        lines.append(f"registered {reg['name']}/{reg['version']} as @{reg['alias']}")
    ref = f"{model.registry['name']}@{model.registry['alias']}" if model.registry else model.path
    lines.append(f"serve it: mlwright serve {ref}")
    for line in lines:
        typer.echo(line)
