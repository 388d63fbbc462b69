"""The model package on disk: write it atomically, verify its checksums, load it.

Layout (CONTRACTS.md): ``MLmodel``, ``mlwright.json`` (format, versions, checksum manifest),
``schema.json``, ``recipe.json``, ``metrics.json``, ``reference.json`` (the monitoring
reference), ``model/`` (native files: LightGBM text, XGBoost UBJSON, CatBoost ``.cbm``, skops,
torch state_dict; and ``family.json``), ``scorer/`` (feature encoder and post-processing),
``golden/`` (inputs and expected outputs for the deployment gate). Loading verifies every
checksum before any model file is deserialised and refuses files the manifest does not know.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwright import __version__
from mlwright.config import usable_cores
from mlwright.data.schema import ColumnSchema, TableSchema
from mlwright.errors import MlwrightError
from mlwright.package import signing
from mlwright.package.model import Model, Reporter
from mlwright.package.recipe import TENSOR_KINDS, Recipe
from mlwright.train.models import FitContext, get_family
from mlwright.train.models.features import FeatureEncoder

if TYPE_CHECKING:
    from mlwright.package.tensor import TensorModel

FORMAT_VERSION = 1
MLWRIGHT_DIRS = ("model", "scorer", "golden", "report")
MANIFEST = "mlwright.json"
EVIDENCE = "evaluation.json"
# files that MLflow owns or may add; never in the manifest, never deserialised by mlwright
MLFLOW_OWNED = frozenset(
    {
        "MLmodel",
        "requirements.txt",
        "python_env.yaml",
        "conda.yaml",
        "input_example.json",
        "serving_input_example.json",
        "registered_model_meta",
    }
)


class PackageError(MlwrightError):
    """A model package is missing, incomplete, modified or from an unknown format."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, value: Any) -> None:
    path.write_text(
        json.dumps(value, indent=2, ensure_ascii=False, default=_json_default) + "\n",
        encoding="utf-8",
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def is_package(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def save_package(
    model: Model, path: Path, *, overwrite: bool = True, reporter: Reporter | None = None
) -> Path:
    """Write ``model`` to ``path`` atomically: a complete package or nothing. ``reporter``
    renders ``report/`` from the model's evidence; without one the package keeps the evidence
    (``report/evaluation.json``), from which ``mlwright report`` renders the report."""
    return write_atomically(
        path,
        lambda staging, final: _write_contents(model, staging, final, reporter),
        overwrite=overwrite,
    )


def check_destination(
    path: Path,
    *,
    overwrite: bool = True,
    replaces: Callable[[Path], bool] = is_package,
    what: str = "an mlwright package",
    option: str = "--out",
) -> Path:
    """``path`` resolved, when :func:`write_atomically` may write there: it does not exist, is
    an empty folder, or ``replaces`` recognises it (``what``). Callers check it before long work
    (training) as well as when writing."""
    path = path.resolve()
    if path.exists() and not replaces(path) and (not path.is_dir() or any(path.iterdir())):
        raise PackageError(
            f"{path} exists and is not {what}; refusing to overwrite it",
            fix=f"choose another {option} folder, or remove it",
        )
    if path.exists() and not overwrite:
        raise PackageError(f"{path} already exists", fix="choose another folder")
    return path


def write_atomically(
    path: Path,
    fill: Callable[[Path, Path], None],
    *,
    overwrite: bool = True,
    replaces: Callable[[Path], bool] = is_package,
    what: str = "an mlwright package",
    option: str = "--out",
) -> Path:
    """Stage a folder beside ``path`` (``fill(staging, final)`` writes its files), then
    rename it over ``path``: the whole folder or nothing. An existing ``path`` is replaced
    only when it is empty or ``replaces`` recognises it (``what``)."""
    path = check_destination(path, overwrite=overwrite, replaces=replaces, what=what, option=option)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp creates it private; a package is an ordinary folder
    try:
        fill(staging, path)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "pkg")
            os.replace(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def write_manifest(root: Path, name: str, created: str | None, kind: str = "tabular") -> None:
    """``mlwright.json``: the checksum of every file mlwright wrote (MLflow's files excluded)."""
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).as_posix() not in MLFLOW_OWNED
    )
    manifest = {
        "format_version": FORMAT_VERSION,
        "mlwright_version": __version__,
        "name": name,
        "created_utc": created,
        "files": {f: sha256(root / f) for f in files},
    }
    if kind != "tabular":
        manifest["kind"] = kind
    write_json(root / MANIFEST, manifest)
    signing.sign(root, MANIFEST)  # when MLWRIGHT_SIGNING_KEY names a key


def _write_contents(model: Model, root: Path, final: Path, reporter: Reporter | None) -> None:
    for sub in ("model", "scorer", "golden"):
        (root / sub).mkdir()
    write_json(root / "schema.json", model.schema.to_dict())
    write_json(root / "recipe.json", model.recipe.to_dict())
    write_json(root / "metrics.json", model.metrics)
    if model.reference is not None:
        write_json(root / "reference.json", model.reference)
    family = model.family
    native = family.save(root / "model")
    write_json(
        root / "model" / "family.json",
        {
            "name": family.name,
            "view": family.view,
            "params": family.params,
            "fitted": family.fitted_,
            "files": native,
        },
    )
    write_json(root / "scorer" / "features.json", model.encoder.state())
    write_json(
        root / "scorer" / "postprocess.json",
        {
            "task": model.task,
            "classes": None if model.classes is None else list(model.classes),
            "threshold": model.threshold,
            "residual_quantiles": model.residual_quantiles,
            "n_residuals": model.n_residuals,
            "temperature": model.temperature,
            "name": model.name,
        },
    )
    golden = model.golden
    if golden is not None:
        write_json(root / "golden" / "inputs.json", golden["inputs"])
        write_json(root / "golden" / "expected.json", golden["expected"])
    _write_report(model, root, final, reporter)
    _write_mlmodel(model, root)
    write_manifest(root, model.name, model.recipe.created_utc)


def _write_report(model: Model, root: Path, final: Path, reporter: Reporter | None) -> None:
    """``report/``: the evaluation evidence and the report ``reporter`` renders from it."""
    if model.evidence is None:
        return
    (root / "report").mkdir()
    write_json(root / "report" / EVIDENCE, model.evidence)
    if reporter is not None:
        reporter.write(model, root, final)


def _write_mlmodel(model: Model, root: Path) -> None:
    inputs = mlflow_inputs(model.schema)
    if model.task == "regression":
        outputs = [{"type": "double", "name": "prediction", "required": True}]
    else:
        outputs = [{"type": "string", "name": "prediction", "required": True}] + [
            {"type": "double", "name": f"proba_{c}", "required": True} for c in model.classes or ()
        ]
    write_mlflow_files(root, inputs, outputs, _requirements(model), model.recipe.created_utc)


def _requirements(model: Model) -> list[str]:
    """The libraries the model's families need (each family's ``requirement``), pinned to the
    versions it was trained with, in the plan's order of the families."""
    versions = model.recipe.library_versions
    families = sorted({get_family(c) for c in model.family.components}, key=lambda f: f.plan_order)
    needed = dict.fromkeys(f.requirement for f in families if f.requirement is not None)
    return [f"{pkg}=={versions[key]}" for key, pkg in needed if versions.get(key)]


def write_mlflow_files(
    root: Path,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]] | None,
    requirements: list[str],
    created: str | None,
) -> None:
    """``MLmodel`` (a pyfunc flavor loaded by mlwright's package loader, with the signature),
    ``requirements.txt`` (mlwright and ``requirements``) and ``python_env.yaml``."""
    import yaml

    mlmodel = {
        "flavors": {
            "python_function": {
                "loader_module": "mlwright.package.pyfunc",
                "data": ".",
                "python_version": platform.python_version(),
                "env": {"virtualenv": "python_env.yaml"},
            }
        },
        "signature": {
            "inputs": json.dumps(inputs),
            "outputs": None if outputs is None else json.dumps(outputs),
            "params": None,
        },
        "utc_time_created": created or datetime.now(UTC).isoformat(),
    }
    (root / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False), encoding="utf-8")
    reqs = [f"mlwright=={__version__}", *requirements]
    (root / "requirements.txt").write_text("\n".join(reqs) + "\n", encoding="utf-8")
    (root / "python_env.yaml").write_text(
        yaml.safe_dump(
            {
                "python": platform.python_version(),
                "build_dependencies": ["pip"],
                "dependencies": ["-r requirements.txt"],
            }
        ),
        encoding="utf-8",
    )


def mlflow_inputs(schema: TableSchema) -> list[dict[str, Any]]:
    """The input columns of the model's MLflow signature (``MLmodel``, and the copy logged to
    MLflow): every feature, required, typed by :func:`mlflow_type`."""
    return [{"type": mlflow_type(c), "name": c.name, "required": True} for c in schema.features]


def mlflow_type(column: ColumnSchema) -> str:
    """A feature's MLflow type: the type of the training column as pandas held it, so that a
    frame read the same way (``pd.read_csv``, say) passes MLflow's own check before mlwright's
    schema reads it. MLflow refuses to narrow a type (int64 into ``double``, floats into
    ``long``), so integers are ``long`` only where the column had no missing value (one makes
    pandas read it as floats); dates read from text stay text (mlwright parses them with the
    format it recorded), dates held as datetimes are ``datetime``."""
    dtype = column.source_dtype.lower()
    if dtype.startswith("datetime64") and "," not in dtype:  # "datetime64[ns, UTC]": zoned
        return "datetime"
    if dtype in ("bool", "boolean"):
        return "boolean"
    if dtype.startswith(("int", "uint")):
        return "long" if column.n_missing == 0 else "double"
    if dtype.startswith("float") or column.kind in ("numeric", "integer"):
        return "double"
    return "string"


# --- loading --------------------------------------------------------------------------------------


def verify_package(path: Path, *, trust: bool = True) -> dict[str, Any]:
    """Check the manifest against every file, then (``trust``) the signature against the trust
    policy; returns the manifest. Raises PackageError or SignatureError."""
    if not path.exists():
        raise PackageError(f"model package {str(path)!r} does not exist", fix="check the path")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise PackageError(
            f"{str(path)!r} is not an mlwright model package (no {MANIFEST})",
            fix="pass the folder that `mlwright train --out` wrote",
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files: dict[str, str] = manifest["files"]
        version = manifest["format_version"]
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise TypeError("'files' is not a mapping of paths to checksums")
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise PackageError(f"{manifest_path} is damaged ({exc})", fix="retrain the model") from None
    if version != FORMAT_VERSION:
        raise PackageError(
            f"package format {version!r} is not supported (this mlwright reads {FORMAT_VERSION})",
            fix="use the mlwright version that wrote it, or retrain",
        )
    problems = _layout_problems(path, files) or file_problems(path, files)
    problems += _mlmodel_problems(path)
    if problems:
        raise PackageError(
            f"model package {str(path)!r} failed verification: " + "; ".join(problems[:10]),
            fix="do not edit a package by hand; retrain, or restore it from the registry",
        )
    if trust:
        signing.check(path, MANIFEST)  # the trust policy: who wrote the manifest
    return dict(manifest)


def _layout_problems(path: Path, files: dict[str, str]) -> list[str]:
    """Links, and files neither the manifest nor MLflow accounts for; checked before any file
    is read, so that nothing outside the folder is ever opened."""
    problems = [
        f"{rel!r} points outside the package"
        for rel in files
        if rel.startswith("/") or ".." in rel.split("/")
    ]
    known = {*files, MANIFEST, signing.SIGNATURE, *MLFLOW_OWNED}
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        if p.is_symlink():  # mlwright writes none; one could make a loader read another file
            problems.append(f"{rel} is a symbolic link")
        elif p.is_file() and rel not in known:
            problems.append(f"{rel} is not in the manifest")
    return problems


def file_problems(path: Path, files: dict[str, str]) -> list[str]:
    """Listed files that are missing or whose SHA-256 differs (packages and exports)."""
    problems = []
    for rel, digest in files.items():
        if not (path / rel).is_file():
            problems.append(f"{rel} is missing")
        elif sha256(path / rel) != digest:
            problems.append(f"{rel} was modified (checksum mismatch)")
    return problems


def _mlmodel_problems(path: Path) -> list[str]:
    """``MLmodel`` is MLflow's file and outside the manifest, but MLflow's loader imports the
    module it names: it must name mlwright's loader and bring no code of its own."""
    if not (path / "MLmodel").is_file():
        return []
    import yaml

    try:
        mlmodel = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8"))
        flavors = mlmodel["flavors"]
        pyfunc = flavors["python_function"]
    except (yaml.YAMLError, UnicodeDecodeError, KeyError, TypeError):
        return ["MLmodel is not the pyfunc description mlwright writes"]
    problems = []
    if set(flavors) != {"python_function"}:
        problems.append(f"MLmodel declares flavors {sorted(flavors)}; mlwright writes one")
    if pyfunc.get("loader_module") != "mlwright.package.pyfunc":
        problems.append(f"MLmodel names the loader {pyfunc.get('loader_module')!r}")
    if pyfunc.get("code") or pyfunc.get("artifacts") or mlmodel.get("code"):
        problems.append("MLmodel brings code or artifacts of its own")
    return problems


def manifest_digest(path: Path) -> str:
    """The sha256 of the manifest file: the package's identity in the registry."""
    return sha256(path / MANIFEST)


def load_any(path: str | Path, *, threads: int | None = None) -> Model | TensorModel:
    """The package at ``path``: tabular, or a tensor model (``mlwright train-torch``,
    ``train-keras``, ``train-jax``)."""
    root = Path(path)
    manifest = verify_package(root)
    kind = manifest.get("kind", "tabular")
    if kind in TENSOR_KINDS:
        from mlwright.package.tensor import load_tensor_package

        return load_tensor_package(root, threads=threads, kind=kind)
    if kind != "tabular":
        raise PackageError(
            f"{str(root)!r} holds a model of kind {str(kind)[:40]!r}, which this version of "
            "mlwright does not know",
            fix="upgrade mlwright, or rebuild the package",
        )
    return _load_tabular(root, threads)


def load_package(path: str | Path, *, threads: int | None = None) -> Model:
    """A tabular package (``mlwright train``)."""
    root = Path(path)
    manifest = verify_package(root)
    if manifest.get("kind", "tabular") != "tabular":
        raise PackageError(
            f"{str(root)!r} holds a {manifest['kind']} model, not a tabular one",
            fix="load it with mlwright.load (or serve it with `mlwright serve`)",
        )
    return _load_tabular(root, threads)


def _load_tabular(root: Path, threads: int | None) -> Model:
    schema = TableSchema.from_json((root / "schema.json").read_text(encoding="utf-8"))
    recipe = Recipe.read(json.loads((root / "recipe.json").read_text(encoding="utf-8")))
    metrics = json.loads((root / "metrics.json").read_text(encoding="utf-8"))
    meta = json.loads((root / "model" / "family.json").read_text(encoding="utf-8"))
    post = json.loads((root / "scorer" / "postprocess.json").read_text(encoding="utf-8"))
    encoder = FeatureEncoder.from_state(json.loads((root / "scorer" / "features.json").read_text()))
    classes = None if post["classes"] is None else tuple(post["classes"])
    ctx = FitContext(
        task=post["task"],
        n_classes=len(classes) if classes else 0,
        seed=recipe.seed,
        threads=threads or usable_cores(),
    )
    family = get_family(meta["name"]).load(root / "model", meta["params"], ctx, meta["fitted"])
    golden = None
    if (root / "golden" / "inputs.json").is_file():
        golden = {
            "inputs": json.loads((root / "golden" / "inputs.json").read_text(encoding="utf-8")),
            "expected": json.loads((root / "golden" / "expected.json").read_text(encoding="utf-8")),
        }
    reference_path = root / "reference.json"
    reference = (
        json.loads(reference_path.read_text(encoding="utf-8")) if reference_path.is_file() else None
    )
    evidence_path = root / "report" / EVIDENCE
    evidence = (
        json.loads(evidence_path.read_text(encoding="utf-8")) if evidence_path.is_file() else None
    )
    return Model(
        name=post["name"],
        task=post["task"],
        schema=schema,
        encoder=encoder,
        family=family,
        classes=classes,
        threshold=post["threshold"],
        residual_quantiles=post["residual_quantiles"],
        n_residuals=int(post["n_residuals"]),
        temperature=post.get("temperature"),
        recipe=recipe,
        metrics=metrics,
        golden=golden,
        evidence=evidence,
        reference=reference,
        path=root.resolve(),
    )
