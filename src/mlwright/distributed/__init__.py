"""Where the search's trials run: this process (``local``, the default) or a Ray cluster.

The search (:mod:`mlwright.train.search`) decides which trial runs next, when one is pruned and
when the budget is spent; a backend only runs the folds it is given
(:class:`~mlwright.distributed.backend.Executor`). Ray is imported only by
:mod:`mlwright.distributed.ray` and only when ``--backend ray`` asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlwright.config import TrainOptions
    from mlwright.distributed.backend import Executor
    from mlwright.train.search import SearchData


def make_executor(options: TrainOptions, data: SearchData, threads: int) -> Executor:
    """The backend ``options`` ask for, holding ``data``; ``threads`` per trial."""
    if options.backend == "ray":
        from mlwright.distributed.ray import RayExecutor

        return RayExecutor(
            data, address=options.ray_address, workers=options.workers, threads=threads
        )
    from mlwright.distributed.local import LocalExecutor

    return LocalExecutor(data)


__all__ = ["make_executor"]
