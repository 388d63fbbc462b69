"""What `mlwright train` prints: the plan before training, each trial as it ends, a summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

    from mlwright.package.model import Model


class TrainPrinter:
    """Receives the runner's events (``on_event``) and prints them to a console."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet

    def __call__(self, kind: str, payload: Any) -> None:
        if self.quiet:
            return
        c = self.console
        if kind == "plan":
            table = Table(title="Solution plan", title_justify="left", show_header=False)
            table.add_column(style="bold")
            table.add_column(overflow="fold")
            for key, value in payload.lines():
                table.add_row(key, value)
            c.print(table)
        elif kind == "trial":
            t = payload
            if t.status == "failed":
                c.print(f"trial {t.number:>3} {t.family:<13} failed: {t.error}", highlight=False)
                return
            note = " (cut by the time budget)" if t.status == "cut" else ""
            c.print(
                f"trial {t.number:>3} {t.family:<13} {t.source:<9} "
                f"{t.mean:.5f} ± {t.std:.5f}  {t.seconds:6.2f} s{note}",
                highlight=False,
            )
        elif kind == "tracking":
            c.print(f"tracking: {payload}", highlight=False, markup=False, soft_wrap=True)
        elif kind == "decision":
            c.print(f"decision: {payload}", highlight=False)
        elif kind == "step":
            c.print(f"[dim]… {payload}[/]")

    def summary(self, console: Console, model: Model) -> None:
        cv = model.metrics.get("cv", {})
        chosen = model.recipe["chosen"]
        console.print(
            f"best: trial {chosen['trial']} ({chosen['family']}), cross-validated "
            f"{cv['metric']} {cv['mean']:.5f} ± {cv['std']:.5f} over {cv['folds']} fold(s)",
            highlight=False,
        )
        test = model.metrics.get("test")
        if test:
            shown = ", ".join(f"{k} {v:.5f}" for k, v in test.items())
            refit = (
                "refit on all rows afterwards"
                if model.metrics.get("refit_on_test")
                else ("not refit on it")
            )
            console.print(
                f"test split ({model.metrics['test_rows']} rows, scored before the final refit; "
                f"{refit}): {shown}",
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
        console.print(f"trained in {model.recipe['elapsed_s']:.1f} s", highlight=False)
