"""Opening an HTML page in a real headless Chromium (Debian's chromium + chromium-driver)."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("MLWRIGHT_TEST_ARTIFACTS", "test-artifacts"))

needs_chromium = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
    reason="Debian's chromium and chromium-driver are not installed (`make browser`)",
)


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A headless Chromium with a fresh profile and a laptop-sized window."""
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
        f"--user-data-dir={profile}",
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


def check_page(driver: Any, page: Path, screenshot: str) -> dict[str, Any]:
    """Open ``page`` and check what every report page must do: no console errors, every image
    loaded, no sideways overflow on a laptop, navigation hidden and a PDF when printed. Saves
    a full-page screenshot to the test artifacts; returns the section titles and images."""
    driver.get(page.resolve().as_uri())
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    titles = driver.execute_script(
        "return Array.from(document.querySelectorAll('section h2')).map(h => h.textContent)"
    )
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
    )
    assert all(complete and width > 100 for complete, width, _ in images), images
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    nav = driver.execute_script("return getComputedStyle(document.querySelector('nav')).display")
    assert nav == "none"
    pdf = driver.execute_cdp_cmd("Page.printToPDF", {"printBackground": False})
    assert base64.b64decode(pdf["data"]).startswith(b"%PDF")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / screenshot).write_bytes(base64.b64decode(shot["data"]))
    return {"titles": titles, "images": images}
