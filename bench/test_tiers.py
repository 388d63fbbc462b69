"""Benchmark: how long the fast test tier and a fresh clone's CI take on this machine.

Usage:  python bench/test_tiers.py [--ci] [--out bench/results/test-tiers.md]

Runs ``make test`` in this checkout (two pytest-xdist workers, as the Makefile sets) and, with
``--ci``, clones the checkout's HEAD into a temporary folder and runs ``.ci/run`` there (a fresh
virtualenv, the install, the fast tier, lint). The limits they are held to: the fast tier within
6 minutes, ``.ci/run`` within 10, on a 2-core machine. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        output = done.stdout + done.stderr
        failed = "\n".join(re.findall(r"^(?:FAILED|ERROR) .*$", output, flags=re.M))
        raise SystemExit(f"{' '.join(command)} failed:\n{failed}\n{output[-3000:]}")
    return seconds, done.stdout + done.stderr


def pytest_summary(output: str) -> str:
    found = re.findall(r"(\d+ passed[^\n]*? in [\d.]+s)", output)
    return found[-1] if found else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ci", action="store_true", help="also run .ci/run on a fresh clone")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "test-tiers.md")
    args = parser.parse_args()

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    rows = []
    seconds, output = run(["make", "test"], ROOT)
    rows.append(("`make test` (install up to date, fast tier)", seconds, pytest_summary(output)))
    if args.ci:
        clone = Path(tempfile.mkdtemp(prefix="mlwright-ci-")) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        seconds, output = run([".ci/run"], clone)
        install = re.search(r"install: done in (\d+) s", output)
        detail = f"install {install.group(1) if install else '?'} s; {pytest_summary(output)}"
        rows.append(("`.ci/run` on a fresh clone (install, fast tier, lint)", seconds, detail))
        shutil.rmtree(clone.parent, ignore_errors=True)

    command = "python bench/test_tiers.py" + (" --ci" if args.ci else "")
    lines = [
        "# Test tiers: time on this machine",
        "",
        f"Command: `{command}` at commit {commit}",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. Limits: fast tier 6 min, `.ci/run` 10 min.",
        "",
        "| run | seconds | detail |",
        "|---|---|---|",
        *[f"| {label} | {s:.0f} | {detail} |" for label, s, detail in rows],
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
