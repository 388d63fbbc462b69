"""Where the commands print. Results go to stdout, everything else to stderr. Tables: in a
terminal rich fits them to its width; anywhere else (a pipe, a file, CI) it would assume 80
columns and cut cells to "accur…", so there a table is printed at its natural width and no value
is lost."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

_UNBOUNDED = 100_000  # columns offered to a table to learn how wide it wants to be


def stderr_console() -> Console:
    """Progress, notes and errors go to stderr, so that stdout holds only the result."""
    from rich.console import Console

    return Console(stderr=True)


def print_wide(console: Console, renderable: RenderableType) -> None:
    """Print ``renderable`` (a table, or a group holding tables): fitted to a terminal, at its
    natural width anywhere else."""
    if console.is_terminal:
        console.print(renderable)
        return
    from rich.measure import Measurement

    natural = Measurement.get(console, console.options.update_width(_UNBOUNDED), renderable).maximum
    width = console.width
    console.width = max(width, min(natural, _UNBOUNDED))
    try:
        console.print(renderable)
    finally:
        console.width = width
