"""Inputs that used to end in an internal error, a wrong fix or an unbounded cost: nested
Parquet columns, an `--out` folder that would be refused only after training, and files
`mlwright audit` cannot or should not read (link loops, PEP 263 encodings, huge files)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mlwright as mw
from mlwright.audit import audit
from mlwright.audit.core import MAX_SOURCE_BYTES
from mlwright.errors import ColumnError
from mlwright.package.store import PackageError
from tests.conftest import CliResult, make_frame

Cli = Callable[..., CliResult]


class TrainingStarted(Exception):
    """Raised in place of the search: the run got past every check made before training."""


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlwright.train.runner as runner

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise TrainingStarted

    monkeypatch.setattr(runner, "_train_tracked", refuse)


# --- nested Parquet columns ----------------------------------------------------------------------


@pytest.fixture
def nested_parquet(tmp_path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = make_frame(200)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.append_column(
        "address", pa.array([{"city": f"c{i % 7}", "zip": i} for i in range(200)])
    )
    table = table.append_column("tags", pa.array([[i % 3, i % 5] for i in range(200)]))
    path = tmp_path / "customers.parquet"
    pq.write_table(table, path)
    return path


def test_a_nested_parquet_column_is_refused_by_name(
    nested_parquet: Path, no_training: None, cli: Cli
) -> None:
    with pytest.raises(ColumnError, match=r"'address'.*struct") as err:
        mw.train(str(nested_parquet), target="churned", max_trials=1, tracker="none")
    assert "--drop-col address" in (err.value.fix or "") and "flatten" in (err.value.fix or "")
    assert "'tags'" in str(err.value) and "list" in str(err.value)
    done = cli("train", str(nested_parquet), "--target", "churned", "--max-trials", "1")
    assert done.code == 1 and "'address'" in done.err and "internal error" not in done.err
    # dropped, they are no obstacle: the run gets as far as training
    with pytest.raises(TrainingStarted):
        mw.train(
            str(nested_parquet),
            target="churned",
            max_trials=1,
            tracker="none",
            drop_cols=["address", "tags"],
        )


# --- --out checked before training ---------------------------------------------------------------


def test_train_refuses_a_non_package_out_folder_before_training(
    tmp_path: Path, no_training: None, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.tex").write_text("three years of work")
    with pytest.raises(PackageError, match=r"notes exists and is not an mlwright package"):
        mw.train(make_frame(), target="churned", max_trials=1, tracker="none", out=str(out))
    data = tmp_path / "churn.csv"
    make_frame().to_csv(data, index=False)
    done = cli("train", str(data), "--target", "churned", "--max-trials", "1", "--out", str(out))
    assert done.code == 1 and "refusing to overwrite it" in done.err
    assert (out / "thesis.tex").read_text() == "three years of work"
    # the default folder (models/NAME) is checked as soon as the name is known
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "churn").mkdir(parents=True)
    (tmp_path / "models" / "churn" / "keep.txt").write_text("mine")
    done = cli("train", str(data), "--target", "churned", "--max-trials", "1")
    assert done.code == 1 and "refusing to overwrite it" in done.err
    # an empty folder or an existing package is fine: training starts
    with pytest.raises(TrainingStarted):
        mw.train(make_frame(), target="churned", tracker="none", out=str(tmp_path / "empty-or-new"))


# --- mlwright audit: link loops, encodings, size -------------------------------------------------


def test_a_symlink_loop_is_a_finding_naming_the_path(tmp_path: Path, cli: Cli) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "ok.py").write_text("x = 1\n")
    os.symlink("loop.py", folder / "loop.py")
    os.symlink("b.py", folder / "a.py")
    os.symlink("a.py", folder / "b.py")
    os.symlink("missing.py", folder / "dangling.py")
    result = audit([folder])
    by_name = {Path(f.path).name: f for f in result.findings}
    for name in ("loop.py", "a.py", "b.py"):
        finding = by_name[name]
        assert finding.rule == "MLW000" and "symbolic link" in finding.message
        assert "loop" in finding.message and "UTF-8" not in finding.fix
    assert "does not exist" in by_name["dangling.py"].message
    assert "ok.py" not in by_name
    # given directly, the loop is reported the same way, not as an internal error
    done = cli("audit", str(folder / "loop.py"), "--format", "json")
    assert "internal error" not in done.err and "symbolic link" in done.out, done.err
    done = cli("audit", str(folder), "--format", "sarif")
    assert "internal error" not in done.err and "symbolic link" in done.out, done.err


def test_a_pep_263_encoding_line_is_honoured(tmp_path: Path) -> None:
    latin = tmp_path / "latin.py"
    latin.write_bytes(
        b"# -*- coding: latin-1 -*-\n"
        b'title = "caf\xe9 cr\xe8me"\n'
        b"import numpy as np\n"
        b"noise = np.random.rand(3)\n"
    )
    result = audit([latin])
    assert [f.rule for f in result.findings] == ["MLW101"]
    assert result.findings[0].line == 4
    wrong = tmp_path / "wrong.py"
    wrong.write_bytes(b"# coding: no-such-codec\nx = 1\n")
    undeclared = tmp_path / "undeclared.py"
    undeclared.write_bytes(b'title = "caf\xe9"\n')
    found = {Path(f.path).name: f for f in audit([wrong, undeclared]).findings}
    assert "no-such-codec" in found["wrong.py"].message
    assert found["undeclared.py"].rule == "MLW000"
    assert "coding" in found["undeclared.py"].fix  # save as UTF-8, or declare the encoding


def test_an_oversized_file_is_skipped_with_a_finding(tmp_path: Path) -> None:
    big = tmp_path / "generated.py"
    line = b"value = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]  # generated\n"
    big.write_bytes(line * (10 * 1024 * 1024 // len(line)))
    small = tmp_path / "train.py"
    small.write_text("import numpy as np\nnoise = np.random.rand(3)\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = audit([big, small])
    elapsed = time.perf_counter() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    found = {Path(f.path).name: f for f in result.findings}
    skipped = found["generated.py"]
    assert skipped.rule == "MLW000" and "skipped" in skipped.message
    assert f"{MAX_SOURCE_BYTES // 1_000_000} MB" in skipped.message and "exclude" in skipped.fix
    assert found["train.py"].rule == "MLW101"  # the other files are still checked
    assert elapsed < 2.0 and grown_mb < 100


def test_a_notebook_with_large_outputs_is_still_audited(tmp_path: Path) -> None:
    import json

    image = "iVBORw0KGgo" * 200_000  # about 2 MB of embedded PNG output
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "source": ["import numpy as np\n", "noise = np.random.rand(3)\n"],
                "metadata": {},
                "execution_count": 1,
                "outputs": [{"output_type": "display_data", "data": {"image/png": image}}],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "explore.ipynb"
    path.write_text(json.dumps(notebook))
    assert path.stat().st_size > MAX_SOURCE_BYTES
    assert [f.rule for f in audit([path]).findings] == ["MLW101"]
