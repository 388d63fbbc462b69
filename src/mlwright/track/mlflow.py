"""MLflow: experiment tracking and the model registry. The only module that imports mlflow.

Store: ``MLFLOW_TRACKING_URI`` when set, else MLflow's own default (``sqlite:///mlflow.db`` with
artifacts under ``./mlruns`` in the working directory), so a plain ``mlflow ui`` there sees the
same runs. Remote stores get bounded timeouts and retries, and an unreachable one is reported
within seconds.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwright import __version__
from mlwright.errors import MlwrightError
from mlwright.track import sqlite_registry
from mlwright.track.base import Tracker, flatten

if TYPE_CHECKING:
    import pandas as pd

    from mlwright.package.model import Model
    from mlwright.package.tensor import TensorModel

# bounded remote calls (MLflow's defaults retry for minutes); a user's own settings win
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}
MANIFEST_TAG = "mlwright.manifest_sha256"
SIGNATURE_TAG = "mlwright.signature"
HISTORY_TAG = "mlwright.alias_history."


class TrackingError(MlwrightError):
    """The tracking store or the registry failed or cannot be reached."""


def tracking_uri() -> str:
    """The resolved tracking URI (without importing mlflow)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


@contextmanager
def _mlflow() -> Iterator[Any]:
    """mlflow, configured, with its warnings kept out of the user's way."""
    for key, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # a download is one step of a command: no progress bars of MLflow's on the user's terminal
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = tracking_uri()
    _check_reachable(uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow

        # no mlflow.set_tracking_uri: it would also rewrite the process's environment
        try:
            yield _Session(mlflow, uri)
        except MlwrightError:
            raise
        except mlflow.exceptions.MlflowException as exc:
            raise TrackingError(
                f"MLflow at {_shown(uri)} failed: {str(exc).splitlines()[0]}",
                fix="check MLFLOW_TRACKING_URI and that the tracking server is healthy",
            ) from None


class _Session:
    """mlflow plus a client bound to this call's tracking and registry URIs (no globals)."""

    def __init__(self, mlflow: Any, uri: str) -> None:
        self.mlflow = mlflow
        self.exceptions = mlflow.exceptions
        self.pyfunc = mlflow.pyfunc
        self.data = mlflow.data
        self.artifacts = mlflow.artifacts
        registry = os.environ.get("MLFLOW_REGISTRY_URI") or uri
        self.client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=registry)

    def MlflowClient(self) -> Any:
        return self.client


def _artifact_root(uri: str | None) -> str | None:
    """Artifacts of a SQLite store go to ``mlruns`` beside the database file: for the default
    ``./mlflow.db`` that is MLflow's own ``./mlruns``, and a store elsewhere keeps its artifacts
    with it instead of in whatever folder the command ran from."""
    if not uri or not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    return (db.parent.resolve() / "mlruns").as_uri()


def _shown(uri: str) -> str:
    return uri.split("@")[-1] if "@" in uri else uri


@functools.cache
def _check_reachable(uri: str) -> None:
    """Fail within seconds when a tracking server is down (checked once per process)."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
            response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {_shown(uri)} ({reason})",
            fix="start the server, fix MLFLOW_TRACKING_URI, or unset it to use the local mlflow.db",
        ) from None


# --- tracking ------------------------------------------------------------------------------------


class MlflowTracker(Tracker):
    active = True

    def __init__(self) -> None:
        self.uri = tracking_uri()
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.model_name: str | None = None

    def start(
        self, *, experiment: str, run_name: str, params: dict[str, Any], tags: dict[str, str]
    ) -> None:
        with _mlflow() as mlflow:
            from mlflow.entities import Param, RunTag

            client = mlflow.MlflowClient()
            found = client.get_experiment_by_name(experiment)
            self.experiment_id = (
                found.experiment_id
                if found is not None
                else client.create_experiment(
                    experiment, artifact_location=_artifact_root(self.uri)
                )
            )
            run = client.create_run(self.experiment_id, run_name=run_name, tags=tags)
            self.run_id = run.info.run_id
            flat = flatten(params)
            items = [Param(k, v) for k, v in flat.items()]
            for start in range(0, len(items), 100):
                client.log_batch(self.run_id, params=items[start : start + 100])
            client.log_batch(self.run_id, tags=[RunTag("mlwright.version", __version__)])

    def log_dataset(
        self, frame: pd.DataFrame, *, source: str, name: str, target: str, digest: str
    ) -> None:
        assert self.run_id is not None
        with _mlflow() as mlflow:
            from mlflow.entities import DatasetInput, InputTag

            dataset = mlflow.data.from_pandas(
                frame, source=source, name=name, targets=target, digest=digest[:36]
            )
            entity = dataset._to_mlflow_entity()
            mlflow.MlflowClient().log_inputs(
                self.run_id,
                datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context", "training")])],
            )

    def log_dict(self, value: dict[str, Any], filename: str) -> None:
        assert self.run_id is not None
        with _mlflow() as mlflow:
            mlflow.MlflowClient().log_dict(self.run_id, value, filename)

    def log_folder(self, folder: Path, artifact_path: str) -> None:
        assert self.run_id is not None
        with _mlflow() as mlflow:
            mlflow.MlflowClient().log_artifacts(self.run_id, str(folder), artifact_path)

    def log_trial(
        self, trial: dict[str, Any], metric: str, curves: list[tuple[str, float, int]]
    ) -> None:
        assert self.run_id is not None and self.experiment_id is not None
        with _mlflow() as mlflow:
            from mlflow.entities import Metric, Param, RunTag

            client = mlflow.MlflowClient()
            child = client.create_run(
                self.experiment_id,
                run_name=f"trial {trial['number']} {trial['family']}",
                tags={
                    "mlflow.parentRunId": self.run_id,
                    "mlwright.family": trial["family"],
                    "mlwright.trial": str(trial["number"]),
                    "mlwright.status": trial["status"],
                    "mlwright.source": trial["source"],
                },
            )
            now = int(time.time() * 1000)
            metrics = [
                Metric(f"fold_{k}_{metric}", float(v), now, 0)
                for k, v in enumerate(trial["fold_scores"])
            ]
            if trial["mean"] is not None:
                metrics.append(Metric(f"mean_{metric}", float(trial["mean"]), now, 0))
            if trial.get("std") is not None:
                metrics.append(Metric(f"std_{metric}", float(trial["std"]), now, 0))
            metrics.append(Metric("seconds", float(trial["seconds"]), now, 0))
            if trial.get("predict_ms") is not None:
                metrics.append(Metric("predict_ms", float(trial["predict_ms"]), now, 0))
            metrics += [Metric(key, float(value), now, step) for key, value, step in curves]
            params = [Param(k, v) for k, v in flatten(trial["params"]).items()]
            params.append(Param("family", trial["family"]))
            tags = [RunTag("mlwright.error", trial["error"][:5000])] if trial.get("error") else []
            for start in range(0, max(len(metrics), 1), 1000):
                client.log_batch(
                    child.info.run_id,
                    metrics=metrics[start : start + 1000],
                    params=params if start == 0 else [],
                    tags=tags if start == 0 else [],
                )
            client.set_terminated(
                child.info.run_id, "FAILED" if trial["status"] == "failed" else "FINISHED"
            )

    def log_metrics(self, metrics: dict[str, float]) -> None:
        assert self.run_id is not None
        with _mlflow() as mlflow:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            mlflow.MlflowClient().log_batch(
                self.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()]
            )

    def log_step(self, metrics: dict[str, float], step: int) -> None:
        assert self.run_id is not None
        with _mlflow() as mlflow:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            mlflow.MlflowClient().log_batch(
                self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()]
            )

    def log_model(self, model: Model | TensorModel, package: Path) -> dict[str, Any] | None:
        """Log the package as an MLflow pyfunc model, then register a version of it.

        Registration comes last: a run killed before it leaves no version behind."""
        assert self.run_id is not None
        with _mlflow() as mlflow:
            client = mlflow.MlflowClient()
            staging = Path(tempfile.mkdtemp(prefix="mlwright-mlflow-"))
            try:
                local = staging / "model"
                mlflow.pyfunc.save_model(
                    path=str(local),
                    loader_module="mlwright.package.pyfunc",
                    data_path=str(package),
                    pip_requirements=_requirements(package),
                    signature=_signature(model),
                    input_example=_input_example(model),
                )
                client.log_artifacts(self.run_id, str(local), "model")
            finally:
                import shutil

                shutil.rmtree(staging, ignore_errors=True)
            name = model.name
            try:
                client.get_registered_model(name)
            except mlflow.exceptions.MlflowException:
                client.create_registered_model(name, description=f"mlwright model {name!r}")
            source = f"runs:/{self.run_id}/model"
            version = client.create_model_version(
                name,
                source,
                run_id=self.run_id,
                tags=_version_tags(package) | _lineage_tags(model),
            )
            _wait_ready(client, name, version.version)
            registered = client.get_registered_model(name)
            alias = "champion" if "champion" not in (registered.aliases or {}) else "challenger"
            _set_alias(client, name, alias, str(version.version))
            client.set_tag(self.run_id, "mlwright.registered_version", f"{name}/{version.version}")
            return {
                "name": name,
                "version": str(version.version),
                "alias": alias,
                "run_id": self.run_id,
                "tracking_uri": _shown(self.uri or ""),
            }

    def finish(self, ok: bool, *, killed: bool = False) -> None:
        if self.run_id is None:
            return
        status = "FINISHED" if ok else "KILLED" if killed else "FAILED"
        with _mlflow() as mlflow:
            mlflow.MlflowClient().set_terminated(self.run_id, status)


def _version_tags(package: Path) -> dict[str, str]:
    """What a registered version records of its package: the manifest's checksum and, when the
    package is signed, its signature (both checked on every load)."""
    from mlwright.package.signing import read_signature
    from mlwright.package.store import manifest_digest

    tags = {MANIFEST_TAG: manifest_digest(package), "mlwright.version": __version__}
    signature = read_signature(package)
    if signature is not None:
        tags[SIGNATURE_TAG] = signature.tag()
    return tags


def _lineage_tags(model: Model | TensorModel) -> dict[str, str]:
    """A retrained version's parent, reason and data sources (``mlwright retrain``)."""
    lineage = getattr(model.recipe, "lineage", None)
    return {} if lineage is None else lineage.tags()


def _requirements(package: Path) -> list[str]:
    lines = (package / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def _signature(model: Model | TensorModel) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    from mlwright.package.tensor import TensorModel

    if isinstance(model, TensorModel):  # one tensor per input, batch first
        import numpy as np

        tensors: list[Any] = [
            TensorSpec(
                np.dtype("float32" if s.dtype in ("float16", "bfloat16") else s.dtype),
                (-1, *[d or -1 for d in s.shape]),
                s.name,
            )
            for s in model.inputs
        ]
        return ModelSignature(inputs=Schema(tensors))

    from mlwright.package.store import mlflow_inputs

    inputs = Schema.from_json(json.dumps(mlflow_inputs(model.schema)))  # as in the MLmodel
    outputs_spec: list[Any] = [
        ColSpec("double" if model.task == "regression" else "string", "prediction")
    ]
    outputs_spec += [ColSpec("double", f"proba_{c}") for c in model.classes or ()]
    return ModelSignature(inputs=inputs, outputs=Schema(outputs_spec))


def _input_example(model: Model | TensorModel) -> Any:
    import pandas as pd

    from mlwright.package.tensor import TensorModel

    if not model.golden or isinstance(model, TensorModel):
        return None
    from mlwright.package.store import mlflow_inputs

    frame = pd.DataFrame.from_records(model.golden["inputs"][:5])
    numbers = {"long": "int64", "double": "float64"}  # as the signature types them
    try:
        for column in mlflow_inputs(model.schema):
            name = column["name"]
            if name in frame and column["type"] in numbers:
                frame[name] = frame[name].astype(numbers[column["type"]])
            elif name in frame and column["type"] == "datetime":  # ISO text in golden examples
                frame[name] = pd.to_datetime(frame[name])
    except (TypeError, ValueError):  # a missing value in a `long` column: no example
        return None
    return frame


def _wait_ready(client: Any, name: str, version: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get_model_version(name, version).status == "READY":
            return
        time.sleep(0.2)
    raise TrackingError(
        f"model version {name}/{version} did not become ready", fix="check the registry server"
    )


# --- registry ------------------------------------------------------------------------------------


def _history(client: Any, name: str, alias: str) -> list[str]:
    tags = client.get_registered_model(name).tags or {}
    raw = tags.get(HISTORY_TAG + alias)
    return list(json.loads(raw)) if raw else []


def _set_alias(client: Any, name: str, alias: str, version: str) -> None:
    history = _history(client, name, alias)
    if not history or history[-1] != version:
        history.append(version)
    client.set_registered_model_alias(name, alias, version)
    client.set_registered_model_tag(name, HISTORY_TAG + alias, json.dumps(history[-100:]))


def list_models() -> list[dict[str, Any]]:
    fast = sqlite_registry.list_models(tracking_uri())
    return _list_models() if fast is None else fast


def _list_models() -> list[dict[str, Any]]:
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        out = []
        for rm in client.search_registered_models():
            versions = client.search_model_versions(f"name='{rm.name}'")
            out.append(
                {
                    "name": rm.name,
                    "versions": len(versions),
                    "latest": max((int(v.version) for v in versions), default=None),
                    "aliases": dict(rm.aliases or {}),
                }
            )
        return sorted(out, key=lambda m: m["name"])


def show_model(name: str) -> dict[str, Any]:
    fast = sqlite_registry.show_model(tracking_uri(), name, MANIFEST_TAG, HISTORY_TAG)
    return _show_model(name) if fast is None else fast


def _show_model(name: str) -> dict[str, Any]:
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        rm = _registered(client, name)
        versions = []
        for v in sorted(
            client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)
        ):
            metrics: dict[str, float] = {}
            if v.run_id:
                try:
                    metrics = dict(client.get_run(v.run_id).data.metrics)
                except mlflow.exceptions.MlflowException:
                    metrics = {}
            versions.append(
                {
                    "version": str(v.version),
                    "aliases": [
                        a for a, ver in (rm.aliases or {}).items() if str(ver) == str(v.version)
                    ],
                    "created": v.creation_timestamp,
                    "run_id": v.run_id,
                    "manifest_sha256": (v.tags or {}).get(MANIFEST_TAG),
                    "metrics": metrics,
                }
            )
        history = {a: _history(client, name, a) for a in (rm.aliases or {})}
        return {
            "name": name,
            "aliases": dict(rm.aliases or {}),
            "versions": versions,
            "alias_history": history,
        }


def _registered(client: Any, name: str) -> Any:
    import mlflow

    try:
        return client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        names = [m.name for m in client.search_registered_models()]
        from mlwright.errors import suggest

        hint = suggest(name, names).replace("columns", "models") if names else "none is registered"
        raise TrackingError(
            f"no registered model named {name!r}; {hint}",
            fix="`mlwright models list` shows the registered models",
        ) from None


def _version(mlflow: Any, client: Any, name: str, version: str) -> Any:
    """The registered version ``name/version``, or an error naming it and where to look."""
    try:
        return client.get_model_version(name, str(version))
    except mlflow.exceptions.MlflowException:
        raise TrackingError(
            f"model {name!r} has no version {version}",
            fix=f"`mlwright models show {name}` lists its versions",
        ) from None


def promote(name: str, version: str, alias: str = "champion") -> dict[str, Any]:
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        _registered(client, name)
        _version(mlflow, client, name, version)
        previous = (client.get_registered_model(name).aliases or {}).get(alias)
        _set_alias(client, name, alias, str(version))
        return {"name": name, "alias": alias, "version": str(version), "previous": previous}


def alias_version(name: str, alias: str) -> str:
    """The version ``NAME@ALIAS`` points at."""
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        _registered(client, name)
        try:
            return str(client.get_model_version_by_alias(name, alias).version)
        except mlflow.exceptions.MlflowException:
            raise TrackingError(
                f"model {name!r} has no alias {alias!r}",
                fix=f"`mlwright models show {name}` lists its aliases",
            ) from None


def rollback(name: str, alias: str = "champion") -> dict[str, Any]:
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        _registered(client, name)
        history = _history(client, name, alias)
        if len(history) < 2:
            raise TrackingError(
                f"{name}@{alias} has no earlier version to roll back to (history: {history})",
                fix=f"promote a version explicitly: mlwright models promote {name} VERSION",
            )
        current = history.pop()
        client.set_registered_model_alias(name, alias, history[-1])
        client.set_registered_model_tag(name, HISTORY_TAG + alias, json.dumps(history))
        return {"name": name, "alias": alias, "version": history[-1], "previous": current}


def find_version(
    name: str, *, alias: str | None = None, version: str | None = None
) -> tuple[str, dict[str, str]]:
    """The registered version ``NAME@ALIAS`` or ``NAME/VERSION`` names, with its tags (read
    straight from a local SQLite store; MLflow answers for any other, and words a miss)."""
    fast = sqlite_registry.find_version(tracking_uri(), name, alias=alias, version=version)
    return _find_version(name, alias=alias, version=version) if fast is None else fast


def _find_version(
    name: str, *, alias: str | None = None, version: str | None = None
) -> tuple[str, dict[str, str]]:
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        _registered(client, name)
        try:
            mv = (
                client.get_model_version_by_alias(name, alias)
                if alias
                else client.get_model_version(name, str(version))
            )
        except mlflow.exceptions.MlflowException:
            what = f"alias {alias!r}" if alias else f"version {version}"
            raise TrackingError(
                f"model {name!r} has no {what}",
                fix=f"`mlwright models show {name}` lists versions and aliases",
            ) from None
        return str(mv.version), dict(mv.tags or {})


def download_version(name: str, version: str, target: Path) -> Path:
    """Download a registered version's files into ``target``; returns its package folder."""
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=client.get_model_version_download_uri(name, version),
                dst_path=str(target),
            )
        )
        packages = [p.parent for p in local.rglob("mlwright.json")]
        if len(packages) != 1:
            raise TrackingError(
                f"{name}/{version} holds no mlwright package",
                fix="register models with `mlwright train`",
            )
        return packages[0]


def download_run_package(run_id: str, target: Path) -> tuple[Path, str | None]:
    """Download the package a training run logged into ``target``; returns (package folder,
    the run's registered ``NAME/VERSION`` or None)."""
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        try:
            run = client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            raise TrackingError(
                f"no run {run_id!r} in the tracking store {_shown(tracking_uri())}",
                fix="check the run id (`mlflow ui` lists runs), or MLFLOW_TRACKING_URI",
            ) from None
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path="model", dst_path=str(target)
                )
            )
        except (mlflow.exceptions.MlflowException, OSError):
            local = target
        packages = [p.parent for p in local.rglob("mlwright.json")]
        if len(packages) != 1:
            raise TrackingError(
                f"run {run_id!r} holds no mlwright model package (is it a trial's run?)",
                fix="pass the training run (the parent of the trial runs), or a package folder",
            )
        return packages[0], run.data.tags.get("mlwright.registered_version")


def version_facts(name: str, version: str) -> dict[str, Any]:
    """A registered version's tags, run and registration time (epoch seconds)."""
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        mv = _version(mlflow, client, name, version)
        return {
            "tags": dict(mv.tags or {}),
            "run_id": mv.run_id,
            "created": (mv.creation_timestamp or 0) / 1000.0,
        }


def set_version_tags(name: str, version: str, tags: dict[str, str]) -> None:
    """Tag a registered version (e.g. its approval for promotion)."""
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        _version(mlflow, client, name, version)
        for key, value in tags.items():
            client.set_model_version_tag(name, str(version), key, value)


def versions_tagged(name: str, key: str, value: str) -> list[str]:
    """The versions of ``name`` whose tag ``key`` is ``value``, oldest first."""
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        found = client.search_model_versions(f"name = '{_quoted(name)}'")
        return sorted(
            (str(mv.version) for mv in found if (mv.tags or {}).get(key) == value), key=int
        )


def log_decision(
    experiment: str, name: str, reason: str, evidence: dict[str, Any], tags: dict[str, str]
) -> str:
    """One decision as a finished MLflow run of ``experiment``: the reason as its description,
    the evidence as ``evidence.json``; returns the run's id."""
    with _mlflow() as mlflow:
        client = mlflow.MlflowClient()
        found = client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id if found is not None else client.create_experiment(experiment)
        )
        run = client.create_run(
            experiment_id, run_name=name, tags={**tags, "mlflow.note.content": reason}
        )
        run_id = str(run.info.run_id)
        try:
            client.log_dict(run_id, evidence, "evidence.json")
        finally:
            client.set_terminated(run_id, "FINISHED")
        return run_id


def log_files(run_id: str, folder: Path, artifact_path: str) -> None:
    """Write ``folder``'s files as artifacts of an existing run (replacing those of the same
    names)."""
    with _mlflow() as mlflow:
        mlflow.MlflowClient().log_artifacts(run_id, str(folder), artifact_path)


def _quoted(name: str) -> str:
    return name.replace("'", "''")
