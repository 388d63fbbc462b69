"""The documentation site builds in strict mode: every link, anchor and page checked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT

pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install '.[docs]'")


def build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def test_site_builds_strict_with_the_api_reference(tmp_path: Path) -> None:
    done = build(ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stderr
    home = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "A short tour" in home  # the README is the home page
    assert 'href="train/"' in home  # its docs/train.md link, moved to the site's page
    functions = (tmp_path / "site" / "reference" / "functions" / "index.html").read_text("utf-8")
    for name in ("profile", "train", "load", "reproduce", "export"):
        assert f'id="mlwright.{name}"' in functions, f"mlwright.{name} is not in the reference"
    models = (tmp_path / "site" / "reference" / "models" / "index.html").read_text("utf-8")
    assert 'id="mlwright.Model.predict"' in models
    assert (tmp_path / "site" / "bench" / "results" / "serving" / "index.html").exists()


def test_a_broken_anchor_fails_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "bench" / "results", copy / "bench" / "results")
    for name in ("mkdocs.yml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    (copy / "src").symlink_to(ROOT / "src")
    page = copy / "docs" / "security.md"
    text = page.read_text(encoding="utf-8")
    assert "(experiment.md#feedback)" in text
    page.write_text(text.replace("(experiment.md#feedback)", "(experiment.md#nowhere)"), "utf-8")
    done = build(copy, tmp_path / "site")
    assert done.returncode == 1
    assert "does not contain an anchor '#nowhere'" in done.stderr
