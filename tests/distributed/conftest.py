"""A Ray cluster of one node on 127.0.0.1, started for these tests and stopped after them.

Ray keeps its files (sessions, logs, the cluster's auth token under ``~/.ray``) in a temporary
folder: HOME and RAY_TMPDIR point there while the tests run (``ray_home``, tests/conftest.py).
Without Ray installed the tests skip, saying how to install it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def wait_for_head(head: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the Ray head at 127.0.0.1:``port`` takes connections (a minute at most; its log
    says why it did not)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not start: {log.read_text()}")
            time.sleep(0.2)


@contextmanager
def two_nodes(
    ray_home: Path, name: str, cpus: int, env: dict[str, str] | None = None
) -> Iterator[str]:
    """A head and a second node of ``cpus`` CPUs each, as separate `ray start` processes with
    ``env``; the head's address while they run."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_cli = str(Path(sys.executable).with_name("ray"))
    common = ["--block", "--num-cpus", str(cpus), "--disable-usage-stats"]
    head = [
        ray_cli, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
        "--include-dashboard", "false", "--temp-dir", str(ray_home / name), *common,
    ]  # fmt: skip
    worker = [ray_cli, "start", "--address", f"127.0.0.1:{port}",
              "--node-ip-address", "127.0.0.1", *common]  # fmt: skip
    log_path = ray_home / f"{name}.log"
    log = open(log_path, "w")  # noqa: SIM115 - open while the nodes run

    def start(command: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )

    procs = [start(head)]
    try:
        wait_for_head(procs[0], port, log_path)
        procs.append(start(worker))
        time.sleep(5)  # the second node registers
        yield f"127.0.0.1:{port}"
    finally:
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        log.close()


@pytest.fixture(scope="session")
def ray_cluster(ray_home: Path) -> Iterator[str]:
    """``ray start --head`` on 127.0.0.1 with 2 CPUs; its address. The head runs in its own
    process group, which is ended at the end of the session."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_cli = Path(sys.executable).with_name("ray")
    command = [
        str(ray_cli), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
        "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false",
        "--temp-dir", str(ray_home / "cluster"), "--disable-usage-stats",
    ]  # fmt: skip
    log = open(ray_home / "head.log", "w")  # noqa: SIM115 - open for the session
    head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        wait_for_head(head, port, ray_home / "head.log")
        yield address
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the head and every process it started
        head.wait(30)
        log.close()
