"""A retrained model's report: a Lineage section after the summary (the parent version, how and
why it was retrained, each data source with its rows and digest, the parent's score on the new
rows against this model's), and one sentence of it in the summary; other models' reports are
unchanged."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest

import mlwright as mw
from mlwright.package.model import Model
from mlwright.package.recipe import LineageRecord
from tests.conftest import make_frame

DIGEST = "ab12cd34ef56" + "0" * 52
REASON = "metric_drop: accuracy 0.71 < 0.80 - 0.05 over 412 labels <b>"


def _lineage(mode: Literal["refit", "search"] = "refit") -> LineageRecord:
    return LineageRecord(
        parent={
            "name": "churn",
            "version": "3",
            "ref": "churn@champion",
            "cv": {"metric": "roc_auc", "mean": 0.84},
        },
        mode=mode,
        reason=REASON,
        trigger={"kind": "metric_drop", "metric": "accuracy", "live": {"value": 0.71, "n": 412}},
        rollout="churn-r2",
        sources=[
            {"kind": "csv", "location": "new.csv", "rows": 1200, "digest": DIGEST},
            {
                "kind": "store",
                "location": "mlwright-serve.db",
                "since": 1_700_000_000.0,
                "until": 1_700_086_400.0,
                "rows": 800,
                "predictions": 1000,
                "digest": "f" * 64,
            },
        ],
        parent_on_new_data={"metric": "roc_auc", "value": 0.7123, "rows": 2000},
    )


@pytest.fixture(scope="module")
def trained() -> mw.Model:
    return mw.train(
        make_frame(n=300, seed=2),
        target="churned",
        max_trials=1,
        families=("linear",),
        seed=0,
        tracker="none",
    )


def _section(markdown: str, title: str) -> str:
    start = markdown.index(f"## {title}")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end >= 0 else None]


def test_a_retrained_model_shows_its_lineage(trained: mw.Model, tmp_path: Path) -> None:
    trained.recipe.lineage = _lineage()
    try:
        folder = trained.save(tmp_path / "retrained")
    finally:
        trained.recipe.lineage = None
    loaded = mw.load(str(folder))
    assert isinstance(loaded, Model)
    assert loaded.recipe.lineage is not None and loaded.recipe.lineage.rollout == "churn-r2"
    md = loaded.report().markdown()
    headings = re.findall(r"^## (.+)$", md, re.M)
    assert headings[:3] == ["Summary", "Lineage", "1. Problem Definition"]
    lineage = _section(md, "Lineage")
    assert "This model retrains `churn/3` (loaded as `churn@champion`)" in lineage
    assert "**refit**" in lineage and "no search" in lineage
    assert "rollout `churn-r2`" in lineage
    assert "metric_drop: accuracy 0.71 &lt; 0.80 - 0.05 over 412 labels &lt;b&gt;" in lineage
    assert "| `live.value` | 0.71 |" in lineage and "| `live.n` | 412 |" in lineage
    assert "| csv | `new.csv` | 1,200 | `ab12cd34ef56`…" in lineage
    assert "| store | `mlwright-serve.db` | 800 | `ffffffffffff`…" in lineage
    assert "2023-11-14 22:13 UTC – 2023-11-15 22:13 UTC" in lineage
    assert "1,000 served" in lineage
    assert "| churn/3 | its own training data (cross-validated) | roc_auc | 0.8400 |" in lineage
    assert "| churn/3 | the 2,000 new rows (never trained on) | roc_auc | 0.7123 |" in lineage
    own = loaded.recipe.cv
    assert own.mean is not None and own.std is not None and loaded.recipe.test_rows == 60
    assert (
        "| this model | 240 of the 300 new rows (cross-validated; 60 held out) | "
        f"{own.metric} | {own.mean:.4f} ± {own.std:.4f} |"
    ) in lineage
    summary = _section(md, "Summary")
    assert (
        "This version retrains `churn/3` because metric_drop: accuracy 0.71 &lt; 0.80 - 0.05 "
        "over 412 labels &lt;b&gt;; it refits that version's configurations on 300 new rows, "
        "with no search." in summary
    )
    page = (folder / "report" / "report.html").read_text(encoding="utf-8")
    assert '<section id="lineage"' in page and "<b>" not in page
    assert "over 412 labels &lt;b&gt;" in page


def test_a_search_says_so(trained: mw.Model) -> None:
    trained.recipe.lineage = _lineage("search")
    try:
        md = trained.report().markdown()
    finally:
        trained.recipe.lineage = None
    assert "**search**: a new budgeted search" in _section(md, "Lineage")
    assert "it was found by a new search on 300 new rows." in _section(md, "Summary")


def test_a_model_without_lineage_has_no_such_section(trained: mw.Model) -> None:
    md = trained.report().markdown()
    assert "Lineage" not in md and "retrains" not in md
    assert re.findall(r"^## (.+)$", md, re.M)[:2] == ["Summary", "1. Problem Definition"]
    assert 'id="lineage"' not in trained.report().html()
