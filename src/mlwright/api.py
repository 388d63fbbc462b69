"""The Python API: the same operations as the CLI, on frames or paths, in a notebook.

It is also the one surface the command line uses: training (tabular and PyTorch), loading,
reproducing, exporting, reports, the model registry, and signing keys. Heavy imports happen
inside the functions that need them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlwright.config import FeatureSettings, ProfileSettings, TrainOptions
from mlwright.jax.config import JaxConfig
from mlwright.keras.config import KerasConfig
from mlwright.package.signing import SIGNING_KEY_ENV, TRUSTED_KEYS_ENV
from mlwright.torch.config import TorchConfig

if TYPE_CHECKING:
    from mlwright.autopilot.loop import Autopilot
    from mlwright.autopilot.policy import Policy
    from mlwright.data.profile import ProblemDefinition
    from mlwright.monitor.overview import Overview
    from mlwright.package.export import Exported
    from mlwright.package.loading import tabular
    from mlwright.package.model import Model
    from mlwright.package.signing import Signature, Verdict
    from mlwright.package.tensor import TensorModel
    from mlwright.train.reproduce import Reproduction
    from mlwright.train.search import SearchStarted, Trial

# re-exported, imported on first use: the modules behind them import pandas, which the commands
# that only read the registry or handle keys do not need
_LAZY = {
    "Model": "mlwright.package.model",
    "TensorModel": "mlwright.package.tensor",
    "tabular": "mlwright.package.loading",
    "SearchStarted": "mlwright.train.search",
    "Trial": "mlwright.train.search",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlwright.api' has no attribute {name!r}")


Event = Callable[[str, Any], None]
"""What a training run reports as it goes: ``(kind, payload)``, e.g. ``("search",``
:class:`SearchStarted` ``)`` and ``("trial",`` :class:`Trial` ``)``."""

# --- profiling -----------------------------------------------------------------------------------


def profile(
    data: Any,
    target: str,
    *,
    sql: str | None = None,
    metric: str | None = None,
    task: str | None = None,
    settings: ProfileSettings | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ProblemDefinition:
    """Profile ``data`` for predicting ``target``: the task, the metric, every column's kind and
    role, and the warnings (leaks, ID-like columns, imbalance, ...). Nothing is trained.

    Args:
        data: A DataFrame, an Arrow table (polars, pyarrow), a CSV or Parquet path, or a
            SQLAlchemy URL with ``sql``.
        target: The column to predict.
        sql: The query to run when ``data`` is a database URL.
        metric: The metric training would optimise (default: chosen for the task).
        task: ``binary``, ``multiclass`` or ``regression`` (default: inferred from the target).
        settings: The profile's thresholds (default: :class:`~mlwright.config.ProfileSettings`).
        on_step: Called with a short description as each step starts (reading, checks, ...).

    Returns:
        The :class:`~mlwright.data.profile.ProblemDefinition`; it shows as a table in Jupyter.

    Raises:
        DataError: The data cannot be read, or the target is missing or unusable.
        ConfigError: ``task`` or ``metric`` is unknown.
    """
    from mlwright.data.profile import profile as run

    return run(data, target, sql=sql, metric=metric, task=task, settings=settings, on_step=on_step)


# --- training ------------------------------------------------------------------------------------


def train(
    data: Any,
    target: str,
    *,
    time_budget: float | None = None,
    max_trials: int | None = None,
    seed: int = 0,
    metric: str | None = None,
    task: str | None = None,
    name: str | None = None,
    out: str | Path | None = None,
    latency_budget_ms: float | None = None,
    max_model_mb: float | None = None,
    group_col: str | None = None,
    time_col: str | None = None,
    keep_cols: str | Sequence[str] = (),
    drop_cols: str | Sequence[str] = (),
    test_size: float | None = None,
    interval: float | None = None,
    families: str | Sequence[str] | None = None,
    n_folds: int = 5,
    threads: int | None = None,
    backend: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    workers: int | None = None,
    refit_on_test: bool | None = None,
    sample_rows: int | None = None,
    train_workers: int | None = None,
    experiment: str | None = None,
    tracker: str | Sequence[str] = ("mlflow",),
    features: FeatureSettings | Mapping[str, Any] | None = None,
    profile: ProfileSettings | Mapping[str, Any] | None = None,
    sql: str | None = None,
    progress: bool = True,
    verbose: bool = False,
) -> Model:
    """Train a model of ``target``: profile, plan, search, test, refit, track and register.

    The options are those of ``mlwright train`` (:class:`~mlwright.config.TrainOptions`), with
    the same defaults; they are checked before anything is read.

    Args:
        data: A DataFrame, an Arrow table (polars, pyarrow), a CSV or Parquet path, a
            directory or glob of Parquet files (a sample is searched; the final XGBoost model
            learns from every row, data-parallel on Ray with ``backend="ray"``), or a
            SQLAlchemy URL with ``sql``.
        target: The column to predict.
        time_budget: Seconds for the whole run (search, choice and final refit).
        max_trials: Stop the search after this many trials.
        seed: The one seed every random source derives from.
        metric: The metric to optimise (default: chosen for the task, e.g. ``roc_auc``).
        task: ``binary``, ``multiclass`` or ``regression`` (default: inferred from the target).
        name: The model's name in the package and the registry (default: from the data).
        out: Write the model package to this folder (default: none; call ``model.save``).
        latency_budget_ms: Prefer models that predict one row within this many milliseconds.
        max_model_mb: Prefer models whose package is at most this many megabytes.
        group_col: Validate with groups of this column (rows of a group stay in one fold).
        time_col: Validate in the time order of this column.
        keep_cols: Columns to keep that the profile would drop (one name or several).
        drop_cols: Columns to drop (one name or several).
        test_size: Share of rows held out as a test split, scored before the final refit
            (default: 0.2, or none on a table too small to spare one).
        interval: Regression: record prediction intervals at this level (e.g. 0.9).
        families: Only try these model families (default: the plan decides).
        n_folds: Cross-validation folds.
        threads: Threads per model (default: the cores this process may use; 1 per trial on
            Ray).
        backend: Where the search's trials run: ``local``, or ``ray`` (a Ray cluster).
        ray_address: With ``backend="ray"``: the cluster to join (default: a local runtime).
        workers: With ``backend="ray"``: trials at once (default: the cluster's CPUs /
            threads).
        refit_on_test: Refit the final model on the training and test rows together
            (default: the plan decides; on large data the test split's model is the final one).
        sample_rows: With a file set: rows of the seeded sample that profiling, the plan and
            the search use (default 200,000).
        train_workers: With a file set and ``backend="ray"``: workers of the data-parallel
            fit (default: the cluster's CPUs / threads, at most one per row group).
        experiment: The MLflow experiment (default: the model name).
        tracker: ``mlflow`` tracks and registers; ``wandb`` logs the run as well; ``none``
            turns tracking off.
        features: How columns become model inputs
            (:class:`~mlwright.config.FeatureSettings` or a mapping of its fields).
        profile: The profile's thresholds
            (:class:`~mlwright.config.ProfileSettings` or a mapping of its fields).
        sql: The query to run when ``data`` is a database URL.
        progress: Show the run's progress: a live display in Jupyter, one redrawn line on a
            terminal (nothing in logs or CI). ``False`` keeps the run silent.
        verbose: Let the model families print their own logs as well.

    Returns:
        The trained :class:`~mlwright.package.model.Model`; its report is ``model.report()``.

    Raises:
        ConfigError: An option is out of range or unknown, or options conflict.
        DataError: The data cannot be read or the target cannot be learned from it.
        TrainError: The run could not produce a model (e.g. the time budget is too small).

    Example:
        >>> model = mw.train(mw.load_dataset("Mroz"), target="work", max_trials=3)
    """
    options = _train_options(dict(locals()))
    from mlwright.notebook import training_progress

    shown = training_progress(target, progress)
    if shown is None:
        return train_with_options(data, options, sql=sql, verbose=verbose)
    try:
        model = train_with_options(data, options, sql=sql, on_event=shown, verbose=verbose)
    except BaseException as exc:
        shown.failed(exc)
        raise
    shown.finished(model)
    return model


def _train_options(given: dict[str, Any]) -> TrainOptions:
    """:func:`train`'s parameters, less the four that are not options, as TrainOptions
    (tests/notebook/test_api.py holds the two lists, and their defaults, equal)."""
    for key in ("data", "sql", "progress", "verbose"):
        del given[key]
    # None: not given; the settings' own defaults apply, or the plan decides
    for key in ("features", "profile", "test_size", "refit_on_test"):
        if given[key] is None:
            del given[key]
    if given["out"] is not None:  # a Path is written as text, as the CLI's --out
        given["out"] = str(given["out"])
    return TrainOptions.from_mapping(given, source="train options")


def train_with_options(
    data: Any,
    options: TrainOptions,
    *,
    sql: str | None = None,
    on_event: Event | None = None,
    verbose: bool = False,
    default_out: Path | None = None,
) -> Model:
    """:func:`train` with its options as one checked :class:`~mlwright.config.TrainOptions`
    (what ``mlwright train`` builds from its flags and ``--config``). ``on_event`` receives the
    run's progress (the plan, each trial, …); the package is written to ``options.out``, else to
    ``default_out/NAME`` when that is given, else not at all (call ``model.save``)."""
    from mlwright.data.files import is_file_set

    if sql is None and is_file_set(data):
        from mlwright.train.fulldata import train_files

        return train_files(
            data, options, on_event=on_event, verbose=verbose, default_out=default_out
        )
    if options.sample_rows is not None or options.train_workers is not None:
        from mlwright.errors import ConfigError

        raise ConfigError(
            "sample_rows and train_workers apply to training on a file set only",
            fix="pass a directory or a glob of Parquet files as the data, or leave them out",
        )
    from mlwright.train.runner import run_training

    return run_training(
        data, options, sql=sql, on_event=on_event, verbose=verbose, default_out=default_out
    )


def retrain(
    model: str | Path,
    *,
    data: Any = (),
    sql: str | None = None,
    from_store: str | Path | None = None,
    min_labels: int = 100,
    since: float | str | None = None,
    until: float | str | None = None,
    search: bool = False,
    time_budget: float | None = None,
    reason: str = "",
    out: str | Path | None = None,
    tracker: str | Sequence[str] | None = None,
    on_event: Event | None = None,
    default_out: Path | None = None,
) -> Model:
    """Retrain a model on new rows (``mlwright retrain``): by default its configurations are
    refit without a search (seconds, and the same model for the same rows); ``search=True``
    searches again within ``time_budget`` seconds. The new version keeps the model's columns,
    kinds and classes (so a server can A/B-test or swap it), registers as ``challenger`` while
    a champion exists, and records its lineage (parent, sources with digests, reason).

    Args:
        model: The model to retrain: ``NAME@ALIAS``, ``NAME/VERSION`` or a package folder.
        data: New labelled rows: a path, a frame, a database URL with ``sql``, or a list.
        from_store: A serving store: the model's predictions that received a true label or
            value through ``/v1/feedback``, with the features as they were sent.
        min_labels: The fewest labelled predictions the store must hold.
        since, until: The store's window (epoch seconds, ``6h``/``2d``/``1w`` ago, or a date).
        reason: Why, in words (recorded in the lineage, the run and the registry).

    Example:
        >>> challenger = mw.retrain("churn@champion", data="churn-2025-q1.csv")
    """
    from mlwright.autopilot.retrain import StoreSource
    from mlwright.autopilot.retrain import retrain as run
    from mlwright.monitor.overview import parse_since

    items = list(data) if isinstance(data, (list, tuple)) else ([] if data is None else [data])
    store = None
    if from_store is not None:
        start = since if not isinstance(since, str) else parse_since(since)
        end = until if not isinstance(until, str) else parse_since(until)
        store = StoreSource(Path(from_store), min_labels, start, end)
    trackers = (tracker,) if isinstance(tracker, str) else tracker
    return run(
        model,
        data=items,
        sql=sql,
        from_store=store,
        search=search,
        time_budget=time_budget,
        reason=reason,
        out=out,
        tracker=trackers,
        on_event=on_event,
        default_out=default_out,
    )


def train_torch(
    config: TorchConfig | str | Path,
    out: str | Path | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    verbose: bool = True,
    **objects: Any,
) -> TensorModel:
    """Train your own PyTorch model (``mlwright train-torch``): search its ranges when the
    config declares any, train, and write a tensor package, tracked and registered.

    Args:
        config: A :class:`~mlwright.torch.config.TorchConfig`, or its YAML file.
        out: The package folder (default: ``models/NAME``).
        checkpoint_dir: Write one checkpoint per epoch here.
        resume: Continue from the checkpoint a stopped run left in ``checkpoint_dir``.
        verbose: Print each epoch.
        **objects: ``model_factory``, ``data`` or ``loss`` given as Python objects instead of
            the import paths in the config.

    Returns:
        The trained :class:`~mlwright.package.tensor.TensorModel`.

    Raises:
        ConfigError: The config is invalid, or an import path does not resolve.
    """
    from mlwright.torch import train_torch as run

    return run(
        config,
        out,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        verbose=verbose,
        **objects,
    )


def train_keras(
    config: KerasConfig | str | Path,
    out: str | Path | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    verbose: bool = True,
    **objects: Any,
) -> TensorModel:
    """Train your own Keras 3 model (``mlwright train-keras``) on the config's backend (JAX by
    default, TensorFlow or PyTorch): search its ranges when the config declares any, train,
    and write a package holding the ``.keras`` model and the ONNX model the server runs,
    tracked and registered.

    Args:
        config: A :class:`~mlwright.keras.config.KerasConfig`, or its YAML file.
        out: The package folder (default: ``models/NAME``).
        checkpoint_dir: Write one checkpoint per epoch here.
        resume: Continue from the checkpoint a stopped run left in ``checkpoint_dir``.
        verbose: Print each epoch.
        **objects: ``model_factory`` or ``data`` given as Python objects instead of the import
            paths in the config.

    Returns:
        The trained :class:`~mlwright.package.tensor.TensorModel`, served by its ONNX model.

    Raises:
        ConfigError: The config is invalid, an import path does not resolve, or Keras already
            runs on another backend in this process.
    """
    from mlwright.keras import train_keras as run

    return run(config, out, checkpoint_dir=checkpoint_dir, resume=resume, verbose=verbose,
               **objects)  # fmt: skip


def train_jax(
    config: JaxConfig | str | Path,
    out: str | Path | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    verbose: bool = True,
    **objects: Any,
) -> TensorModel:
    """Train your own Flax NNX model with an optax optimiser (``mlwright train-jax``): search
    its ranges when the config declares any, train, and write a package holding the module's
    state (msgpack) and the ONNX model the server runs, tracked and registered.

    Args:
        config: A :class:`~mlwright.jax.config.JaxConfig`, or its YAML file.
        out: The package folder (default: ``models/NAME``).
        checkpoint_dir: Write one checkpoint per epoch here.
        resume: Continue from the checkpoint a stopped run left in ``checkpoint_dir``.
        verbose: Print each epoch.
        **objects: ``model_factory`` or ``data`` given as Python objects instead of the import
            paths in the config.

    Returns:
        The trained :class:`~mlwright.package.tensor.TensorModel`, served by its ONNX model.

    Raises:
        ConfigError: The config is invalid, or an import path does not resolve.
    """
    from mlwright.jax import train_jax as run

    return run(config, out, checkpoint_dir=checkpoint_dir, resume=resume, verbose=verbose,
               **objects)  # fmt: skip


def is_file_set(data: str | Path) -> bool:
    """Whether ``data`` names a directory or a glob of files, which :func:`predict_files`
    streams, rather than one table."""
    from mlwright.data.files import is_file_set as named

    return named(data)


def predict_files(
    model: str | Path,
    data: str | Path,
    output: str | Path,
    *,
    backend: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    workers: int | None = None,
    batch_rows: int | None = None,
    interval: float | None = None,
    on_file: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Score a directory (or a glob) of Parquet files of any size (``mlwright predict MODEL DIR
    -o OUT``): each file is read and scored in batches of ``batch_rows`` rows and written to the
    same relative path under ``output``, whole or not at all; on Ray, the files are scored in
    parallel by ``workers`` actors. Returns the files, their rows and the seconds it took.

    Example:
        >>> mw.api.predict_files("churn@champion", "lake/customers/", "scored/")
    """
    from mlwright.package.loading import load as load_reference
    from mlwright.package.loading import tabular
    from mlwright.package.streaming import BATCH_ROWS, partitions, score_files
    from mlwright.track.registry import resolve

    rows = batch_rows or BATCH_ROWS
    parts = partitions(data, Path(output))
    loaded = tabular(load_reference(model, resolve=resolve), "batch scoring")
    if backend == "ray":
        from mlwright.distributed.scoring import score_on_ray

        registry = loaded.registry or {}
        pinned = (  # every actor loads the version resolved here, even if the alias moves
            f"{registry['name']}/{registry['version']}"
            if registry.get("version")
            else str(Path(str(model)).resolve())
        )
        scored = score_on_ray(
            pinned, parts, address=ray_address, workers=workers, batch_rows=rows, interval=interval
        )
        if on_file is not None:
            for record in scored.files:
                on_file(record)
        return scored.to_dict()
    return score_files(loaded, parts, batch_rows=rows, interval=interval, on_file=on_file).to_dict()


def read_torch_config(path: str | Path) -> TorchConfig:
    """The :class:`TorchConfig` in a YAML file, checked (unknown keys fail)."""
    return TorchConfig.from_yaml(path)


def read_keras_config(path: str | Path) -> KerasConfig:
    """The :class:`KerasConfig` in a YAML file, checked (unknown keys fail)."""
    return KerasConfig.from_yaml(path)


def read_jax_config(path: str | Path) -> JaxConfig:
    """The :class:`JaxConfig` in a YAML file, checked (unknown keys fail)."""
    return JaxConfig.from_yaml(path)


# --- loading, reproducing, exporting, reporting --------------------------------------------------


def load(
    model: str | Path, *, threads: int | None = None, registry_only: bool = False
) -> Model | TensorModel:
    """Load a model package. Checksums (and signatures, under a trust policy) are verified
    before anything is deserialised.

    Args:
        model: A package folder, or a registry reference: ``NAME@ALIAS`` or ``NAME/VERSION``.
        threads: Threads one predict call may use (default: every core).
        registry_only: Refuse folders; accept registry references only.

    Returns:
        A :class:`~mlwright.package.model.Model`, or a
        :class:`~mlwright.package.tensor.TensorModel` for a package of ``mlwright train-torch``.

    Raises:
        PackageError: The folder is not a package, or its checksums or signature fail.
    """
    from mlwright.package.loading import load as load_reference
    from mlwright.track.registry import resolve

    loaded = load_reference(model, resolve=resolve, threads=threads, registry_only=registry_only)
    return with_reporter(loaded)


def load_run(run_id: str) -> tuple[Model | TensorModel, str]:
    """The model an MLflow training run logged, and how to name it: its registry reference
    (``NAME/VERSION``) when the run registered a version, else the local copy's folder."""
    from mlwright.track.registry import cached_run_package

    path, registered = cached_run_package(run_id)
    return load(path), registered or str(path)


def with_reporter(model: Model | TensorModel) -> Model | TensorModel:
    """``model``, able to render its ML Solution report (``model.report()``, and the report in
    the package ``model.save`` writes)."""
    from mlwright.package.model import Model

    if isinstance(model, Model):
        from mlwright.report import TabularReporter

        model.reporter = TabularReporter()
    else:
        from mlwright.report.tensor import TensorModelReporter

        model.reporter = TensorModelReporter()
    return model


def reproduce(model: Model | str | Path, data: Any = None, *, sql: str | None = None) -> Model:
    """Refit a model's final configuration from its recipe on its training data: the same rows,
    hyperparameters and seed, no search (``mlwright reproduce`` without the check).

    Args:
        model: A loaded model, a package folder or a registry reference.
        data: The training data (default: where the model's data was read from); data that
            differs from it (by digest) is refused.
        sql: The query to run when ``data`` is a database URL.

    Returns:
        The refitted :class:`~mlwright.package.model.Model`.
    """
    return check_reproduction(model, data, sql=sql).model


rebuild = reproduce  # the earlier name, kept: packages' report/rebuild.py scripts call it


def check_reproduction(
    model: Model | str | Path, data: Any = None, *, sql: str | None = None
) -> Reproduction:
    """:func:`reproduce` ``model`` and compare the result's outputs on the golden examples with
    the recorded ones (``mlwright reproduce``): ``.model``, and ``.mismatches``, one line per
    difference (empty when the model reproduces)."""
    from mlwright.package.loading import tabular
    from mlwright.package.model import Model
    from mlwright.train.reproduce import reproduce as run

    package = model if isinstance(model, Model) else tabular(load(model), "reproduce")
    return run(package, data, sql=sql)


def export(model: Model | TensorModel | str | Path, format: str, output: str | Path) -> Exported:
    """Export a model as ONNX or a Triton model repository (``mlwright export``), checked on
    its golden examples in onnxruntime before anything is written.

    Args:
        model: A loaded model, a package folder or a registry reference.
        format: ``onnx`` or ``triton``.
        output: The folder to write.

    Returns:
        What was written: ``.output``, ``.files`` and ``.max_difference`` (against the model's
        own predictions on its golden examples).
    """
    from mlwright.package.export import export as run
    from mlwright.package.model import Model
    from mlwright.package.tensor import TensorModel

    loaded = model if isinstance(model, (Model, TensorModel)) else load(model)
    return run(loaded, format, output)


def write_report(
    model: Model | TensorModel, output: str | Path, *, package_path: str | None = None
) -> Path:
    """Write ``model``'s ML Solution report to ``output`` (``.html``: one self-contained page;
    ``.md``: the Markdown with its plots beside it). ``package_path``: how the report names the
    package in the commands it shows (default: where the model was loaded from)."""
    from mlwright.package.model import Model

    if isinstance(model, Model):
        from mlwright.report import Report

        return Report.of(model, package_path=package_path).save(output)
    from mlwright.report.tensor import tensor_report

    return tensor_report(model, package_path=package_path).save(output)


def write_monitoring_report(result: Overview, output: str | Path) -> list[Path]:
    """Write the monitoring report of ``result`` (:func:`mlwright.monitor.overview.overview`)
    to ``output`` (``.html``, or ``.md`` with its plots beside it); returns the files written."""
    from mlwright.monitor.page import monitoring_report
    from mlwright.report.document import write

    return write(monitoring_report(result), Path(output))


# --- the model registry --------------------------------------------------------------------------


def tracking_uri() -> str:
    """The MLflow tracking store mlwright uses (``MLFLOW_TRACKING_URI``, else the embedded
    SQLite store in the working directory)."""
    from mlwright.track.mlflow import tracking_uri as uri

    return uri()


def parse_reference(ref: str) -> tuple[str, str | None, str | None] | None:
    """``(name, alias, version)`` of a registry reference (``NAME@ALIAS`` or ``NAME/VERSION``;
    one of alias and version is None), None for anything else (a folder, say)."""
    from mlwright.track.registry import parse

    return parse(ref)


def list_models() -> list[dict[str, Any]]:
    """Registered models: ``name``, ``versions`` (a count), ``latest`` and ``aliases``
    (alias → version)."""
    from mlwright.track.mlflow import list_models as run

    return run()


def show_model(name: str) -> dict[str, Any]:
    """Every version of a registered model (``versions``: version, aliases, metrics, run id,
    manifest checksum) and where each alias pointed before (``alias_history``)."""
    from mlwright.track.mlflow import show_model as run

    return run(name)


def alias_version(name: str, alias: str) -> str:
    """The version ``NAME@ALIAS`` points to."""
    from mlwright.track.mlflow import alias_version as run

    return run(name, alias)


def promote(name: str, version: str, alias: str = "champion") -> dict[str, Any]:
    """Point ``alias`` of ``name`` at ``version``, recording the move for :func:`rollback`;
    returns ``version`` and ``previous`` (None when the alias is new)."""
    from mlwright.track.mlflow import promote as run

    return run(name, version, alias)


def rollback(name: str, alias: str = "champion") -> dict[str, Any]:
    """Move ``alias`` of ``name`` back to the version it pointed to before; returns
    ``version`` and ``previous``."""
    from mlwright.track.mlflow import rollback as run

    return run(name, alias)


# --- signing keys and the trust policy -----------------------------------------------------------


def approve(name: str, version: str, *, by: str | None = None) -> dict[str, Any]:
    """Approve a registered version for promotion (``mlwright models approve``): a policy with
    ``promote.approval`` promotes a challenger that proved itself only once it is approved.
    Returns whether the continuous-training loop was waiting for this approval."""
    import getpass
    from datetime import UTC, datetime

    from mlwright.autopilot.loop import APPROVED_TAG, AWAITING_TAG
    from mlwright.track.mlflow import set_version_tags, version_facts

    who = by or os.environ.get("USER") or getpass.getuser()
    waiting = version_facts(name, version)["tags"].get(AWAITING_TAG)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    set_version_tags(name, version, {APPROVED_TAG: who, "mlwright.approved_at": when})
    return {"name": name, "version": str(version), "approved_by": who, "rollout": waiting}


def read_policy(path: str | Path) -> Policy:
    """The continuous-training policy in a YAML file, checked (a mistake names its field)."""
    from mlwright.autopilot.policy import Policy

    return Policy.load(Path(path))


def autopilot(
    policy: Policy | str | Path,
    *,
    server: str,
    store: str | Path = "mlwright-serve.db",
    token: str | None = None,
    tracking: bool = True,
) -> Autopilot:
    """The continuous-training loop for ``policy`` against the server at ``server`` (its admin
    routes, with ``token``, default ``MLWRIGHT_ADMIN_TOKEN``) and its serving store: call
    ``.step()`` once (what ``mlwright autopilot --once`` does) or in a loop."""
    from mlwright.autopilot.client import Server
    from mlwright.autopilot.loop import Autopilot

    chosen = policy if not isinstance(policy, (str, Path)) else read_policy(policy)
    given = token if token is not None else os.environ.get("MLWRIGHT_ADMIN_TOKEN") or None
    return Autopilot(chosen, server=Server(server, given), store=Path(store), tracking=tracking)


def new_key(name: str = "mlwright", folder: Path | None = None) -> tuple[Path, Path, str]:
    """Make an Ed25519 key pair ``NAME.key`` (private, owner-only) and ``NAME.pub`` in
    ``folder`` (default ``<config>/keys``); returns the two paths and the key's id."""
    from mlwright.package.signing import config_dir
    from mlwright.package.signing import new_key as make

    return make(folder or config_dir() / "keys", name)


def sign(folder: Path, key: Path | None = None) -> Signature | None:
    """Sign a package or export folder written without a key, after it passed its checksums.
    ``key``: the private key (default: ``MLWRIGHT_SIGNING_KEY``); None when there is none."""
    from mlwright.package.signing import sign as run
    from mlwright.package.signing import signing_key_path

    return run(folder, _checked(folder), key or signing_key_path())


def verify(folder: Path) -> Verdict:
    """Check a package or export folder: its checksums (an error when they fail), then its
    signature against the trust policy (the verdict says whether loading it is allowed)."""
    from mlwright.package.signing import check

    return check(folder, _checked(folder))


def trust(public: Path) -> tuple[Path, str]:
    """Trust a public key on this machine (copied into ``<config>/trusted-keys``): from then on
    every model loaded here must be signed by a trusted key. Returns the copy and the key id."""
    from mlwright.package.signing import trust as run

    return run(public)


def trusted_keys() -> list[str]:
    """The ids of the keys the trust policy accepts (none: signatures are checked, not
    required)."""
    from mlwright.package.signing import trusted_keys as keys

    return sorted(keys())


def _checked(folder: Path) -> str:
    """The file a signature of ``folder`` covers, after the folder passed its checksums."""
    from mlwright.package.export import MARKER, verify_export
    from mlwright.package.store import MANIFEST, PackageError, is_package, verify_package

    if is_package(folder):
        verify_package(folder, trust=False)
        return MANIFEST
    if (folder / MARKER).is_file():
        verify_export(folder, trust=False)
        return MARKER
    raise PackageError(
        f"{str(folder)!r} is neither an mlwright package nor an export",
        fix="pass a folder written by `mlwright train`, `train-torch` or `export`",
    )


__all__ = [
    "SIGNING_KEY_ENV",
    "TRUSTED_KEYS_ENV",
    "Event",
    "Model",
    "SearchStarted",
    "TensorModel",
    "TorchConfig",
    "TrainOptions",
    "Trial",
    "alias_version",
    "check_reproduction",
    "export",
    "list_models",
    "load",
    "load_run",
    "new_key",
    "parse_reference",
    "profile",
    "promote",
    "read_jax_config",
    "read_keras_config",
    "read_torch_config",
    "rebuild",
    "reproduce",
    "rollback",
    "show_model",
    "sign",
    "tabular",
    "tracking_uri",
    "train",
    "train_jax",
    "train_keras",
    "train_torch",
    "train_with_options",
    "trust",
    "trusted_keys",
    "verify",
    "with_reporter",
    "write_monitoring_report",
    "write_report",
]
