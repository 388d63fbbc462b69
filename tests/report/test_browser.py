"""The HTML report in a real headless Chromium (Debian's chromium + chromium-driver)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlwright.report import SECTIONS, SUMMARY
from tests.browser import check_page, chromium, needs_chromium

pytestmark = needs_chromium


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_the_page_opens_cleanly_with_every_section_and_image(
    packages: dict[str, tuple[Path, Path]], tmp_path: Path, task: str
) -> None:
    page = packages[task][0] / "report" / "report.html"
    with chromium(tmp_path / "profile") as driver:
        seen = check_page(driver, page, f"report-{task}.png")
    assert seen["titles"] == [SUMMARY, *(f"{i}. {t}" for i, t in enumerate(SECTIONS, 1))]
    assert len(seen["images"]) >= 3  # trade-off, evaluation and importance at least
