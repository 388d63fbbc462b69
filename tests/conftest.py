from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

WHOLE_MACHINE: set[int] = set()  # the cores the run was given, before a worker took its share


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs two workers), each worker takes its own share of
    the cores, as if it ran alone on a smaller machine: the fits of two workers then never
    contend for one core (an OpenMP fit whose threads share a core with another program's waits
    at every step), and the thread policy sees the cores its worker may use. Every thread the
    worker has started so far moves too (threads started later inherit it), and the BLAS
    libraries are held to the share. A test that needs every core asks for ``whole_machine``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= count:
        from threadpoolctl import threadpool_limits

        WHOLE_MACHINE.update(cores)
        share = set(cores[int(worker[2:]) % count :: count])
        _pin(share)
        config.stash[_BLAS] = threadpool_limits(limits=len(share))


_BLAS = pytest.StashKey[Any]()


def _pin(cores: set[int]) -> None:
    """Every thread of this process on ``cores``."""
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError, ValueError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task.name), cores)


@pytest.fixture
def whole_machine() -> Iterator[None]:
    """The test's process back on every core the run was given, not its xdist worker's share
    (nothing changes when the run has one worker): for what only happens with several cores."""
    if not WHOLE_MACHINE:
        yield
        return
    share = os.sched_getaffinity(0)
    _pin(WHOLE_MACHINE)
    try:
        yield
    finally:
        _pin(share)


# The files that take longest (`--durations=0`, summed per file), collected first: pytest-xdist
# hands whole files to its workers in collection order (`--dist loadfile`), so the longest go
# out while there is still other work to balance them, and the two workers end together.
LONGEST_FIRST = (
    "tests/track/test_servers.py",
    "tests/train/test_train.py",
    "tests/distributed/test_ray_search.py",
    "tests/report/test_report.py",
    "tests/train/test_halving.py",
    "tests/byo_nets/test_jax.py",
    "tests/byo_nets/test_keras.py",
    "tests/serve/test_ab.py",
    "tests/serve/test_reliability.py",
    "tests/cli/test_cli_train.py",
    "tests/track/test_mlflow.py",
    "tests/security/test_http.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., CliResult]:
    """Run the console-script entry point in-process; returns exit code, stdout and stderr."""
    from mlwright.cli.main import run

    monkeypatch.setenv("COLUMNS", "160")

    def invoke(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["mlwright", *args])
        code = 0
        try:
            run()
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture(autouse=True, scope="session")
def _tracking_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test tracks into one temporary MLflow store, never into the working directory; the
    registry cache and the trust policy's config folder are temporary too, and no signing key
    or trust policy of the machine's applies."""
    import os

    root = tmp_path_factory.mktemp("mlflow")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLWRIGHT_CACHE_DIR"] = str(root / "cache")
    os.environ["XDG_CONFIG_HOME"] = str(root / "config")
    for key in ("MLWRIGHT_SIGNING_KEY", "MLWRIGHT_TRUSTED_KEYS"):
        os.environ.pop(key, None)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ["WANDB_DIR"] = str(root)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def make_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A clean binary-classification frame with mixed column types and no planted problems."""
    r = np.random.default_rng(seed)
    x1 = r.normal(size=n)
    x2 = r.integers(0, 50, size=n)
    colour = r.choice(["red", "green", "blue"], size=n)
    logit = 0.8 * x1 - 0.02 * x2 + (colour == "red") * 0.5
    y = np.where(r.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "churned": y})


def tiny_tensor_model() -> Any:
    """A PyTorch package's model around a tiny module made here (no training, no export, no
    golden examples: serve it with the gate off)."""
    import torch

    from mlwright.package.tensor import TensorInput, TensorModel

    torch.manual_seed(0)
    return TensorModel(
        name="tiny",
        task="classification",
        inputs=[TensorInput("input", (4,), "float32")],
        output="softmax",
        classes=("cat", "dog"),
        module=torch.nn.Linear(4, 2),
    )


def make_blend_frame(n: int = 800, seed: int = 1) -> pd.DataFrame:
    """A regression target with a linear part over 12 columns and a sign interaction: a linear
    model and boosted trees each see one half, so their ensemble beats both out of fold."""
    r = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": r.normal(size=n) for i in range(12)})
    frame["y"] = (
        frame.to_numpy() @ r.uniform(-1, 1, 12)
        + 0.8 * np.sign(frame.x0 * frame.x1)
        + r.normal(size=n) * 0.3
    )
    return frame


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A SQLite database with one table, ``orders`` (40 rows), for the ``--sql`` tests."""
    import sqlite3

    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table orders (id integer, amount real, returned text)")
        conn.executemany(
            "insert into orders values (?, ?, ?)",
            [(i, i * 1.5, "yes" if i % 3 else "no") for i in range(40)],
        )
    conn.close()
    return db


NO_RAY = "Ray is not installed: `pip install 'mlwright[ray]'` (make test installs it)"


def needs_ray() -> None:
    pytest.importorskip("ray", reason=NO_RAY)


@pytest.fixture(scope="session")
def ray_home() -> Iterator[Path]:
    """HOME and RAY_TMPDIR in a short temporary folder while Ray runs in tests: its sessions,
    logs and the cluster's auth token (``~/.ray``) stay out of the real home. Short, since Ray's
    socket paths must be."""
    needs_ray()
    home = Path(tempfile.mkdtemp(prefix="mlw-ray-", dir="/tmp"))
    saved = {k: os.environ.get(k) for k in ("HOME", "RAY_TMPDIR", "RAY_USAGE_STATS_ENABLED")}
    os.environ.update(HOME=str(home), RAY_TMPDIR=str(home), RAY_USAGE_STATS_ENABLED="0")
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    shutil.rmtree(home, ignore_errors=True)
