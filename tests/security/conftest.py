"""Packages the security tests attack: trained here, small, never tracked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import mlwright as mw
from tests.conftest import make_frame


def linear(folder: Path, frame: pd.DataFrame, target: str) -> Path:
    """A package of one scikit-learn linear model (skops on disk) in ``folder``, untracked."""
    mw.train(
        frame, target=target, max_trials=1, families=("linear",), seed=0, out=str(folder),
        tracker="none",
    )  # fmt: skip
    return folder


@pytest.fixture(scope="session")
def linear_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A binary package whose model is scikit-learn's (skops on disk)."""
    return linear(tmp_path_factory.mktemp("security") / "churn-linear", make_frame(300), "churned")
