"""What `mlwright train` prints: the plan before training, each trial as it ends, a summary.

During the search a terminal shows a live line under the trial lines (trials done, the best
score so far, time left of the budget, a bar of the budget or trial count); elsewhere (a log
file, CI) each trial line carries the same facts, so nothing depends on redrawing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mlwright.evaluate.metrics import signed

if TYPE_CHECKING:
    from rich.console import Console

    from mlwright.api import Model, SearchStarted, Trial


class SearchProgress:
    """Trials done and the best one so far, against the budget."""

    def __init__(self, start: SearchStarted, clock: Callable[[], float]) -> None:
        self.start = start
        self.clock = clock
        self.done = 0
        self.best: Trial | None = None
        # trial number → (trial, fold, epoch): several at once when trials run on Ray
        self.running: dict[int, tuple[Trial, int, int | None]] = {}

    def add(self, trial: Trial) -> None:
        self.done += 1
        self.running.pop(trial.number, None)
        if trial.status == "failed" or trial.mean is None:
            return
        metric = self.start.metric
        if self.best is None or signed(metric, trial.mean) > signed(metric, self.best.mean or 0.0):
            self.best = trial

    def seconds_left(self) -> float | None:
        if self.start.deadline is None:
            return None
        return max(0.0, self.start.deadline - self.clock())

    def facts(self) -> str:
        parts = [f"{self.done} trial{'s' if self.done != 1 else ''}"]
        if self.best is not None and self.best.mean is not None:
            parts.append(
                f"best {self.start.metric} {self.best.mean:.5f} "
                f"({self.best.family}, trial {self.best.number})"
            )
        left = self.seconds_left()
        if left is not None:
            parts.append(f"{left:.0f} s of {self.start.budget:g} s left")
        elif self.start.max_trials is not None:
            parts.append(f"{max(0, self.start.max_trials - self.done)} to go")
        return " · ".join(parts)

    def now(self) -> str:
        if not self.running:
            return ""
        return "now: " + "; ".join(self._where(*self.running[n]) for n in sorted(self.running))

    def _where(self, trial: Trial, fold: int, epoch: int | None) -> str:
        where = f"fold {fold + 1}/{self.start.folds}" if self.start.folds > 1 else ""
        if epoch is not None:
            where = f"{where}, epoch {epoch}" if where else f"epoch {epoch}"
        return f"trial {trial.number} {trial.family}" + (f" ({where})" if where else "")

    def render(self) -> Group:
        start = self.start
        if start.deadline is not None and start.budget:
            used = start.budget - (self.seconds_left() or 0.0)
            bar = ProgressBar(total=start.budget, completed=min(used, start.budget), width=30)
        else:
            bar = ProgressBar(total=float(start.max_trials or 1), completed=self.done, width=30)
        line = Table.grid(padding=(0, 1))
        line.add_row(Text("searching", style="bold"), bar, Text(self.facts()))
        now = self.now()
        return Group(line, Text(now, style="dim")) if now else Group(line)


class TrainPrinter:
    """Receives the runner's events (``on_event``) and prints them to a console."""

    def __init__(
        self,
        console: Console,
        *,
        quiet: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.quiet = quiet
        self.clock = clock
        self.progress: SearchProgress | None = None
        self._live: Live | None = None

    def __call__(self, kind: str, payload: Any) -> None:
        if self.quiet:
            return
        c = self.console
        if kind == "plan":
            table = Table(title="Solution plan", title_justify="left", show_header=False)
            table.add_column(style="bold")
            table.add_column(overflow="fold")
            for key, value in payload.lines():  # column names: text, not console markup
                table.add_row(Text(key), Text(value))
            c.print(table)
        elif kind == "search":
            self.progress = SearchProgress(payload, self.clock)
            if c.is_terminal:
                progress = self.progress
                self._live = Live(
                    console=c, transient=True, refresh_per_second=4, get_renderable=progress.render
                )
                self._live.start()
        elif kind == "running":
            if self.progress is not None:
                self.progress.running[payload[0].number] = payload
        elif kind == "trial":
            self._trial(payload)
        elif kind == "best":
            self.close()
        elif kind == "tracking":
            c.print(f"tracking: {payload}", highlight=False, markup=False, soft_wrap=True)
        elif kind == "decision":
            c.print(f"decision: {payload}", highlight=False, markup=False)
        elif kind == "step":
            c.print(Text(f"… {payload}", style="dim"))

    def _trial(self, t: Trial) -> None:
        if self.progress is not None:
            self.progress.add(t)
        # without a live line (not a terminal), each trial line says how the search stands
        tail = "" if self._live is not None or self.progress is None else self.progress.facts()
        if t.status == "failed":
            line = f"trial {t.number:>3} {t.family:<13} failed: {t.error}"
        else:
            note = {
                "cut": " (cut by the time budget)",
                "pruned": f" (pruned after {len(t.fold_scores)} fold(s): behind earlier trials)",
            }.get(t.status, "")
            spread = f" ± {t.std:.5f}" if t.std is not None else " " * 10  # one fold: none
            rung = f" (on {t.rows:,} rows of each fold)" if t.rows is not None else ""
            line = (
                f"trial {t.number:>3} {t.family:<13} {t.source:<9} "
                f"{t.mean:.5f}{spread}  {t.seconds:6.2f} s{note}{rung}"
            )
        self.console.print(
            line + (f"  [{tail}]" if tail else ""), highlight=False, markup=False, soft_wrap=True
        )

    @property
    def live(self) -> bool:
        """Whether the search is shown as a live line (a terminal), which also shows the epochs
        that families would otherwise draw bars for."""
        return not self.quiet and self.console.is_terminal

    def close(self) -> None:
        """Stop the live line (the search ended, or training failed)."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def summary(self, console: Console, model: Model) -> None:
        cv = model.metrics.get("cv", {})
        chosen = model.recipe.chosen
        spread = "" if cv.get("std") is None else f" ± {cv['std']:.5f}"
        planned = cv.get("folds_planned", cv["folds"])
        folds = (
            f"{cv['folds']} fold(s)"
            if cv["folds"] == planned
            else (f"{cv['folds']} of {planned} planned fold(s)")
        )
        console.print(
            f"best: trial {chosen.trial} ({chosen.family}), cross-validated "
            f"{cv['metric']} {cv['mean']:.5f}{spread} over {folds}",
            highlight=False,
        )
        if cv.get("note"):
            console.print(f"[yellow]warning:[/] {cv['note']}", highlight=False)
        test = model.metrics.get("test")
        if test:
            shown = ", ".join(f"{k} {v:.5f}" for k, v in test.items())
            refit = (
                "refit on all rows afterwards"
                if model.metrics.get("refit_on_test")
                else ("not refit on it")
            )
            when = (
                "kept out of every fit, scored on the final model"
                if model.recipe is not None and model.recipe.scale
                else f"scored before the final refit; {refit}"
            )
            console.print(
                f"test split ({model.metrics['test_rows']} rows, {when}): {shown}",
                highlight=False,
            )
        if model.threshold is not None:
            console.print(f"decision threshold: {model.threshold:g}", highlight=False)
        if model.path is not None:
            console.print(f"model package: {model.path}", highlight=False, soft_wrap=True)
        if model.registry:
            r = model.registry
            console.print(
                f"registered: {r['name']} version {r['version']} (alias {r['alias']}); "
                f"load it with {r['name']}@{r['alias']} or {r['name']}/{r['version']}",
                highlight=False,
                soft_wrap=True,
            )
        console.print(f"trained in {model.recipe.elapsed_s or 0:.1f} s", highlight=False)
