"""The fenced code blocks of README.md and docs/*.md, and what the tests do with each.

A ```python block runs; a ```console or ```bash block's commands run (``$ `` starts a command in
a console block, whose other lines are output; every line of a bash block is a command). A block
that cannot run in a test is marked just above its fence, in the Markdown source, with a reason:

    <!-- not-run: starts a server that runs until stopped -->

and a single kind of command in a block with ``<!-- not-run `mlwright ui`: REASON -->`` (every
command of the block that starts with the quoted text). Blocks in other languages (yaml, json,
text, a tree without a language) are data and output, not examples.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXECUTED = ("python", "console", "bash")
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
MARK = re.compile(r"<!--\s*not-run(?:\s+`(?P<prefix>[^`]+)`)?\s*:\s*(?P<reason>.*?)\s*-->", re.S)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    body: str
    # the reason the whole block is not run, or None
    not_run: str | None = None
    # command prefix -> why commands starting with it are not run
    not_run_commands: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def commands(self) -> list[str]:
        """The shell commands of a console or bash block, comments and output left out;
        a trailing backslash continues a command on the next line."""
        commands: list[str] = []
        pending = ""
        for raw in self.body.splitlines():
            line = raw.strip()
            if pending:
                line = pending + " " + line
            elif self.lang == "console":
                if not line.startswith("$ "):
                    continue  # output
                line = line[2:].strip()
            elif not line or line.startswith("#"):
                continue
            if line.endswith("\\"):
                pending = line[:-1].rstrip()
                continue
            pending = ""
            commands.append(line)
        return commands

    def skipped_because(self, command: str) -> str | None:
        for prefix, reason in self.not_run_commands.items():
            if command.startswith(prefix):
                return reason
        return None


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        # the markers: HTML comments between the previous text and the fence
        preamble = re.search(r"(?:<!--(?:(?!-->).)*-->\s*)*$", before, flags=re.S)
        marks = list(MARK.finditer(preamble.group(0) if preamble else ""))
        whole = next((m["reason"] for m in marks if not m["prefix"]), None)
        found.append(
            Block(
                path=path,
                line=before.count("\n") + 1,
                lang=match["lang"],
                body=match["body"],
                not_run=whole,
                not_run_commands={m["prefix"]: m["reason"] for m in marks if m["prefix"]},
            )
        )
    return found


def split(command: str) -> list[str]:
    """A command's words as a POSIX shell splits them, its ``# comment`` left out."""
    return shlex.split(command, comments=True)
