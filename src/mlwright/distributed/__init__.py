"""Where the search's trials run: this process (``local``, the default) or a Ray cluster.

The search (:mod:`mlwright.train.search`) decides which trial runs next, when one is pruned and
when the budget is spent; a backend only runs the folds it is given, with the fold function it
is given (:class:`~mlwright.distributed.backend.Executor`). Ray is imported only by
:mod:`mlwright.distributed.ray` and only when ``--backend ray`` asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlwright.config import TrainOptions
    from mlwright.distributed.backend import Executor, LibraryVersions, RunFold


def make_executor(
    options: TrainOptions,
    data: Any,
    threads: int,
    *,
    run: RunFold,
    versions: LibraryVersions,
) -> Executor:
    """The backend ``options`` ask for, holding ``data`` (the searched rows); ``threads`` per
    trial. ``run`` fits and scores one fold; ``versions`` lists the libraries that every Ray
    node must share with this process."""
    if options.backend == "ray":
        from mlwright.distributed.ray import RayExecutor

        return RayExecutor(
            data,
            run,
            address=options.ray_address,
            workers=options.workers,
            threads=threads,
            versions=versions,
        )
    from mlwright.distributed.local import LocalExecutor

    return LocalExecutor(data, run)


__all__ = ["make_executor"]
