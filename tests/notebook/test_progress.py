"""Training progress: a display that updates in place under an IPython kernel, one redrawn line
on a terminal, and nothing when turned off or when nobody would see it."""

from __future__ import annotations

import io
import sys
import types
from typing import Any

import pytest

import mlwright as mw
import mlwright.api as api
from mlwright.notebook import (
    NotebookView,
    Status,
    TerminalView,
    TrainingProgress,
    in_kernel,
    training_progress,
)
from mlwright.package.model import Model
from mlwright.train.search import SearchStarted, Trial


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A view that keeps what it was asked to show."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str]] = []

    def show(self, status: Status, now: float) -> None:
        from mlwright.notebook import html_text, plain_text

        self.shown.append((plain_text(status, now), html_text(status, now)))


def trial(number: int, family: str, mean: float | None, status: str = "ok") -> Trial:
    return Trial(number, family, {}, "default", status=status, mean=mean)


def search(budget: float | None = 30.0, max_trials: int | None = None) -> SearchStarted:
    deadline = None if budget is None else 100.0 + budget
    return SearchStarted("roc_auc", ["linear", "lightgbm"], 5, max_trials, budget, deadline)


def test_the_status_follows_the_search() -> None:
    view, clock = Recorder(), Clock()
    progress = TrainingProgress(view, "churned", clock=clock)
    progress("step", "reading and profiling the data")
    progress("plan", object())  # not shown: the report holds the plan
    progress("search", search())
    clock.now += 1
    progress("trial", trial(0, "linear", 0.81))
    clock.now += 1
    progress("trial", trial(1, "lightgbm", 0.84))
    clock.now += 1
    progress("trial", trial(2, "linear", None, status="failed"))
    clock.now += 9
    progress("running", (trial(3, "lightgbm", None), 1, 12))
    text, page = view.shown[-1]
    assert text == (
        "mlwright: reading and profiling the data · 3 trials · best roc_auc 0.8400 (lightgbm, "
        "trial 1) · 18 s of 30 s left · now trial 3 lightgbm (fold 2/5, epoch 12)"
    )
    assert '<progress value="0.400" max="1"' in page
    assert "<style" not in page


def test_lower_is_better_metrics_and_a_trial_count() -> None:
    view = Recorder()
    progress = TrainingProgress(view, "y", clock=Clock())
    progress("search", SearchStarted("rmse", ["linear"], 1, 4, None, None))
    progress("trial", trial(0, "linear", 2.0))
    progress("trial", trial(1, "linear", 1.5))
    progress("best", trial(1, "linear", 1.5))
    assert "best rmse 1.5000 (linear, trial 1) · 2 to go" in view.shown[-1][0]
    assert '<progress value="0.500"' in view.shown[-1][1]


def test_redraws_are_limited_but_the_end_always_shows(hostile_model: Model) -> None:
    view, clock = Recorder(), Clock()
    progress = TrainingProgress(view, "y", clock=clock)
    progress("search", search())
    for n in range(20):  # twenty events within 0.1 s: one redraw
        clock.now += 0.005
        progress("running", (trial(0, "linear", None), 0, n))
    assert len(view.shown) == 1
    progress.finished(hostile_model)
    assert len(view.shown) == 2
    assert view.shown[-1][0].startswith("mlwright: trained 'b-churn-b' in ")
    assert "s: linear, cv roc_auc 0." in view.shown[-1][0]


def test_values_from_the_data_are_escaped() -> None:
    view = Recorder()
    progress = TrainingProgress(view, "<i>target</i>", clock=Clock())
    progress("step", "dropping column '<script>x</script>'")
    _, page = view.shown[-1]
    assert "<script>" not in page and "<i>" not in page
    assert "&lt;script&gt;" in page and "&lt;i&gt;target&lt;/i&gt;" in page


class FakeHandle:
    def __init__(self, log: list[tuple[str, dict[str, str]]]) -> None:
        self.log = log

    def update(self, bundle: dict[str, str], raw: bool = False) -> None:
        assert raw
        self.log.append(("update", bundle))


@pytest.fixture
def fake_kernel(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, str]]]:
    """An IPython "kernel" whose display calls are recorded."""
    log: list[tuple[str, dict[str, str]]] = []

    def display(bundle: dict[str, str], raw: bool = False, display_id: Any = None) -> FakeHandle:
        assert raw and display_id is True
        log.append(("display", bundle))
        return FakeHandle(log)

    shell = types.SimpleNamespace(kernel=object())
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    ipython_display = types.ModuleType("IPython.display")
    ipython_display.display = display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython_display)
    return log


def test_in_a_kernel_one_display_is_updated_in_place(
    fake_kernel: list[tuple[str, dict[str, str]]], hostile_model: Model
) -> None:
    assert in_kernel()
    progress = training_progress("y", enabled=True)
    assert progress is not None and isinstance(progress.view, NotebookView)
    progress("search", search())
    progress("trial", trial(0, "linear", 0.8))
    progress("best", trial(0, "linear", 0.8))
    progress.finished(hostile_model)
    assert [kind for kind, _ in fake_kernel] == ["display", "update", "update"]
    assert set(fake_kernel[0][1]) == {"text/plain", "text/html"}
    assert "trained" in fake_kernel[-1][1]["text/html"]


def test_train_in_a_kernel_shows_progress_and_the_result(
    fake_kernel: list[tuple[str, dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
    hostile_model: Model,
) -> None:
    def run(data: Any, options: Any, *, on_event: Any = None, **kwargs: Any) -> Model:
        on_event("step", "reading and profiling the data")
        on_event("search", search())
        on_event("trial", trial(0, "linear", 0.8))
        return hostile_model

    monkeypatch.setattr(api, "train_with_options", run)
    assert mw.train("rows.csv", target="y") is hostile_model
    assert fake_kernel[0][0] == "display"
    assert "trained" in fake_kernel[-1][1]["text/plain"]


def test_a_failed_run_says_so_in_the_display(
    fake_kernel: list[tuple[str, dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def run(data: Any, options: Any, *, on_event: Any = None, **kwargs: Any) -> Model:
        on_event("step", "reading and profiling the data")
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "train_with_options", run)
    with pytest.raises(KeyboardInterrupt):
        mw.train("rows.csv", target="y")
    assert fake_kernel[-1][1]["text/plain"] == "mlwright: training interrupted"


def test_progress_false_is_silent_even_in_a_kernel(
    fake_kernel: list[tuple[str, dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []

    def run(data: Any, options: Any, **kwargs: Any) -> str:
        calls.append(kwargs.get("on_event"))
        return "model"

    monkeypatch.setattr(api, "train_with_options", run)
    assert mw.train("rows.csv", target="y", progress=False) == "model"
    assert calls == [None]
    assert fake_kernel == []


def test_outside_a_kernel_and_a_terminal_nothing_is_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not in_kernel()  # pytest: IPython not running, or not a kernel
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file, CI
    assert training_progress("y", enabled=True) is None


def test_a_terminal_gets_one_redrawn_line(
    monkeypatch: pytest.MonkeyPatch, hostile_model: Model
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    monkeypatch.setenv("COLUMNS", "80")
    progress = training_progress("y", enabled=True)
    assert progress is not None and isinstance(progress.view, TerminalView)
    progress("search", search())
    progress("trial", trial(0, "linear", 0.8))
    progress.clock = lambda: 1e9  # the next redraw is due
    progress("trial", trial(1, "linear", 0.9))
    progress.finished(hostile_model)
    written = sys.stderr.getvalue()
    assert written.count("\r") == 3 and written.endswith("\n") and written.count("\n") == 1
    assert all(len(line) == 79 for line in written[1:-1].split("\r"))
