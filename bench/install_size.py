"""Benchmark: what installing mlwright costs, the core and each extra.

Usage:  python bench/install_size.py [--out bench/results/install.md]

Builds a wheel from this tree and installs it with its core dependencies alone into a new
virtualenv (constraints.txt applied, as `make install` does): the time it took, the folder's size
and the number of packages. Then, for each extra, asks pip in that virtualenv what installing the
extra would add (``pip install --dry-run --report``) and sums those distributions' installed files
as they are in the running interpreter's environment (the development virtualenv, which holds
every extra). pip's download cache makes the timed install a measure of unpacking, not of the
network, when the packages were downloaded before.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("torch", "onnx", "keras", "jax", "tensorflow", "ray", "wandb", "ui", "dev")


def run(*command: str | Path) -> str:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def folder_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def installed_mib(name: str, beside: Path) -> float | None:
    """The size of a distribution's files in this interpreter's environment, less the files
    already in the site-packages folder ``beside`` (mlflow and mlflow-skinny, for one, install
    the same modules)."""
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        return None
    total = 0
    for file in dist.files or ():
        path = Path(str(dist.locate_file(file)))
        if path.is_file() and not (beside / file).exists():
            total += path.stat().st_size
    return total / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "install.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlwright-install-bench-"))
    try:
        run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", ROOT)
        wheel = next((work / "dist").glob("mlwright-*.whl"))
        venv = work / "venv"
        python = venv / "bin" / "python"
        run(sys.executable, "-m", "venv", venv)
        run(python, "-m", "pip", "install", "-q", "--upgrade", "pip")
        start = time.perf_counter()
        run(python, "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt", wheel)
        seconds = time.perf_counter() - start
        core_mib = folder_mib(venv)
        listed = json.loads(run(python, "-m", "pip", "list", "--format", "json"))
        packages = len(listed)
        core_names = {item["name"].lower() for item in listed}
        rows = []
        for extra in EXTRAS:
            report = work / f"{extra}.json"
            run(
                python,
                "-m",
                "pip",
                "install",
                "-q",
                "--dry-run",
                "--report",
                report,
                "-c",
                ROOT / "constraints.txt",
                f"{wheel}[{extra}]",
            )
            wanted = [
                (item["metadata"]["name"], item["metadata"]["version"])
                for item in json.loads(report.read_text())["install"]
                if item["metadata"]["name"].lower() != "mlwright"
            ]
            # a package the core has already, at another version the extra needs: replaced
            replaced = [f"{n} {v}" for n, v in wanted if n.lower() in core_names]
            added = [n for n, _ in wanted if n.lower() not in core_names]
            site = next((venv / "lib").glob("python*/site-packages"))
            sizes = [installed_mib(name, site) for name in added]
            known = sum(s for s in sizes if s is not None)
            missing = [n for n, s in zip(added, sizes, strict=True) if s is None]
            largest = sorted(
                ((s, n) for n, s in zip(added, sizes, strict=True) if s is not None), reverse=True
            )[:3]
            rows.append((extra, len(added), known, missing, largest, replaced))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "# What an install costs",
        "",
        "Command: `python bench/install_size.py`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; constraints.txt applied (PyTorch's CPU wheel).",
        "",
        f"Core (`pip install mlwright`, from the wheel): {core_mib:,.0f} MiB, {packages} packages, "
        f"installed in {seconds:.0f} s (downloads from pip's cache).",
        "",
        "| extra | packages it adds | MiB it adds | the largest (MiB) "
        "| core packages pip installs again (same or other version) |",
        "|---|---|---|---|---|",
        *[
            f"| `[{extra}]` | {count} | {mib:,.0f}"
            + (f" (not measured: {', '.join(missing)})" if missing else "")
            + " | "
            + ", ".join(f"{name} {size:,.0f}" for size, name in largest)
            + " | "
            + (", ".join(f"to {r}" for r in replaced) or "none")
            + " |"
            for extra, count, mib, missing, largest, replaced in rows
        ],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
