"""One exception tree for everything mlwright refuses to do.

Every error says what is wrong (naming the file, column, field or value) and what to do next.
The CLI prints ``str(error)`` and exits 1; the Python API raises the same objects.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class MlwrightError(Exception):
    """Base class: a failure the user can fix. ``fix`` says how."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if fix is None else f"{message}\n  fix: {fix}")


class DataError(MlwrightError):
    """The input data cannot be read or is unusable as given."""


class DataSourceError(DataError):
    """A file, URL or query could not be read (missing, unreadable, corrupt, empty)."""


class ColumnError(DataError):
    """A named column is missing, duplicated or unusable."""


class TargetError(DataError):
    """The target column cannot define a learning problem."""


class ConfigError(MlwrightError):
    """A setting, option or configuration file is invalid."""


class EstimatorInputError(DataError, ValueError):
    """Data or options given to a scikit-learn estimator (:mod:`mlwright.sklearn`) are
    unusable; also the ValueError scikit-learn's tools expect."""


class SignatureError(MlwrightError):
    """A package's signature is missing, foreign or broken, or a key cannot be used."""


@dataclass(frozen=True)
class Violation:
    """One way a frame breaks its schema: column, row, value, and what was expected."""

    column: str
    reason: str
    expected: str
    row: Any = None
    value: Any = None

    def __str__(self) -> str:
        where = f"column {self.column!r}"
        if self.row is not None:
            where += f", row {self.row!r}"
        got = "" if self.value is None else f" (got {self.value!r})"
        return f"{where}: {self.reason}{got}; expected {self.expected}"


class SchemaViolationError(DataError):
    """A frame does not satisfy a TableSchema. ``violations`` lists every problem found."""

    def __init__(self, violations: list[Violation], *, total: int | None = None) -> None:
        self.violations = violations
        self.total = len(violations) if total is None else total
        shown = "\n".join(f"  - {v}" for v in violations[:20])
        more = self.total - min(len(violations), 20)
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"the data does not match the schema ({self.total} problem(s)):\n{shown}{tail}",
            fix="correct or remove the values listed, or retrain on data that contains them",
        )


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates that look most like ``name`` (case-insensitive), best first."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def suggest(name: str, candidates: Iterable[str]) -> str:
    """A 'did you mean' phrase, or a short list of what exists."""
    pool = list(candidates)
    hits = closest(name, pool)
    if hits:
        return "did you mean " + " or ".join(repr(h) for h in hits) + "?"
    listed = ", ".join(repr(c) for c in pool[:10])
    more = f" and {len(pool) - 10} more" if len(pool) > 10 else ""
    return f"the columns are {listed}{more}"
