"""The serving store's writer process: one per server worker.

A worker's request path only appends the request and response bytes it already holds to a
buffer; a sender thread pipes them to this process, which parses them and commits them to SQLite
(:class:`~mlwright.serve.store.StoreWriter`: every 100 ms or 512 predictions). Recording a
prediction therefore never competes with scoring for the worker's interpreter lock.

The process reads framed batches from standard input until end of file, then flushes and exits:
a worker that stops, gracefully or not, closes the pipe and its writer commits what it received.
It ignores SIGINT and SIGTERM, which are meant for the worker, so that a Ctrl-C or a stop of the
whole process group does not lose the buffered predictions.

Run as ``python -m mlwright.serve.writer STORE FLUSH_SECONDS FLUSH_ROWS``. Besides batches, the
stream carries :class:`~mlwright.serve.store.Watch` frames: from then on, the named variant's
values served by the named version are also counted into the bins of that version's
``reference.json`` (:mod:`mlwright.serve.drift_counts`).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mlwright.serve.store import (
    FLUSH_ROWS,
    FLUSH_SECONDS,
    PredictionBatch,
    StoreWriter,
    Watch,
    connect,
)

log = logging.getLogger("mlwright.serve")
_GATHER_SECONDS = 0.005  # small against the store's 100 ms flush window


class PredictionWriter:
    """The worker's side: buffers answered batches and pipes them to the writer process."""

    def __init__(
        self,
        path: Path,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        flush_rows: int = FLUSH_ROWS,
        watches: list[Watch] | None = None,
    ) -> None:
        connect(path).close()  # the schema exists, and a bad path fails here, in the worker
        self.path = path
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlwright.serve.writer",
                str(path),
                repr(flush_seconds),
                str(flush_rows),
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


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    path, flush_seconds, flush_rows = Path(argv[0]), float(argv[1]), int(argv[2])
    writer = StoreWriter(path, flush_seconds=flush_seconds, flush_rows=flush_rows)
    stream = sys.stdin.buffer
    try:
        while (item := PredictionBatch.read(stream)) is not None:
            if isinstance(item, Watch):
                writer.watch(item)  # also loads the counting code, not inside a flush
            else:
                writer.add(item)
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["PredictionWriter"]
