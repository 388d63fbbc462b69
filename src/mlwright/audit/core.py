"""The audit's engine: sources (Python files and notebooks' code cells), findings, rules,
suppressions, and running every rule over many files on every core.

Nothing is executed: each file is parsed with :mod:`ast` and read by the rules. A file that does
not parse is one finding (``MLW000``), never a crash. A rule is a function from a
:class:`Source` to findings, registered with :func:`rule`; each rule family lives in its own
module under :mod:`mlwright.audit.rules`.
"""

from __future__ import annotations

import ast
import errno
import io
import json
import multiprocessing
import os
import re
import stat
import tokenize
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Literal

Severity = Literal["low", "medium", "high"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high")
SUPPRESS = re.compile(r"#\s*mlwright:\s*ignore\[([^\]]+)\]")
# Python parsed per file: a .py file, or a notebook's code cells. Past it the file is skipped
# with an MLW000 finding (a 10 MB generated module would take seconds and gigabytes to parse).
MAX_SOURCE_BYTES = 1_000_000
MAX_NOTEBOOK_BYTES = 25_000_000  # a notebook file, outputs (plots, tables) included
SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "env",
    "__pycache__",
    "node_modules",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "build",
    "dist",
    ".ipynb_checkpoints",
    "site-packages",
}


@dataclass(frozen=True)
class Finding:
    rule: str  # e.g. MLW101
    name: str  # e.g. unseeded-random
    severity: Severity
    path: str
    line: int
    col: int  # 1-based
    message: str
    fix: str
    cell: int | None = None  # notebooks: the code cell (1-based), line and col within it

    def where(self) -> str:
        cell = f"[cell {self.cell}]" if self.cell is not None else ""
        return f"{self.path}{cell}:{self.line}:{self.col}"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k != "cell"}


@dataclass(frozen=True)
class RuleInfo:
    id: str
    name: str
    severity: Severity
    summary: str
    check: Callable[[Source], Iterable[tuple[ast.AST | int, str, str]]]


RULES: dict[str, RuleInfo] = {}


def rule(
    id: str, name: str, severity: Severity, summary: str
) -> Callable[[Callable[[Source], Iterable[tuple[ast.AST | int, str, str]]]], Any]:
    """Register a check: it yields (node or line, message, fix) for each problem it sees."""

    def register(
        check: Callable[[Source], Iterable[tuple[ast.AST | int, str, str]]],
    ) -> Callable[[Source], Iterable[tuple[ast.AST | int, str, str]]]:
        RULES[id] = RuleInfo(id, name, severity, summary, check)
        return check

    return register


def _parses(src: Source) -> Iterable[tuple[ast.AST | int, str, str]]:
    return ()  # a file that does not parse is reported by check_source itself


class Source:
    """One parsed file: its tree, lines, import aliases, parents, and qualified call names."""

    def __init__(self, path: str, code: str, cells: list[tuple[int, int]] | None = None) -> None:
        self.path = path
        self.code = code
        self.lines = code.splitlines()
        self.cells = cells  # notebooks: (first line in ``code``, cell number), in order
        self.tree = ast.parse(code, filename=path)
        self.parents: dict[ast.AST, ast.AST] = {}
        self.imports: dict[str, str] = {}
        self.names: set[str] = set()  # every qualified name called or referenced
        # one traversal: every node by type (rules ask for the kinds they read), and parents
        self.by_type: dict[type, list[Any]] = {}
        stack: list[ast.AST] = [self.tree]
        parents = self.parents
        while stack:
            node = stack.pop()
            self.by_type.setdefault(type(node), []).append(node)
            for field_name in node._fields:
                value = getattr(node, field_name, None)
                if isinstance(value, ast.AST):
                    parents[value] = node
                    stack.append(value)
                elif isinstance(value, list):
                    for item in value:
                        if isinstance(item, ast.AST):
                            parents[item] = node
                            stack.append(item)
        for node in self.of(ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                self.imports[local] = alias.name if alias.asname else local
        for node in self.of(ast.ImportFrom):
            if node.module and not node.level:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        self.calls: list[ast.Call] = sorted(
            self.of(ast.Call), key=lambda c: (c.lineno, c.col_offset)
        )
        self._qualified: dict[int, str | None] = {}
        for call in self.calls:
            name = self.qualname(call.func)
            if name:
                self.names.add(name)

    def of(self, *kinds: type) -> list[Any]:
        """Every node of these types in the file (in no particular order)."""
        if len(kinds) == 1:
            return self.by_type.get(kinds[0], [])
        return [node for kind in kinds for node in self.by_type.get(kind, [])]

    def within(self, scope: ast.AST, *kinds: type) -> list[Any]:
        """The nodes of these types inside ``scope`` (the module: all of them)."""
        nodes = self.of(*kinds)
        if scope is self.tree:
            return nodes
        return [n for n in nodes if any(a is scope for a in self.ancestors(n))]

    @property
    def modules(self) -> set[str]:
        """Top-level packages imported (``torch``, ``sklearn``, ...)."""
        return {q.split(".")[0] for q in self.imports.values()}

    def qualname(self, node: ast.AST) -> str | None:
        """``np.random.rand`` → ``numpy.random.rand``; ``RF`` (imported as such) → its full
        name; None for anything that is not a dotted name."""
        key = id(node)
        if key in self._qualified:
            return self._qualified[key]
        parts = []
        current = node
        while isinstance(current, ast.Attribute):
            parts.append(current.attr)
            current = current.value
        result = None
        if isinstance(current, ast.Name):
            head = self.imports.get(current.id, current.id)
            result = ".".join([head, *reversed(parts)])
        self._qualified[key] = result
        return result

    def calls_to(self, match: Callable[[str], bool]) -> Iterator[tuple[ast.Call, str]]:
        for call in self.calls:
            name = self.qualname(call.func)
            if name and match(name):
                yield call, name

    def called(self, *suffixes: str) -> bool:
        """Whether any call's qualified name is or ends with one of ``suffixes``."""
        return any(n == s or n.endswith("." + s) for n in self.names for s in suffixes)

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        while node in self.parents:
            node = self.parents[node]
            yield node

    def scope_of(self, node: ast.AST) -> ast.AST:
        """The function (or the module) a node belongs to."""
        for parent in self.ancestors(node):
            if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return parent
        return self.tree

    def locate(self, line: int) -> tuple[int, int | None]:
        return locate(self.cells, line)

    def suppressed(self, line: int, rule_id: str, name: str) -> bool:
        """``# mlwright: ignore[RULE, ...]`` on the line, or on a comment line just above it
        (room for the reason)."""
        for number in (line, line - 1):
            if not 1 <= number <= len(self.lines):
                continue
            text = self.lines[number - 1]
            if number != line and not text.lstrip().startswith("#"):
                continue
            match = SUPPRESS.search(text)
            if match:
                listed = {part.strip() for part in match.group(1).split(",")}
                if rule_id in listed or name in listed:
                    return True
        return False


rule(
    "MLW000", "syntax-error", "high", "a file that does not parse (nothing else in it is checked)"
)(_parses)


def locate(cells: list[tuple[int, int]] | None, line: int) -> tuple[int, int | None]:
    """(line, cell) for a line of a source's code: within its cell for notebooks."""
    if not cells:
        return line, None
    start, number = cells[0]
    for first, cell in cells:
        if first > line:
            break
        start, number = first, cell
    return line - start + 1, number


def callee(call: ast.Call) -> str | None:
    """The called name's last part: ``model`` for ``model(x)``, ``fit`` for ``m.fit(X)``."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def keyword(call: ast.Call, name: str) -> ast.keyword | None:
    return next((k for k in call.keywords if k.arg == name), None)


def has_kwargs(call: ast.Call) -> bool:
    """``f(**options)``: any keyword may be inside."""
    return any(k.arg is None for k in call.keywords)


# --- reading files --------------------------------------------------------------------------------


def notebook_code(text: str) -> tuple[str, list[tuple[int, int]]]:
    """The code cells of a notebook as one script, and where each cell starts. IPython magics
    and shell lines become blank lines (line numbers stay the cell's)."""
    data = json.loads(text)
    pieces: list[str] = []
    cells: list[tuple[int, int]] = []
    line = 1
    number = 0
    for cell in data.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        number += 1
        source = cell.get("source", "")
        body = "".join(source) if isinstance(source, list) else str(source)
        lines = body.splitlines() or [""]
        if lines[0].lstrip().startswith("%%"):  # a cell magic: not Python
            lines = [""] * len(lines)
        lines = ["" if s.lstrip().startswith(("%", "!")) else s for s in lines]
        cells.append((line, number))
        pieces.extend(lines)
        line += len(lines)
    return "\n".join(pieces) + "\n", cells


def discover(paths: Iterable[str | Path], exclude: Iterable[str] = ()) -> list[Path]:
    """The .py and .ipynb files under ``paths`` (files given directly are always included),
    in a stable order, without virtualenvs, caches and ``exclude`` globs."""
    patterns = list(exclude)
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_file() or (path.is_symlink() and not path.is_dir()):
            found.append(path)  # a broken link or a link loop is reported by check_file
            continue
        if not path.exists():
            from mlwright.errors import ConfigError

            raise ConfigError(f"{str(path)!r} does not exist", fix="pass files or folders to audit")
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
            for name in sorted(files):
                if name.endswith((".py", ".ipynb")):
                    candidate = Path(root) / name
                    rel = candidate.as_posix()
                    if not any(fnmatch(rel, p) or fnmatch(name, p) for p in patterns):
                        found.append(candidate)
    return found


@dataclass
class Selection:
    """Which rules run and at which severity."""

    select: tuple[str, ...] = ()  # empty: every rule
    ignore: tuple[str, ...] = ()
    severity: dict[str, Severity] = field(default_factory=dict)

    def active(self) -> list[RuleInfo]:
        chosen = []
        for info in RULES.values():
            keys = {info.id, info.name}
            if self.select and not keys & set(self.select):
                continue
            if keys & set(self.ignore):
                continue
            chosen.append(info)
        return chosen

    def severity_of(self, info: RuleInfo) -> Severity:
        return self.severity.get(info.id) or self.severity.get(info.name) or info.severity


def unreadable(
    path: str, message: str, fix: str, line: int = 1, col: int = 1, cell: int | None = None
) -> Finding:
    """The MLW000 finding of a file that could not be checked."""
    return Finding("MLW000", "syntax-error", "high", path, line, col, message, fix, cell)


def check_source(path: str, text: str, selection: Selection) -> list[Finding]:
    """Every finding in one file's text (a notebook when ``path`` ends with .ipynb)."""
    from mlwright.audit import rules  # noqa: F401  (registers the rules)

    cells = None
    try:
        if path.endswith(".ipynb"):
            text, cells = notebook_code(text)
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_SOURCE_BYTES:
            what = "notebook's code" if cells is not None else "file"
            return [_too_large(path, what, size, MAX_SOURCE_BYTES)]
        source = Source(path, text, cells)
    except SyntaxError as exc:
        located, cell = locate(cells, exc.lineno or 1)
        message = f"the file does not parse: {exc.msg}; nothing else in it was checked"
        return [unreadable(path, message, "fix the syntax error", located, exc.offset or 1, cell)]
    except (ValueError, RecursionError, AttributeError, TypeError) as exc:
        # a notebook that is not JSON (or not nbformat), null bytes, absurdly deep nesting
        kind = "notebook" if path.endswith(".ipynb") else "file"
        message = f"the {kind} cannot be read as Python: {type(exc).__name__}: {exc}"[:300]
        fix = "save it again from Jupyter" if kind == "notebook" else "fix the file"
        return [unreadable(path, message, fix)]
    findings = []
    for info in selection.active():
        for where, message, fix in info.check(source):
            line = where if isinstance(where, int) else getattr(where, "lineno", 1)
            col = 1 if isinstance(where, int) else getattr(where, "col_offset", 0) + 1
            if source.suppressed(line, info.id, info.name):
                continue
            located, cell = source.locate(line)
            findings.append(
                Finding(
                    info.id,
                    info.name,
                    selection.severity_of(info),
                    path,
                    located,
                    col,
                    message,
                    fix,
                    cell,
                )
            )
    return sorted(
        set(findings), key=lambda f: (f.line if f.cell is None else (f.cell, f.line), f.col, f.rule)
    )


def check_file(path: Path, selection: Selection) -> list[Finding]:
    """Every finding in one file; a file that cannot or should not be read (a link loop, not a
    regular file, too large, undecodable) is one MLW000 finding that says why it was skipped."""
    name = str(path)
    notebook = name.endswith(".ipynb")
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return [
                unreadable(
                    name,
                    "not a regular file (a pipe, socket or device); it was skipped",
                    "exclude it ([tool.mlwright.audit] exclude)",
                )
            ]
        limit = MAX_NOTEBOOK_BYTES if notebook else MAX_SOURCE_BYTES
        if info.st_size > limit:
            return [_too_large(name, "file", info.st_size, limit)]
        raw = path.read_bytes()
    except OSError as exc:
        return [_unreachable(path, exc)]
    if notebook:  # nbformat is UTF-8 JSON
        try:
            return check_source(name, raw.decode("utf-8"), selection)
        except UnicodeDecodeError as exc:
            message = f"the notebook is not valid UTF-8 (byte {exc.start}); it was skipped"
            return [unreadable(name, message, "save it again from Jupyter")]
    try:
        encoding, declared = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:  # an unknown codec, or a cookie that contradicts a BOM
        return [
            unreadable(
                name,
                f"the file's encoding declaration cannot be used: {exc}; it was skipped",
                "fix the `# -*- coding: NAME -*-` line (PEP 263), or save the file as UTF-8 and "
                "remove it",
            )
        ]
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        said = " (as its coding line declares)" if _has_cookie(declared) else ""
        return [
            unreadable(
                name,
                f"the file is not valid {encoding}{said} at byte {exc.start}; it was skipped",
                "save it as UTF-8, or declare its real encoding on line 1 or 2: "
                "`# -*- coding: latin-1 -*-` (PEP 263)",
            )
        ]
    return check_source(name, text, selection)


def _has_cookie(lines: Iterable[bytes]) -> bool:
    return any(re.match(rb"^[ \t\f]*#.*?coding[:=]", line) for line in lines)


def _too_large(path: str, what: str, size: int, limit: int) -> Finding:
    return unreadable(
        path,
        f"the {what} was skipped: it is {size / 1_000_000:.1f} MB, over the "
        f"{limit // 1_000_000} MB limit per file (generated code or data, most likely)",
        'exclude it ([tool.mlwright.audit] exclude = ["..."]), or split it into smaller modules',
    )


def _unreachable(path: Path, exc: OSError) -> Finding:
    """The finding of a file that cannot be opened: a link loop, a broken link, permissions."""
    name = str(path)
    link = ""
    try:
        if path.is_symlink():
            link = f" (a symbolic link to {os.readlink(path)!r})"
    except OSError:
        pass
    if exc.errno == errno.ELOOP:
        message = f"the file is a symbolic link that loops{link}; it was skipped"
        fix = "point the link at a real file, remove it, or exclude it"
    elif exc.errno == errno.ENOENT:
        message = f"the file does not exist{link}; it was skipped"
        fix = "point the link at a real file, remove it, or exclude it"
    else:
        message = f"the file cannot be read: {exc.strerror or exc}; it was skipped"
        fix = "check its permissions, or exclude it"
    return unreadable(name, message, fix)


def _check_chunk(args: tuple[list[str], Selection]) -> list[Finding]:
    paths, selection = args
    out: list[Finding] = []
    for path in paths:
        out.extend(check_file(Path(path), selection))
    return out


def run(files: list[Path], selection: Selection, workers: int | None = None) -> list[Finding]:
    """Every file's findings, in file order; files are checked on ``workers`` processes
    (default: every core) when there are enough of them to pay for the processes."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(files) < 200:
        return _check_chunk(([str(f) for f in files], selection))
    size = max(50, len(files) // (workers * 8))
    chunks = [[str(f) for f in files[i : i + size]] for i in range(0, len(files), size)]
    findings: list[Finding] = []
    # forkserver, not fork: forking a process whose threads hold locks (JAX's, a notebook's)
    # can deadlock the child
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for part in pool.map(_check_chunk, [(c, selection) for c in chunks]):
            findings.extend(part)
    return findings


__all__ = [
    "MAX_NOTEBOOK_BYTES",
    "MAX_SOURCE_BYTES",
    "RULES",
    "SEVERITIES",
    "Finding",
    "RuleInfo",
    "Selection",
    "Severity",
    "Source",
    "callee",
    "check_file",
    "check_source",
    "discover",
    "has_kwargs",
    "keyword",
    "notebook_code",
    "rule",
    "run",
]
