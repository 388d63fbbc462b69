"""Scoring on a Ray cluster of two nodes started on this machine, on data bigger than what any
scoring process holds: every file is scored, on both nodes, and no actor's memory comes near
the size of the data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.api import predict_files
from tests.distributed.conftest import two_nodes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
FILES, ROWS, FEATURES = 8, 1_000_000, 12  # 8 million rows: 730 MiB of values in memory


@pytest.fixture(scope="module")
def nodes(ray_home: Path) -> Iterator[str]:
    """A head and a second node, one CPU each."""
    with two_nodes(ray_home, "two", 1) as address:
        yield address


def test_two_nodes_score_data_bigger_than_any_worker_holds(nodes: str, tmp_path: Path) -> None:
    r = np.random.default_rng(0)
    train = pd.DataFrame({f"x{i}": r.normal(size=20_000) for i in range(FEATURES)})
    train["y"] = np.where(train["x0"] + train["x1"] > 0, "yes", "no")
    mw.train(train, target="y", max_trials=1, families="lightgbm", out=str(tmp_path / "m"),
             tracker="none", progress=False)  # fmt: skip
    for i in range(FILES):
        part = tmp_path / "in" / f"part={i}" / "data.parquet"
        part.parent.mkdir(parents=True)
        frame = pd.DataFrame({f"x{j}": r.normal(size=ROWS) for j in range(FEATURES)})
        frame.to_parquet(part, index=False)
    in_memory = FILES * ROWS * FEATURES * 8 / 2**20
    scored = predict_files(
        tmp_path / "m", tmp_path / "in", tmp_path / "out", backend="ray", ray_address=nodes
    )
    assert scored["rows"] == FILES * ROWS
    assert len({f["node"] for f in scored["files"]}) == 2  # both nodes scored files
    # each actor's memory stays what scoring its first file took: it does not grow with the
    # data it has scored, and none holds anything near the data
    for node in {f["node"] for f in scored["files"]}:
        peaks = [f["peak_mib"] for f in scored["files"] if f["node"] == node]
        assert max(peaks) < 1.1 * min(peaks), peaks  # the high-water mark only rises
    assert max(f["peak_mib"] for f in scored["files"]) < 0.8 * in_memory
    for record in scored["files"]:
        assert len(pd.read_parquet(record["target"], columns=["prediction"])) == ROWS
