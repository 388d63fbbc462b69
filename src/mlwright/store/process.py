"""The serving store's writer process: one per server worker.

A worker's request path only appends the request and response bytes it already holds to a
buffer; a sender thread pipes them to this process, which parses them and commits them to SQLite
(:class:`~mlwright.store.writer.StoreWriter`: every 100 ms or 512 predictions). Recording a
prediction therefore never competes with scoring for the worker's interpreter lock.

The process reads framed batches from standard input until end of file, then flushes and exits:
a worker that stops, gracefully or not, closes the pipe and its writer commits what it received.
It ignores SIGINT and SIGTERM, which are meant for the worker, so that a Ctrl-C or a stop of the
whole process group does not lose the buffered predictions.

Run as ``python -m mlwright.store STORE FLUSH_SECONDS FLUSH_ROWS [COUNT]``. Besides batches, the
stream carries :class:`~mlwright.store.batch.Watch` frames: from then on, the named variant's
values served by the named version are also counted into the bins of that version's
``reference.json`` by COUNT, the binning function the worker named (``module:function``),
imported when the first reference arrives.
"""

from __future__ import annotations

import importlib
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mlwright.store.batch import PredictionBatch, Watch
from mlwright.store.schema import connect
from mlwright.store.writer import FLUSH_ROWS, FLUSH_SECONDS, CountBatch, StoreWriter

log = logging.getLogger("mlwright.serve")
_GATHER_SECONDS = 0.005  # small against the store's 100 ms flush window


class PredictionWriter:
    """The worker's side: buffers answered batches and pipes them to the writer process, which
    counts drift with ``count`` (a module-level function; without it, nothing is counted)."""

    def __init__(
        self,
        path: Path,
        *,
        count: CountBatch | None = None,
        flush_seconds: float = FLUSH_SECONDS,
        flush_rows: int = FLUSH_ROWS,
        watches: list[Watch] | None = None,
    ) -> None:
        connect(path).close()  # the schema exists, and a bad path fails here, in the worker
        self.path = path
        named = [] if count is None else [import_name(count)]
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlwright.store",
                str(path),
                repr(flush_seconds),
                str(flush_rows),
                *named,
            ],
            stdin=subprocess.PIPE,
        )
        self._frames: list[bytes] = [w.frame() for w in watches or []]
        self._lock = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._send, name="mlwright-store", daemon=True)
        self._thread.start()

    def watch(self, watch: Watch) -> None:
        """Count ``watch.variant``'s values served by ``watch.version`` against its reference;
        batches added after this call are counted so."""
        self._queue(watch.frame())

    def add(self, batch: PredictionBatch) -> None:
        if not len(batch):
            return
        self._queue(batch.frame())

    def _queue(self, frame: bytes) -> None:
        with self._lock:
            self._frames.append(frame)
            if len(self._frames) == 1:
                self._lock.notify()

    def _send(self) -> None:
        pipe = self._proc.stdin
        assert pipe is not None
        while True:
            with self._lock:
                while not self._frames and not self._closing:
                    self._lock.wait()
            if not self._closing:
                time.sleep(_GATHER_SECONDS)  # under load, one write carries many requests
            with self._lock:
                frames, self._frames = self._frames, []
                closing = self._closing
            if frames:
                try:
                    pipe.write(b"".join(frames))
                    pipe.flush()
                except (OSError, ValueError):
                    log.error(
                        "the serving store's writer process has stopped (exit code %s); "
                        "%d request(s) were not recorded",
                        self._proc.poll(),
                        len(frames),
                    )
            if closing:
                return

    def close(self) -> None:
        """Send what is buffered, then let the writer process commit it and exit."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._thread.join(timeout=30)
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log.error("the serving store's writer process did not finish; stopping it")
            self._proc.kill()


def import_name(function: Any) -> str:
    """``module:name`` of a module-level function: how the worker names it to its writer."""
    name = f"{function.__module__}:{function.__qualname__}"
    if "<" in name:  # a lambda or a function defined inside another
        raise ValueError(f"{name} has no import name: pass a module-level function")
    return name


def imported(name: str) -> Any:
    """The object named ``module:name``."""
    module, _, qualname = name.partition(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    path, flush_seconds, flush_rows = Path(argv[0]), float(argv[1]), int(argv[2])
    count = argv[3] if len(argv) > 3 else None
    writer = StoreWriter(path, flush_seconds=flush_seconds, flush_rows=flush_rows)
    stream = sys.stdin.buffer
    try:
        while (item := PredictionBatch.read(stream)) is not None:
            if isinstance(item, Watch):
                if count is not None and writer.count is None:
                    writer.count = imported(count)  # loaded here, not inside a flush
                writer.watch(item)
            else:
                writer.add(item)
    finally:
        writer.close()
    return 0
