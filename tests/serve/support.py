"""Starting a real `mlwright serve` process for a test."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.track.test_mlflow import free_port
from tests.track.test_servers import env_with, process


@contextmanager
def serving(
    model: str | Path,
    tmp_path: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    store: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`mlwright serve MODEL` on a free loopback port with a store under ``tmp_path``; yields the
    base URL and the process once /ready answers 200."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlwright"),
        "serve",
        str(model),
        "--port",
        str(port),
        "--store",
        str(store or tmp_path / "serve.db"),
        *extra,
    ]
    base = f"http://127.0.0.1:{port}"
    with process(
        command, env=env or env_with(), ready_url=f"{base}/ready", log=tmp_path / "serve.log"
    ) as proc:
        yield base, proc
