"""Training and scoring on a Ray cluster of two nodes started on this machine, where every Ray
worker process is killed the moment its resident memory passes a limit (as a container's memory
limit would): the data, in memory, is larger than that limit, and still trains, through the
command line, on both nodes, and scores."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import CliResult
from tests.distributed.conftest import two_nodes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
FILES, ROWS, FEATURES = 10, 500_000, 48  # 5 million rows: 1,831 MiB of values in memory
LIMIT_MIB = 1000  # what one Ray worker process may hold (one starts at about 280 MiB)

# imported by every Python process of the two nodes (PYTHONPATH): in a Ray worker, a thread that
# kills the process when its resident memory passes the limit, leaving a note of it
WATCHDOG = """
import os, sys, threading, time, signal

_limit = os.environ.get("MLW_TEST_RSS_LIMIT_MIB")
if _limit and any(a.endswith("default_worker.py") for a in sys.argv):
    def _watch(limit_kib=int(_limit) * 1024, notes=os.environ["MLW_TEST_KILLED"]):
        while True:
            with open("/proc/self/status") as status:
                rss = next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))
            if rss > limit_kib:
                with open(os.path.join(notes, str(os.getpid())), "w") as note:
                    note.write(str(rss // 1024))
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.02)

    threading.Thread(target=_watch, daemon=True).start()
"""


@pytest.fixture(scope="module")
def limited_nodes(ray_home: Path) -> Iterator[tuple[str, Path]]:
    """A head and a second node, two CPUs each, whose workers may hold LIMIT_MIB each; the
    address, and the folder where a killed worker leaves its note."""
    hook = ray_home / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(WATCHDOG)
    killed = ray_home / "killed"
    killed.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        "MLW_TEST_RSS_LIMIT_MIB": str(LIMIT_MIB),
        "MLW_TEST_KILLED": str(killed),
    }
    with two_nodes(ray_home, "limited", 2, env) as address:
        yield address, killed


def _hold(mib: int) -> int:
    block = np.ones(mib * 2**20 // 8)  # written, so resident
    time.sleep(1)
    return int(block.sum())


def test_the_limit_kills_a_worker_that_holds_more(limited_nodes: tuple[str, Path]) -> None:
    import ray

    address, killed = limited_nodes
    ray.init(address=address, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        task = ray.remote(max_retries=0)(_hold)
        assert ray.get(task.remote(50)) > 0
        with pytest.raises(ray.exceptions.WorkerCrashedError):
            ray.get(task.remote(LIMIT_MIB + 100))
    finally:
        ray.shutdown()
        notes = {n: int(n.read_text()) for n in killed.iterdir()}
        for note in notes:
            note.unlink()
    assert len(notes) == 1 and min(notes.values()) >= LIMIT_MIB  # one kill, at the limit


def test_data_bigger_than_a_worker_may_hold_trains_and_scores(
    limited_nodes: tuple[str, Path], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    address, killed = limited_nodes
    r = np.random.default_rng(0)
    lake = tmp_path / "lake"
    for i in range(FILES):
        part = lake / f"day={i}" / "data.parquet"
        part.parent.mkdir(parents=True)
        frame = pd.DataFrame({f"x{j}": r.normal(size=ROWS) for j in range(FEATURES)})
        noise = r.normal(scale=0.5, size=ROWS)
        frame["y"] = np.where(frame["x0"] + frame["x1"] * frame["x2"] + noise > 0, "yes", "no")
        frame.to_parquet(part, index=False, row_group_size=ROWS // 4)
        del frame
    in_memory = FILES * ROWS * FEATURES * 8 / 2**20
    assert in_memory > LIMIT_MIB
    ray = ("--backend", "ray", "--ray-address", address)
    result = cli(
        "train", str(lake), "--target", "y", "--max-trials", "1", "--sample-rows", "20000",
        "--time-budget", "180", "--train-workers", "4", "--threads", "1", "--tracker", "none",
        "-o", str(tmp_path / "m"), *ray,
    )  # fmt: skip
    notes = {n.name: n.read_text() for n in killed.iterdir()}  # MiB at the kill, by pid
    assert result.code == 0, (result.err[-1500:], notes)
    assert not notes  # no worker passed the limit
    scale = json.loads((tmp_path / "m" / "recipe.json").read_text())["scale"]
    fit = scale["fit"]
    held = scale["held_out"]
    assert fit["rows"] == FILES * ROWS - held["test"] - held["early_stopping"]
    assert len({w["node"] for w in fit["per_worker"]}) == 2  # workers on both nodes
    assert all(w["peak_mib"] < LIMIT_MIB for w in fit["per_worker"])
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["test"]["roc_auc"] > 0.9
    scored = cli("predict", str(tmp_path / "m"), str(lake), "-o", str(tmp_path / "out"), *ray)
    assert scored.code == 0, scored.err
    assert not list(killed.iterdir())
    for i in range(FILES):
        out = tmp_path / "out" / f"day={i}" / "data.parquet"
        assert len(pd.read_parquet(out, columns=["prediction"])) == ROWS
