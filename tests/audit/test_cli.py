"""`mlwright audit` as users run it: notebooks, configuration, output formats, exit codes,
pre-commit, and mlwright's own source."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mlwright.audit import audit, load_settings

ROOT = Path(__file__).resolve().parents[2]
LEAKY = """\
import numpy as np
from sklearn.preprocessing import StandardScaler
from sklearn.model_selection import train_test_split

X = StandardScaler().fit_transform(X)
a, b, c, d = train_test_split(X, y, random_state=0)
noise = np.random.rand(3)
"""


def notebook(cells: list[tuple[str, str]]) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": kind, "source": text.splitlines(keepends=True), "metadata": {}}
                | ({"outputs": [], "execution_count": None} if kind == "code" else {})
                for kind, text in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def test_notebooks_are_audited_cell_by_cell(tmp_path: Path) -> None:
    path = tmp_path / "explore.ipynb"
    path.write_text(notebook([
        ("markdown", "# Exploring\nnp.random.rand() in prose is not code"),
        ("code", "%matplotlib inline\nimport numpy as np\n!pip install nothing"),
        ("code", "%%time\nthis is not python"),
        ("code", "x = 1\nnoise = np.random.rand(3)"),
        ("code", "y = np.random.rand(2)  # mlwright: ignore[MLW101]"),
    ]))  # fmt: skip
    result = audit([path])
    assert [(f.rule, f.cell, f.line, f.col) for f in result.findings] == [("MLW101", 3, 2, 9)]
    assert result.findings[0].where() == f"{path}[cell 3]:2:9"


def test_a_broken_notebook_cell_is_a_finding_with_its_cell(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text(notebook([("code", "import numpy as np"), ("code", "for x in:\n    pass")]))
    (tmp_path / "not-json.ipynb").write_text("{ not json")
    result = audit([tmp_path])
    broken = {f.path.rsplit("/", 1)[-1]: f for f in result.findings}
    assert (broken["broken.ipynb"].rule, broken["broken.ipynb"].cell) == ("MLW000", 2)
    assert broken["not-json.ipynb"].rule == "MLW000"


def test_exit_status_formats_and_fail_on(tmp_path: Path, cli: Callable[..., Any]) -> None:
    (tmp_path / "train.py").write_text(LEAKY)
    text = cli("audit", str(tmp_path))
    assert text.code == 1  # MLW103 is high, at or above the default medium
    assert "MLW103 preprocessing-before-split high" in text.out
    assert "fix: split first" in text.out
    assert "2 finding(s) (1 high, 1 medium) in 1 of 1 file(s)" in text.out

    as_json = cli("audit", str(tmp_path), "--format", "json")
    data = json.loads(as_json.out)
    assert data["counts"] == {"low": 0, "medium": 1, "high": 1}
    assert {f["rule"] for f in data["findings"]} == {"MLW101", "MLW103"}
    assert all({"path", "line", "col", "message", "fix"} <= f.keys() for f in data["findings"])

    quiet = cli("audit", str(tmp_path), "--ignore", "MLW103", "--fail-on", "high")
    assert quiet.code == 0 and "MLW103" not in quiet.out
    assert cli("audit", str(tmp_path), "--select", "MLW108").code == 0
    assert cli("audit", str(tmp_path), "--fail-on", "severe").code == 2  # a usage error
    unknown = cli("audit", str(tmp_path), "--select", "MLW999")
    assert unknown.code == 1 and "unknown rule" in unknown.err
    missing = cli("audit", str(tmp_path / "nowhere"))
    assert missing.code == 1 and "does not exist" in missing.err


def test_sarif_2_1_0(tmp_path: Path, cli: Callable[..., Any], monkeypatch: Any) -> None:
    (tmp_path / "train.py").write_text(LEAKY)
    monkeypatch.chdir(tmp_path)
    done = cli("audit", ".", "--format", "sarif", "--output", "audit.sarif")
    assert done.code == 1
    log = json.loads((tmp_path / "audit.sarif").read_text())
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    ids = [r["id"] for r in driver["rules"]]
    assert ids == sorted(ids) and {"MLW000", "MLW101", "MLW109"} <= set(ids)
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"MLW103": "error", "MLW101": "warning"}
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "train.py"
        assert location["region"]["startLine"] >= 1 and location["region"]["startColumn"] >= 1


def test_pyproject_settings(tmp_path: Path, cli: Callable[..., Any]) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "train.py").write_text(LEAKY)
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "old.py").write_text("try:\n    x()\nexcept:\n    pass\n")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.mlwright.audit]\n"
        'ignore = ["MLW103"]\n'
        'exclude = ["*/legacy/*"]\n'
        'fail-on = "high"\n'
        'severity = { unseeded-random = "low" }\n'
    )
    settings = load_settings(tmp_path / "pkg")
    assert settings.fail_on == "high" and settings.ignore == ("MLW103",)
    done = cli("audit", str(tmp_path / "pkg"), str(tmp_path / "legacy"))
    assert done.code == 0, done.out
    assert "MLW101 unseeded-random low" in done.out
    assert "legacy" not in done.out and "MLW103" not in done.out
    (tmp_path / "pyproject.toml").write_text('[tool.mlwright.audit]\nfail_on = "high"\n')
    wrong = cli("audit", str(tmp_path / "pkg"))
    assert wrong.code == 1 and "unknown key(s) ['fail_on']" in wrong.err


def test_mlwright_audits_its_own_source_clean() -> None:
    result = audit([ROOT / "src" / "mlwright"])
    assert result.files > 100
    assert result.findings == [], "\n".join(f"{f.where()} {f.rule} {f.message}"
                                            for f in result.findings)  # fmt: skip


def test_the_pre_commit_hook_runs_the_audit() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "mlwright-audit")
    assert hook["entry"] == "mlwright audit" and hook["language"] == "python"
    assert set(hook["types_or"]) == {"python", "jupyter"}
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["mlwright"] == "mlwright.cli.main:run"


def test_many_files_use_every_core(tmp_path: Path) -> None:
    for i in range(240):
        (tmp_path / f"m{i}.py").write_text(LEAKY if i % 60 == 0 else "x = 1\n")
    result = audit([tmp_path], workers=2)
    assert result.files == 240
    assert sorted({f.path for f in result.findings}) == sorted(
        str(tmp_path / f"m{i}.py") for i in (0, 60, 120, 180)
    )


def test_the_pool_starts_safely_in_a_process_with_threads(tmp_path: Path) -> None:
    """JAX's threads (as in a notebook that trained a Flax model) make forking unsafe: the
    audit's processes come from a fork server, so JAX has no fork to warn about."""
    import jax.numpy as jnp

    float(jnp.ones(2).sum())
    for i in range(200):
        (tmp_path / f"m{i}.py").write_text(LEAKY if i == 7 else "x = 1\n")
    result = audit([tmp_path], workers=2)
    assert [f.path for f in result.findings][:1] == [str(tmp_path / "m7.py")]


def test_a_fresh_process_knows_every_rule_and_imports_no_ml_library(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "train.py").write_text(LEAKY)
    script = (
        "import sys\n"
        "from mlwright.cli.main import run\n"
        f"sys.argv = ['mlwright', 'audit', {str(tmp_path)!r}, '--select', 'MLW101']\n"
        "try:\n    run()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "heavy = sorted(m for m in ('torch', 'sklearn', 'pandas', 'mlflow', 'lightgbm') "
        "if m in sys.modules)\n"
        "print('code', code, 'heavy', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert "MLW101 unseeded-random" in done.stdout, done.stderr
    assert done.stdout.strip().endswith("code 1 heavy []")
    listed = subprocess.run([sys.executable, "-m", "mlwright", "audit", "--list-rules"],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        f"MLW{n:03d}" for n in (0, 101, 102, 103, 104, 105, 106, 107, 108, 109)
    ]


def test_the_docs_list_every_rule_with_its_severity() -> None:
    from mlwright.audit import RULES

    doc = (ROOT / "docs" / "audit.md").read_text()
    for info in RULES.values():
        assert f"| {info.id} | {info.name} | {info.severity} |" in doc, info.id
