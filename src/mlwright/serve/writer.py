"""The serving store's writer process: one per server worker.

A worker's request path only appends the request and response bytes it already holds to a
buffer; a sender thread pipes them to this process, which parses them and commits them to SQLite
(:class:`~mlwright.serve.store.StoreWriter`: every 100 ms or 512 predictions). Recording a
prediction therefore never competes with scoring for the worker's interpreter lock.

The process reads framed batches from standard input until end of file, then flushes and exits:
a worker that stops, gracefully or not, closes the pipe and its writer commits what it received.
It ignores SIGINT and SIGTERM, which are meant for the worker, so that a Ctrl-C or a stop of the
whole process group does not lose the buffered predictions.

Run as ``python -m mlwright.serve.writer STORE FLUSH_SECONDS FLUSH_ROWS [REFERENCES]``, where
REFERENCES is a JSON object of variant → ``reference.json`` path: those variants' served values
are also counted into the reference's bins (:mod:`mlwright.serve.drift_counts`).
"""

from __future__ import annotations

import json
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
        references: dict[str, Path] | None = None,
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
                json.dumps({k: str(v) for k, v in (references or {}).items()}),
            ],
            stdin=subprocess.PIPE,
        )
        self._frames: list[bytes] = []
        self._lock = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._send, name="mlwright-store", daemon=True)
        self._thread.start()

    def add(self, batch: PredictionBatch) -> None:
        if not len(batch):
            return
        frame = batch.frame()
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
    references = {
        variant: json.loads(Path(file).read_text(encoding="utf-8"))
        for variant, file in (json.loads(argv[3]) if len(argv) > 3 else {}).items()
    }
    if references:  # load the counting code now, not inside the first flush
        import mlwright.serve.drift_counts  # noqa: F401
    writer = StoreWriter(
        path, flush_seconds=flush_seconds, flush_rows=flush_rows, references=references
    )
    stream = sys.stdin.buffer
    try:
        while (batch := PredictionBatch.read(stream)) is not None:
            writer.add(batch)
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["PredictionWriter"]
