"""The default backend: folds run one at a time in this process, with every core the run has."""

from __future__ import annotations

from collections import deque
from typing import Any

from mlwright.distributed.backend import EpochHook, FoldJob, FoldResult, RunFold


class LocalExecutor:
    slots = 1

    def __init__(self, data: Any, run: RunFold) -> None:
        self.data = data
        self.run = run
        self._queue: deque[tuple[FoldJob, EpochHook | None]] = deque()

    def submit(self, job: FoldJob, on_epoch: EpochHook | None = None) -> None:
        self._queue.append((job, on_epoch))

    def next(self) -> FoldResult:
        job, on_epoch = self._queue.popleft()
        return self.run(self.data, job, on_epoch)

    def describe(self) -> dict[str, Any]:
        return {"backend": "local", "workers": 1}

    def close(self) -> None:
        self._queue.clear()


__all__ = ["LocalExecutor"]
