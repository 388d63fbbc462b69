"""The HTML report in a real headless Chromium (Debian's chromium + chromium-driver)."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlwright.report import SECTIONS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("MLWRIGHT_TEST_ARTIFACTS", "test-artifacts"))

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
    reason="Debian's chromium and chromium-driver are not installed (`make browser`)",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1366,900",  # a laptop screen
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_the_page_opens_cleanly_with_every_section_and_image(
    packages: dict[str, tuple[Path, Path]], browser: Any, task: str
) -> None:
    page = packages[task][0] / "report" / "report.html"
    browser.get(page.resolve().as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    titles = browser.execute_script(
        "return Array.from(document.querySelectorAll('section h2')).map(h => h.textContent)"
    )
    assert titles == [f"{i}. {t}" for i, t in enumerate(SECTIONS, 1)]
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
    )
    assert len(images) >= 3  # trade-off, evaluation and importance at least
    assert all(complete and width > 100 for complete, width, _ in images), images
    # readable on a laptop: the content does not overflow the window sideways
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    # and on paper: the navigation is hidden and each section starts a page
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    nav = browser.execute_script("return getComputedStyle(document.querySelector('nav')).display")
    assert nav == "none"
    pdf = browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": False})
    assert base64.b64decode(pdf["data"]).startswith(b"%PDF")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"report-{task}.png").write_bytes(base64.b64decode(shot["data"]))
