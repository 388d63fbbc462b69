"""Packages the security tests attack: trained here, small, never tracked."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlwright as mw
from tests.conftest import make_frame


@pytest.fixture(scope="session")
def linear_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A binary package whose model is scikit-learn's (skops on disk)."""
    path = tmp_path_factory.mktemp("security") / "churn-linear"
    mw.train(
        make_frame(300),
        target="churned",
        max_trials=1,
        families=("linear",),
        seed=0,
        out=str(path),
        tracker="none",
    )
    return path
