"""``mlwright audit``: the seed's anti-patterns in your own ML code, found without running it.

::

    from mlwright.audit import audit
    result = audit(["train.py", "notebooks/"])
    for finding in result.findings:
        print(finding.where(), finding.rule, finding.message)

Rules (``MLW101``…``MLW109``, and ``MLW000`` for a file that does not parse) live one family per
module in :mod:`mlwright.audit.rules`; settings come from ``[tool.mlwright.audit]`` in the
nearest ``pyproject.toml``. A line ending in ``# mlwright: ignore[MLW106]`` (rule ids or names,
comma-separated) suppresses those rules on that line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlwright.audit.core import RULES, SEVERITIES, Finding, Selection, Severity, discover, run
from mlwright.errors import ConfigError

KEYS = {"select", "ignore", "exclude", "fail-on", "severity", "format"}


@dataclass
class AuditSettings:
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    fail_on: Severity = "medium"
    severity: dict[str, Severity] = field(default_factory=dict)
    format: str = "text"
    source: str | None = None  # the pyproject.toml it came from

    def selection(self) -> Selection:
        return Selection(self.select, self.ignore, dict(self.severity))


@dataclass
class AuditResult:
    findings: list[Finding]
    files: int

    def at_least(self, severity: Severity) -> list[Finding]:
        floor = SEVERITIES.index(severity)
        return [f for f in self.findings if SEVERITIES.index(f.severity) >= floor]

    def counts(self) -> dict[str, int]:
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}


def find_pyproject(start: Path) -> Path | None:
    try:
        folder = start.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop: look from the folder it is in
        folder = start.absolute().parent
    if folder.is_file():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate / "pyproject.toml"
    return None


def load_settings(start: Path | None = None, path: Path | None = None) -> AuditSettings:
    """``[tool.mlwright.audit]`` of ``path`` (or of the nearest pyproject.toml above
    ``start``); defaults when there is none. Unknown keys and values are errors."""
    path = path or find_pyproject(start or Path.cwd())
    if path is None:
        return AuditSettings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}", fix="fix the TOML syntax") from None
    table = data.get("tool", {}).get("mlwright", {}).get("audit", {})
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigError(
            f"[tool.mlwright.audit] in {path} has unknown key(s) {unknown}",
            fix=f"use {', '.join(sorted(KEYS))}",
        )
    return settings_from(table, source=str(path))


def settings_from(table: dict[str, Any], source: str | None = None) -> AuditSettings:
    where = f" ([tool.mlwright.audit] in {source})" if source else ""

    def names(key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings{where}", fix=f'{key} = ["..."]')
        if key in ("select", "ignore"):
            known = {r.id for r in RULES.values()} | {r.name for r in RULES.values()}
            wrong = [v for v in value if v not in known]
            if wrong:
                raise ConfigError(f"{key}: unknown rule(s) {wrong}{where}", fix=_rule_list())
        return tuple(value)

    severity = dict(table.get("severity", {}))
    for rule_key, level in severity.items():
        if level not in SEVERITIES:
            raise ConfigError(
                f"severity of {rule_key!r} is {level!r}{where}", fix="use low, medium or high"
            )
    fail_on = table.get("fail-on", "medium")
    if fail_on not in SEVERITIES:
        raise ConfigError(f"fail-on is {fail_on!r}{where}", fix="use low, medium or high")
    fmt = table.get("format", "text")
    if fmt not in ("text", "json", "sarif"):
        raise ConfigError(f"format is {fmt!r}{where}", fix="use text, json or sarif")
    return AuditSettings(
        select=names("select"), ignore=names("ignore"), exclude=names("exclude"),
        fail_on=fail_on, severity=severity, format=fmt, source=source,
    )  # fmt: skip


def _rule_list() -> str:
    return "known rules: " + ", ".join(f"{r.id} ({r.name})" for r in RULES.values())


def audit(
    paths: Iterable[str | Path],
    settings: AuditSettings | None = None,
    *,
    workers: int | None = None,
) -> AuditResult:
    """Audit ``paths`` (files and folders: .py files and notebooks' code cells)."""
    chosen = settings or AuditSettings()
    files = discover(paths, chosen.exclude)
    return AuditResult(run(files, chosen.selection(), workers), len(files))


from mlwright.audit import rules  # noqa: E402, F401  (registers every rule in RULES)

__all__ = [
    "RULES",
    "AuditResult",
    "AuditSettings",
    "Finding",
    "audit",
    "find_pyproject",
    "load_settings",
    "settings_from",
]
