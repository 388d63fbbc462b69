"""Making hostile packages the way an attacker would: edit a real package, then recompute its
checksum manifest (anyone can) so that only the defences under test stand in the way."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

from mlwright.package.store import MANIFEST, manifest_digest, write_manifest


def recompute_manifest(root: Path) -> None:
    """What an attacker does after editing a package: a manifest that matches again."""
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    (root / MANIFEST).unlink()
    write_manifest(
        root, manifest["name"], manifest.get("created_utc"), manifest.get("kind", "tabular")
    )


def exec_node(code: str) -> dict[str, Any]:
    """A skops node that calls ``builtins.exec(code)`` when the file is loaded."""
    text = {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(code),
        "is_json": True,
        "__id__": 900001,
    }
    args = {
        "__class__": "tuple",
        "__module__": "builtins",
        "__loader__": "TupleNode",
        "content": [text],
        "__id__": 900002,
    }
    return {
        "__class__": "exec",
        "__module__": "builtins",
        "__loader__": "ConstructorFromReduceNode",
        "content": args,
        "__id__": 900003,
    }


def with_skops_payload(package: Path, folder: Path, marker: Path) -> Path:
    """A copy of ``package`` (a scikit-learn model) whose skops file writes ``marker`` when it
    is loaded, with a manifest recomputed to match."""
    code = f"__import__('pathlib').Path({str(marker)!r}).write_text('pwned')"
    return with_skops_node(package, folder, exec_node(code))


def with_skops_node(package: Path, folder: Path, node: dict[str, Any]) -> Path:
    """A copy of ``package`` whose estimator's ``C`` is ``node``, manifest recomputed."""
    crafted = folder / "crafted"
    shutil.copytree(package, crafted)
    path = next((crafted / "model").glob("*.skops"))
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(entries["schema.json"])
    attributes = schema["content"]["content"]
    attributes["C"] = node
    entries["schema.json"] = json.dumps(schema).encode()
    path.unlink()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    recompute_manifest(crafted)
    return crafted


def register(folder: Path, name: str, tags: dict[str, str] | None = None) -> str:
    """Register ``folder`` as a new version of ``name`` the way someone with write access to
    the registry could, with the manifest checksum tag mlwright checks; returns the version."""
    from mlwright.track.mlflow import MANIFEST_TAG, _mlflow

    with _mlflow() as mlflow:  # MLflow configured and its warnings silenced, as mlwright does
        client = mlflow.MlflowClient()
        return _register(
            client, folder, name, {MANIFEST_TAG: manifest_digest(folder), **(tags or {})}
        )


def _register(client: Any, folder: Path, name: str, tags: dict[str, str]) -> str:
    experiment = client.get_experiment_by_name("registry-writes")
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("registry-writes")
    )
    run = client.create_run(experiment_id)
    client.log_artifacts(run.info.run_id, str(folder), "model/package")
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(
        name,
        f"runs:/{run.info.run_id}/model",
        run_id=run.info.run_id,
        tags=tags,
    )
    return str(version.version)
