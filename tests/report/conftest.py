from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from tests.conftest import make_blend_frame, make_frame


def _multiclass_frame(n: int = 600, seed: int = 3) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": r.normal(size=n), "b": r.normal(size=n)})
    frame["kind"] = np.where(frame.a > 0.5, "high", np.where(frame.b > 0, "mid", "low"))
    flip = r.random(n) < 0.1
    frame.loc[flip, "kind"] = r.choice(["high", "mid", "low"], size=int(flip.sum()))
    return frame


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """(package folder, training CSV) per task: binary, multiclass (with the neural net, for
    learning curves) and regression."""
    root = tmp_path_factory.mktemp("report-packages")
    specs = {
        "binary": (make_frame(), "churned", ("lightgbm", "linear"), 3),
        "multiclass": (_multiclass_frame(), "kind", ("mlp",), 1),
        "regression": (make_blend_frame(n=600), "y", ("lightgbm", "linear"), 3),
    }
    out = {}
    for task, (frame, target, families, trials) in specs.items():
        data = root / f"{task}.csv"
        frame.to_csv(data, index=False)
        package = root / task
        mw.train(
            str(data),
            target=target,
            max_trials=trials,
            families=families,
            seed=0,
            tracker="none",
            out=str(package),
        )
        out[task] = (package, data)
    return out
