"""Scoring on a Ray cluster of two nodes started on this machine, on data bigger than what any
scoring process holds: every file is scored, on both nodes, and no actor's memory comes near
the size of the data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.api import predict_files
from tests.distributed.conftest import wait_for_head

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
FILES, ROWS, FEATURES = 8, 1_000_000, 12  # 8 million rows: 730 MiB of values in memory


@pytest.fixture(scope="module")
def two_nodes(ray_home: Path) -> Iterator[str]:
    """A head and a second node, one CPU each, as separate `ray start` processes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_cli = str(Path(sys.executable).with_name("ray"))
    common = ["--block", "--num-cpus", "1", "--disable-usage-stats"]
    head = [
        ray_cli, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
        "--include-dashboard", "false", "--temp-dir", str(ray_home / "two"), *common,
    ]  # fmt: skip
    worker = [ray_cli, "start", "--address", f"127.0.0.1:{port}",
              "--node-ip-address", "127.0.0.1", *common]  # fmt: skip
    log = open(ray_home / "two.log", "w")  # noqa: SIM115 - open while the nodes run
    procs = [subprocess.Popen(head, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)]
    try:
        wait_for_head(procs[0], port, ray_home / "two.log")
        procs.append(
            subprocess.Popen(worker, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
        time.sleep(5)  # the second node registers
        yield f"127.0.0.1:{port}"
    finally:
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        log.close()


def test_two_nodes_score_data_bigger_than_any_worker_holds(two_nodes: str, tmp_path: Path) -> None:
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
        tmp_path / "m", tmp_path / "in", tmp_path / "out", backend="ray", ray_address=two_nodes
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
