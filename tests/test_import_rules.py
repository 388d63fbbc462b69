"""Which way imports run (DESIGN.md): import-linter's contracts in pyproject.toml, which
``make lint`` runs, hold on the source, and imports that break them are reported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
CONFIG = ROOT / "pyproject.toml"

# one forbidden import per rule, planted in a copy of the source: (module, its source)
PLANTED = {
    "mlwright.package.planted": "import mlwright.report\n",
    "mlwright.distributed.planted": "from mlwright.train.search import run_fold\n",
    "mlwright.data.planted": "from mlwright.evaluate.metrics import score\n",
    "mlwright.serve.planted": "from mlwright.train.runner import run_training\n",
    "mlwright.train.models.planted": "from mlwright.train.search import run_search\n",
    "mlwright.audit.planted": "from mlwright.train.models import FAMILIES\n",
    "mlwright.track.planted": "import mlwright.cli.main\n",
    "mlwright.store.planted": "import mlwright.monitor\n",
    "mlwright.experiment.planted": "from mlwright.train.runner import library_versions\n",
    "mlwright.cli.planted": "from mlwright.track.registry import parse\n",
    # a type named for the type checker alone counts too
    "mlwright.package.planted_types": (
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
        "    from mlwright.train.search import SearchData\n"
    ),
}


def lint_imports(source: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the configuration in ``cwd`` on the ``mlwright`` package found in
    ``source``."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(source), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def contracts() -> list[dict[str, object]]:
    with CONFIG.open("rb") as fh:
        found: list[dict[str, object]] = tomllib.load(fh)["tool"]["importlinter"]["contracts"]
    return found


def test_the_source_keeps_every_import_rule() -> None:
    result = lint_imports(SRC, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(contracts())} kept, 0 broken" in result.stdout


def test_a_planted_forbidden_import_is_reported(tmp_path: Path) -> None:
    copy = tmp_path / "src"
    shutil.copytree(
        SRC / "mlwright", copy / "mlwright", ignore=shutil.ignore_patterns("__pycache__")
    )
    for module, text in PLANTED.items():
        path = copy.joinpath(*module.split(".")).with_suffix(".py")
        path.write_text(text, encoding="utf-8")
    shutil.copy(CONFIG, tmp_path / CONFIG.name)
    result = lint_imports(copy, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    unreported = [m for m in PLANTED if f"{m} -> " not in result.stdout]
    assert not unreported, result.stdout
    assert "package/ never imports the report, the trainer or the server BROKEN" in result.stdout


def named_modules(contract: dict[str, object]) -> set[str]:
    """The modules a contract names: its layers' or its forbidden modules."""
    if contract["type"] == "layers":
        layers = contract["layers"]
        assert isinstance(layers, list)
        return {
            name.strip().strip("()")
            for layer in layers
            for name in layer.replace("|", ":").split(":")
        }
    forbidden = contract["forbidden_modules"]
    assert isinstance(forbidden, list)
    return set(forbidden)


@pytest.mark.parametrize("contract", ["layers", "package", "distributed", "serving"])
def test_the_trainer_is_every_module_of_train_outside_the_model_families(contract: str) -> None:
    """The contracts list the trainer's modules one by one: a new one must join the lists."""
    trainer = {
        f"mlwright.train.{path.stem}"
        for path in (SRC / "mlwright" / "train").glob("*.py")
        if path.stem != "__init__"
    }
    (found,) = [c for c in contracts() if c.get("id") == contract]
    named = named_modules(found) - {"mlwright.train.models"}
    assert trainer == {m for m in named if m.startswith("mlwright.train.")}


def test_no_stage_reaches_the_public_api_through_the_top_level_package() -> None:
    """The contracts ignore ``mlwright -> mlwright.**`` (the lazily imported public API), so a
    stage could call ``mlwright.train`` or ``mlwright.load`` after ``import mlwright`` and pass
    lint: only the API and the command line may import the top-level package for more than
    its version."""
    import ast

    allowed = {SRC / "mlwright" / name for name in ("__init__.py", "__main__.py", "api.py")}
    found = []
    for path in sorted((SRC / "mlwright").rglob("*.py")):
        if path in allowed or (SRC / "mlwright" / "cli") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import) and any(a.name == "mlwright" for a in node.names):
                found.append(f"{path.relative_to(SRC)}:{node.lineno} import mlwright")
            elif isinstance(node, ast.ImportFrom) and node.module == "mlwright" and node.level == 0:
                names = [a.name for a in node.names if a.name != "__version__"]
                if names:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} imports {names}")
    assert found == []
