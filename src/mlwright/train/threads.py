"""How many threads a fit uses.

OpenMP libraries (LightGBM, XGBoost, scikit-learn, PyTorch) split each step of a fit across
their threads and wait for the slowest at every step. A thread whose core another program holds
makes every step wait for the scheduler: with one other busy process on a 2-core machine, a
LightGBM fit on both cores takes about twice as long as on one (bench/results/threads.md). So,
unless ``--threads`` says:

- a run with a time budget counts the cores other programs keep busy when it starts (over a
  short window, on the cores this process may use) and leaves them alone;
- a run without a budget (``--max-trials`` alone, the reproducible mode) uses every core it may,
  whatever else runs, so that two runs fit with the same threads.

OpenMP's own waiting policy is left alone: sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) makes a
two-thread fit several times slower on an idle machine (bench/results/threads.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlwright.config import TrainOptions, usable_cores

WINDOW_SECONDS = 0.25  # how long the other programs' load is measured


def fit_threads(options: TrainOptions, timed: bool) -> tuple[int, str | None]:
    """Threads for the run's fits, and the reason when other programs took some cores."""
    if options.threads is not None:
        return options.threads, None
    usable = usable_cores()
    if not timed or usable < 2:
        return usable, None
    busy = cores_busy_elsewhere()
    free = max(1, min(usable, round(usable - busy)))
    if free == usable:
        return usable, None
    return free, (
        f"other programs keep about {busy:.1f} of the {usable} cores this run may use busy: "
        f"its fits use {free} thread(s) (--threads sets it)"
    )


def search_threads(options: TrainOptions, threads: int) -> int:
    """Threads per trial: ``--threads`` when given; on Ray one (many trials run at once); else
    the run's."""
    if options.threads is not None:
        return options.threads
    return 1 if options.backend != "local" else threads


def cores_busy_elsewhere(window: float = WINDOW_SECONDS) -> float:
    """Cores' worth of work that other processes did during ``window`` seconds on the cores
    this process may use (0.0 where the kernel does not say: no /proc/stat)."""
    cpus = _allowed_cpus()
    before = _busy_seconds(cpus)
    if before is None:
        return 0.0
    own_before = _own_seconds()
    start = time.monotonic()
    time.sleep(window)
    after = _busy_seconds(cpus)
    if after is None:
        return 0.0
    elapsed = time.monotonic() - start
    others = (after - before) - (_own_seconds() - own_before)
    return max(0.0, others / elapsed)


def _allowed_cpus() -> set[str]:
    try:
        return {f"cpu{i}" for i in os.sched_getaffinity(0)}
    except AttributeError:
        return set()


def _busy_seconds(cpus: set[str]) -> float | None:
    """Seconds the given CPUs (all when empty) spent on anything but idle and I/O wait."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or (cpus and name not in cpus):
            continue
        values = [int(v) for v in fields[:8]]
        busy += sum(values) - values[3] - values[4]  # less idle and iowait
    return busy / ticks


def _own_seconds() -> float:
    import resource  # POSIX only; reached only where /proc/stat exists

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


__all__ = [
    "cores_busy_elsewhere",
    "fit_threads",
    "search_threads",
]
