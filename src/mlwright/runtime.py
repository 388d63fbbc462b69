"""What kind of process mlwright runs in.

As a library, mlwright shares its process with its user's code and leaves the other libraries in
it as it found them. Run as its own command line (``mlwright ...``), nothing else shares the
process, which allows what a library must not do to its host; ``mlwright.cli`` marks the process
so before it runs a command.
"""

from __future__ import annotations

_command_line = False


def mark_command_line() -> None:
    """This process runs mlwright's command line, and no one else's code."""
    global _command_line
    _command_line = True


def is_command_line() -> bool:
    return _command_line
