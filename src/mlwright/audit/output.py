"""The audit's findings for people (grouped by file, coloured) and machines (JSON, SARIF 2.1.0)."""

from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path
from typing import Any

from mlwright import __version__
from mlwright.audit import AuditResult
from mlwright.audit.core import RULES, Finding

COLOURS = {"high": "bold red", "medium": "yellow", "low": "cyan"}
SARIF_LEVELS = {"high": "error", "medium": "warning", "low": "note"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def text(result: AuditResult, console: Any) -> None:
    """Findings grouped by file, each with where, rule, severity, what and the fix."""
    from rich.text import Text

    for path, group in groupby(result.findings, key=lambda f: f.path):
        console.print(Text(path, style="bold underline"))
        for f in group:
            where = f"[cell {f.cell}] " if f.cell is not None else ""
            line = Text(f"  {where}{f.line}:{f.col}  ")
            line.append(f"{f.rule} {f.name}", style="bold")
            line.append(f" {f.severity}", style=COLOURS[f.severity])
            line.append(f"  {f.message}")
            console.print(line, soft_wrap=True)
            console.print(Text(f"      fix: {f.fix}", style="dim"), soft_wrap=True)
        console.print()
    counts = result.counts()
    files = len({f.path for f in result.findings})
    if result.findings:
        summary = ", ".join(f"{counts[s]} {s}" for s in ("high", "medium", "low") if counts[s])
        console.print(
            f"{len(result.findings)} finding(s) ({summary}) in {files} of {result.files} file(s)",
            highlight=False,
        )
    else:
        console.print(f"no findings in {result.files} file(s)", highlight=False)


def as_json(result: AuditResult) -> str:
    return json.dumps(
        {
            "version": 1,
            "files": result.files,
            "counts": result.counts(),
            "findings": [f.to_dict() for f in result.findings],
        },
        indent=2,
    )


def sarif(result: AuditResult, root: Path | None = None) -> str:
    """SARIF 2.1.0: one run, the rules as the tool's rules, one result per finding."""
    base = (root or Path.cwd()).resolve()
    rules = [
        {
            "id": info.id,
            "name": info.name,
            "shortDescription": {"text": info.summary},
            "defaultConfiguration": {"level": SARIF_LEVELS[info.severity]},
            "properties": {"severity": info.severity},
        }
        for info in sorted(RULES.values(), key=lambda r: r.id)
    ]
    index = {info.id: i for i, info in enumerate(sorted(RULES.values(), key=lambda r: r.id))}
    return json.dumps(
        {
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "mlwright-audit",
                            "version": __version__,
                            "rules": rules,
                        }
                    },
                    "results": [_result(f, index, base) for f in result.findings],
                    "columnKind": "unicodeCodePoints",
                }
            ],
        },
        indent=2,
    )


def _result(f: Finding, index: dict[str, int], base: Path) -> dict[str, Any]:
    try:
        path = Path(f.path).resolve()
    except (OSError, RuntimeError):  # a symbolic link loop (reported as a finding)
        path = Path(f.path).absolute()
    try:
        uri = path.relative_to(base).as_posix()
    except ValueError:
        uri = path.as_uri()
    out: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": index[f.rule],
        "level": SARIF_LEVELS[f.severity],
        "message": {"text": f"{f.message}. Fix: {f.fix}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": f.line, "startColumn": f.col},
                }
            }
        ],
    }
    if f.cell is not None:
        out["properties"] = {"notebookCell": f.cell}
    return out


__all__ = ["as_json", "sarif", "text"]
