"""The linear family on disk: its coefficients as numbers (linear.json), read back to the same
predictions, bit for bit; packages of earlier releases (linear.skops) still load; a file that is
not what mlwright wrote is refused before anything predicts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mlwright as mw
from mlwright.package.store import load_package
from mlwright.train.models.linear import _estimator_from
from mlwright.train.models.sklearn_io import dump
from tests.conftest import make_frame
from tests.security.packages import recompute_manifest

TARGETS = {"binary": "churned", "multiclass": "colour", "regression": "x1"}


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, pd.DataFrame]]:
    """A package and its in-memory predictions, for each task."""
    root = tmp_path_factory.mktemp("linear")
    frame = make_frame(300)
    out = {}
    for task, target in TARGETS.items():
        model = mw.train(frame, target=target, families=("linear",), max_trials=1, seed=0,
                         tracker="none", progress=False, out=str(root / task))  # fmt: skip
        out[task] = (root / task, model.predict(frame.drop(columns=target)))
    return out


@pytest.mark.parametrize("task", list(TARGETS))
def test_a_linear_model_is_its_coefficients_and_predicts_the_same(
    packages: dict[str, tuple[Path, pd.DataFrame]], task: str
) -> None:
    path, expected = packages[task]
    assert sorted(p.name for p in (path / "model").iterdir()) == ["family.json", "linear.json"]
    rows = make_frame(300).drop(columns=TARGETS[task])
    pd.testing.assert_frame_equal(load_package(path).predict(rows), expected, check_exact=True)


def test_a_package_of_an_earlier_release_still_loads(
    packages: dict[str, tuple[Path, pd.DataFrame]], tmp_path: Path
) -> None:
    path, expected = packages["multiclass"]
    old = tmp_path / "old"
    shutil.copytree(path, old)
    dump(
        _estimator_from(old / "model" / "linear.json", "multiclass"), old / "model" / "linear.skops"
    )
    (old / "model" / "linear.json").unlink()
    family = json.loads((old / "model" / "family.json").read_text(encoding="utf-8"))
    (old / "model" / "family.json").write_text(
        json.dumps({**family, "files": ["linear.skops"]}), encoding="utf-8"
    )
    recompute_manifest(old)
    rows = make_frame(300).drop(columns="colour")
    pd.testing.assert_frame_equal(load_package(old).predict(rows), expected, check_exact=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: {**s, "coef": [[float("nan")] * len(s["coef"][0])]}, "not a finite number"),
        (lambda s: {**s, "coef": [[1.0, 2.0]]}, "coefficients of shape"),
        (lambda s: {**s, "estimator": "Ridge"}, "does not hold a LogisticRegression"),
        (lambda s: {**s, "coef": "x"}, "ValueError"),
        (lambda s: [s], "does not hold a LogisticRegression"),
        (lambda s: {**s, "classes": [0]}, "1 classes for coefficients"),
    ],
)
def test_a_linear_file_mlwright_did_not_write_is_refused(
    packages: dict[str, tuple[Path, pd.DataFrame]],
    tmp_path: Path,
    change: Callable[[Any], Any],
    message: str,
) -> None:
    crafted = tmp_path / "crafted"
    shutil.copytree(packages["binary"][0], crafted)
    path = crafted / "model" / "linear.json"
    state = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(change(state)), encoding="utf-8")  # json writes NaN, and reads it
    recompute_manifest(crafted)
    with pytest.raises(mw.MlwrightError, match=message):
        load_package(crafted)


def test_loading_a_linear_model_needs_no_skops(
    packages: dict[str, tuple[Path, pd.DataFrame]],
) -> None:
    script = (
        "import sys; from mlwright.package.store import load_package; "
        f"load_package({str(packages['binary'][0])!r}); print('skops' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]
