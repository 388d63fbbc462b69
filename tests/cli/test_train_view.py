"""The search's progress: a live line on a terminal, the same facts on each trial line elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from mlwright.cli.train_view import TrainPrinter
from mlwright.train.search import SearchStarted, Trial


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def trial(number: int, family: str, mean: float | None, status: str = "ok") -> Trial:
    t = Trial(number, family, {}, "default", status=status, mean=mean, std=0.01, seconds=1.5)
    if status == "failed":
        t.error = "ValueError: boom"
    return t


def start(clock: Clock, metric: str = "roc_auc", budget: float | None = 60.0) -> SearchStarted:
    return SearchStarted(
        metric=metric,
        families=["lightgbm", "mlp"],
        folds=5,
        max_trials=None if budget else 4,
        budget=budget,
        deadline=None if budget is None else clock.now + budget,
    )


def test_without_a_terminal_each_trial_line_says_how_the_search_stands() -> None:
    out, clock = io.StringIO(), Clock()
    printer = TrainPrinter(Console(file=out, force_terminal=False, width=200), clock=clock)
    assert not printer.live
    printer("search", start(clock))
    clock.now += 4
    printer("trial", trial(0, "lightgbm", 0.79))
    clock.now += 6
    printer("trial", trial(1, "mlp", 0.81))
    clock.now += 3
    printer("trial", trial(2, "linear", None, status="failed"))
    printer("best", trial(1, "mlp", 0.81))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(
        "[1 trial · best roc_auc 0.79000 (lightgbm, trial 0) · 56 s of 60 s left]"
    )
    assert lines[1].endswith("[2 trials · best roc_auc 0.81000 (mlp, trial 1) · 50 s of 60 s left]")
    assert "failed: ValueError: boom" in lines[2] and "3 trials" in lines[2]


def test_lower_is_better_metrics_keep_the_lowest_as_best() -> None:
    out, clock = io.StringIO(), Clock()
    printer = TrainPrinter(Console(file=out, force_terminal=False, width=200), clock=clock)
    printer("search", start(clock, metric="rmse", budget=None))
    printer("trial", trial(0, "lightgbm", 3.2))
    printer("trial", trial(1, "linear", 4.1))
    assert (
        out.getvalue()
        .splitlines()[-1]
        .endswith("[2 trials · best rmse 3.20000 (lightgbm, trial 0) · 2 to go]")
    )


def test_a_terminal_gets_a_live_line_with_the_running_trial() -> None:
    out, clock = io.StringIO(), Clock()
    console = Console(file=out, force_terminal=True, width=200)
    printer = TrainPrinter(console, clock=clock)
    assert printer.live
    printer("search", start(clock))
    try:
        printer("trial", trial(0, "lightgbm", 0.8))
        printer("running", (trial(1, "mlp", None), 1, 7))
        clock.now += 15
        shown = Console(file=io.StringIO(), width=200, record=True)
        assert printer.progress is not None
        shown.print(printer.progress.render())
        text = shown.export_text()
        assert "searching" in text
        assert "1 trial · best roc_auc 0.80000 (lightgbm, trial 0) · 45 s of 60 s left" in text
        assert "now: trial 1 mlp (fold 2/5, epoch 7)" in text
    finally:
        printer("best", trial(0, "lightgbm", 0.8))
    assert printer._live is None  # the search ended: the live line is gone
    assert "trial   0 lightgbm" in out.getvalue()  # trial lines print above the live line
    assert "45 s of 60 s left]" not in out.getvalue()  # no duplicate facts on the lines


def test_quiet_prints_nothing_and_starts_no_live_line() -> None:
    out, clock = io.StringIO(), Clock()
    printer = TrainPrinter(Console(file=out, force_terminal=True), quiet=True, clock=clock)
    printer("search", start(clock))
    printer("trial", trial(0, "lightgbm", 0.8))
    printer.close()
    assert out.getvalue() == "" and printer._live is None


def test_a_trial_on_one_fold_or_on_the_first_rung_prints_without_a_spread() -> None:
    out = io.StringIO()
    printer = TrainPrinter(Console(file=out, force_terminal=False, width=200), clock=Clock())
    one = Trial(0, "lightgbm", {}, "default", status="pruned", fold_scores=[0.8], mean=0.8)
    one.std, one.seconds = None, 0.4  # one fold: no spread (a holdout, or pruned after fold 0)
    printer("trial", one)
    rung = trial(1, "xgboost", 0.81)
    rung.rows = 6_400
    printer("trial", rung)
    lines = out.getvalue().splitlines()
    assert "0.80000 " in lines[0] and "±" not in lines[0]
    assert "(on 6,400 rows of each fold)" in lines[1]
