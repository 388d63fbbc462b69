"""The report's plain-language summary: first, against a naive baseline, with the main drivers,
the risks (a near-leak among them) and what to do next; no text about data the model lacks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.evaluate.diagnostics import baseline_metrics
from mlwright.report.summary import LEAK_RULE, naive_baseline, near_leak
from tests.conftest import make_frame

Packages = dict[str, tuple[Path, Path]]
PARTS = ("What it predicts", "How good it is", "What drives it", "Risks", "What to do next")


def _md(packages: Packages, task: str) -> str:
    return (packages[task][0] / "report" / "report.md").read_text(encoding="utf-8")


def _summary(md: str) -> str:
    return md[md.index("## Summary") : md.index("## 1. Problem Definition")]


@pytest.fixture(scope="module")
def leaky() -> tuple[mw.Model, str]:
    """A binary model on data with a planted near-leak (`refund_issued` agrees with the target
    on 90% of rows: below the profile's leak threshold, so it is kept), a date and free text."""
    frame = make_frame(n=400, seed=5)
    r = np.random.default_rng(7)
    hit = (frame.churned == "yes").to_numpy()
    agrees = np.where(r.random(len(frame)) < 0.9, hit, ~hit)
    frame["refund_issued"] = agrees.astype(int) * 10 + r.normal(size=len(frame))
    frame["signed_up"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        r.integers(0, 700, len(frame)), unit="D"
    )
    words = ["late", "delivery", "great", "service", "refund", "again", "price", "support"]
    frame["note"] = [" ".join(r.choice(words, size=6)) for _ in range(len(frame))]
    model = mw.train(
        frame, target="churned", max_trials=1, families=("linear",), seed=0, tracker="none"
    )
    return model, model.report().markdown()


def test_the_summary_comes_first_in_both_formats(packages: Packages) -> None:
    folder = packages["binary"][0] / "report"
    md = (folder / "report.md").read_text(encoding="utf-8")
    headings = re.findall(r"^##+ (.+)$", md, re.M)
    assert headings[: len(PARTS) + 2] == ["Summary", *PARTS, "1. Problem Definition"]
    page = (folder / "report.html").read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([a-z]+)"', page)
    assert sections == [
        "summary",
        "problem",
        "architecture",
        "pipeline",
        "evaluation",
        "deployment",
    ]
    summary = page[page.index('<section id="summary"') : page.index('<section id="problem"')]
    assert all(f"<h3>{part}</h3>" in summary for part in PARTS)
    assert "<h2>Summary</h2>" in summary and "<h2>1. Problem Definition</h2>" in page


def test_the_naive_baseline_is_the_best_constant_answer() -> None:
    binary = baseline_metrics("binary", np.array([0, 0, 0, 1]), 2)
    assert binary["roc_auc"] == 0.5 and binary["accuracy"] == 0.75
    assert binary["balanced_accuracy"] == 0.5 and binary["f1"] == 0.0
    assert binary["average_precision"] == pytest.approx(0.25)
    assert binary["log_loss"] == pytest.approx(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
    multi = baseline_metrics("multiclass", np.array([0, 0, 1, 2, 2, 2]), 3)
    assert multi["accuracy"] == 0.5 and multi["f1_macro"] == pytest.approx((2 * 3 / 9) / 3)
    regression = baseline_metrics("regression", np.array([1.0, 2.0, 3.0, 6.0]))
    assert regression["rmse"] == pytest.approx(np.sqrt(3.5)) and regression["r2"] == 0.0
    assert regression["mae"] == pytest.approx(1.5) and regression["mape"] == pytest.approx(0.75)


def test_the_summary_scores_the_model_against_the_baseline_in_words(packages: Packages) -> None:
    model = mw.load(packages["binary"][0])
    assert model.evidence is not None
    test = model.evidence["test"]
    counts = {c["class"]: c["support"] for c in test["per_class"]}
    majority = max(counts, key=lambda c: counts[c])
    share = counts[majority] / sum(counts.values())
    assert test["baseline"]["accuracy"] == pytest.approx(share)
    accuracy, auc = test["metrics"]["accuracy"]["value"], test["metrics"]["roc_auc"]["value"]
    summary = _summary(_md(packages, "binary"))
    assert f"On {test['rows']} rows held out from training" in summary
    assert (
        f"ranks a randomly chosen `yes` row above a randomly chosen `no` row {auc:.0%} of the "
        "time, against 50% for guessing" in summary
    )
    assert (
        f"gets the answer right for {accuracy:.0%} of the rows, against {share:.0%} for always "
        f"answering `{majority}`" in summary
    )
    # packages written before the baseline was recorded get it from the class counts
    old = {k: v for k, v in test.items() if k != "baseline"}
    assert naive_baseline("binary", old) == pytest.approx(test["baseline"])


def test_a_regression_summary_compares_errors_with_predicting_the_average(
    packages: Packages,
) -> None:
    model = mw.load(packages["regression"][0])
    assert model.evidence is not None
    test = model.evidence["test"]
    actual = np.asarray(test["residuals"]["actual"])
    assert len(actual) == test["rows"]  # every held-out row: the baseline can be checked
    assert test["baseline"]["rmse"] == pytest.approx(np.std(actual))
    rmse = test["metrics"]["rmse"]["value"]
    smaller = 1 - rmse / np.std(actual)
    summary = _summary(_md(packages, "regression"))
    assert f"makes errors {smaller:.0%} smaller than always predicting the average" in summary
    assert f"explains {test['metrics']['r2']['value']:.0%} of the variation in `y`" in summary


def test_data_without_dates_or_text_gets_no_text_about_them(
    packages: Packages, leaky: tuple[mw.Model, str]
) -> None:
    boilerplate = re.compile(r"TF-IDF|\bdates?\b|weekday|free text|\btext as\b", re.I)
    for task in ("binary", "regression"):
        kinds = {c.kind for c in mw.load(packages[task][0]).schema.features}
        assert not kinds & {"datetime", "text"}
        folder = packages[task][0] / "report"
        for name in ("report.md", "report.html"):
            text = (folder / name).read_text(encoding="utf-8")
            assert not boilerplate.search(text), boilerplate.search(text)
    _, md = leaky  # the same sentences do appear for data that has a date and text
    assert "dates as scaled parts and elapsed time, text as TF-IDF" in md
    assert "`signed_up`, a date (seen from 2024-01-" in md and "`note`, free text" in md


def test_a_planted_near_leak_is_flagged(leaky: tuple[mw.Model, str]) -> None:
    model, md = leaky
    assert "refund_issued" in [c.name for c in model.schema.features]  # the profile kept it
    summary = _summary(md)
    assert "**Possible near-leak:** `refund_issued`." in summary
    assert "retrain without it (`--drop-col refund_issued`)" in summary
    assert f"Near-leak check: {LEAK_RULE}; **flagged:** `refund_issued`" in md
    assert model.evidence is not None
    leak = near_leak("binary", model.evidence)
    assert leak is not None and leak.share > 0.75 and leak.of_lift > 0.5 and leak.skill >= 0.5


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_clean_data_has_no_near_leak_flag(packages: Packages, task: str) -> None:
    md = _md(packages, task)
    assert "near-leak:" not in md.lower() and "**flagged:**" not in md
    assert f"Near-leak check: {LEAK_RULE}; no column is flagged." in md


def _evidence(score: float, drops: list[float]) -> dict[str, object]:
    """Evidence of a binary model scored ``score`` (roc_auc) whose columns drop by ``drops``."""
    return {
        "test": {"rows": 100, "baseline": {"roc_auc": 0.5}},
        "importance": {
            "metric": "roc_auc",
            "baseline": score,
            "columns": [{"column": f"c{i}", "mean": d} for i, d in enumerate(drops)],
        },
    }


def test_the_near_leak_rule_needs_dominance_most_of_the_lift_and_a_strong_model() -> None:
    assert near_leak("binary", _evidence(0.95, [0.4, 0.05]))  # type: ignore[arg-type]
    # a dominant column in a weak model: a genuine driver, not suspicious
    assert near_leak("binary", _evidence(0.70, [0.18, 0.01])) is None  # type: ignore[arg-type]
    # strong model, but the skill is spread: two columns that define the target together
    assert near_leak("binary", _evidence(0.95, [0.45, 0.25])) is None  # type: ignore[arg-type]
    # dominant but shuffling it costs under half the lift (a correlated twin carries the rest)
    assert near_leak("binary", _evidence(0.95, [0.2, 0.01])) is None  # type: ignore[arg-type]


def test_risks_and_next_steps_follow_from_the_data(
    packages: Packages, leaky: tuple[mw.Model, str]
) -> None:
    summary = _summary(_md(packages, "binary"))
    assert "The search stopped at 3 trial(s), the limit set (`--max-trials 3`)" in summary
    model = mw.load(packages["binary"][0])
    assert model.evidence is not None
    auc = model.evidence["test"]["metrics"]["roc_auc"]
    assert (
        "The score rests on only 80 held-out rows. With 95% confidence its roc_auc lies between "
        f"{auc['low']:.0%} and {auc['high']:.0%}" in summary
    )
    assert "watch the drift" not in summary  # no date, text or many-valued category
    assert "A/B test" in summary
    assert "The data check found: 'signed_up' holds dates" in _summary(leaky[1])


def test_engineer_sections_fit_the_task(packages: Packages) -> None:
    regression, binary = _md(packages, "regression"), _md(packages, "binary")
    assert (
        "mlwright_prediction_value" in regression and "mlwright_predictions_total" not in regression
    )
    assert "mlwright_predictions_total" in binary and "mlwright_prediction_value" not in binary
    assert "| quantile | 0.01 | 0.05 | 0.25 | 0.5 | 0.75 | 0.95 | 0.99 |" in regression
    assert "| naive baseline (test) |" in binary


def test_without_held_out_rows_the_summary_says_where_its_numbers_come_from() -> None:
    model = mw.train(
        make_frame(n=80),
        target="churned",
        max_trials=1,
        families=("linear",),
        test_size=0.0,
        tracker="none",
    )
    assert model.evidence is not None and model.evidence["test"] is None
    validation = model.evidence["validation"]
    summary = _summary(model.report().markdown())
    assert "In cross-validation on its 80 training rows (none was held out)" in summary
    assert "No rows were held out: the score comes from cross-validation only." in summary
    shares = [c["support"] / 80 for c in validation["per_class"]]
    assert f"against {max(shares):.0%} for always answering" in summary
