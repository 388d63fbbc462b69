"""Packages the security tests attack: trained here, small, never tracked."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import mlwright as mw
from mlwright.train.models.linear import _estimator_from
from mlwright.train.models.sklearn_io import dump
from tests.conftest import make_frame
from tests.security.packages import recompute_manifest


def linear(folder: Path, frame: pd.DataFrame, target: str) -> Path:
    """A package of one scikit-learn linear model in ``folder``, untracked, in the format of
    earlier releases, which every load still reads: the estimator in a skops file (what an
    attacker would craft, since skops names the objects it builds)."""
    mw.train(
        frame, target=target, max_trials=1, families=("linear",), seed=0, out=str(folder),
        tracker="none",
    )  # fmt: skip
    model = folder / "model"
    task = json.loads((folder / "recipe.json").read_text(encoding="utf-8"))["problem"]["task"]
    dump(_estimator_from(model / "linear.json", task), model / "linear.skops")
    (model / "linear.json").unlink()
    family = json.loads((model / "family.json").read_text(encoding="utf-8"))
    family["files"] = ["linear.skops"]
    (model / "family.json").write_text(json.dumps(family, indent=2), encoding="utf-8")
    recompute_manifest(folder)
    return folder


@pytest.fixture(scope="session")
def linear_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A binary package whose model is scikit-learn's (skops on disk)."""
    return linear(tmp_path_factory.mktemp("security") / "churn-linear", make_frame(300), "churned")
