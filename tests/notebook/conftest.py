"""One small model, trained once, whose column and target names are HTML."""

from __future__ import annotations

import pytest

import mlwright as mw
from mlwright.package.model import Model
from tests.conftest import make_frame

HOSTILE_COLUMN = '<img src=x onerror="alert(1)">'
HOSTILE_TARGET = "churned</td><script>alert(2)</script>"


@pytest.fixture(scope="session")
def hostile_model() -> Model:
    frame = make_frame(300).rename(columns={"x1": HOSTILE_COLUMN, "churned": HOSTILE_TARGET})
    return mw.train(
        frame,
        target=HOSTILE_TARGET,
        name="<b>churn</b>",  # made a safe name: b-churn-b
        families=("linear",),
        max_trials=1,
        tracker="none",
        seed=0,
        progress=False,
    )
