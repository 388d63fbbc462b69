"""What a notebook shows of a model and of its report: a summary with every value escaped, and
the report in a frame of its own whose styles cannot reach the notebook."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from mlwright.package.model import Model
from tests.browser import chromium, needs_chromium
from tests.notebook.conftest import HOSTILE_TARGET


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser


def test_the_model_summary(hostile_model: Model) -> None:
    page = parse(hostile_model._repr_html_())
    text = " ".join(page.text)
    cv = hostile_model.recipe.cv
    assert f"binary, predicting {HOSTILE_TARGET!r}" in text  # the target, as text
    assert f"roc_auc {cv.mean:.4f} ± {cv.std:.4f} over 5 fold(s)" in text
    assert f"roc_auc {hostile_model.metrics['test']['roc_auc']:.4f} on 60 held-out rows" in text
    assert "linear (trial 0)" in text
    assert "3 of 4 columns" in text
    assert "not saved (model.save(path))" in text
    assert f"in {hostile_model.recipe.elapsed_s:.1f} s" in text


def test_names_from_the_data_cannot_inject_markup(hostile_model: Model) -> None:
    page = parse(hostile_model._repr_html_())
    assert {tag for tag, _ in page.tags} <= {"div", "b", "code", "table", "tr", "th", "td"}
    assert {name for _, attrs in page.tags for name in attrs} <= {"class", "style"}


def test_saved_registered_and_ensemble_models(hostile_model: Model) -> None:
    chosen = hostile_model.recipe.chosen.model_copy(
        update={"kind": "weighted", "family": "ensemble", "members": [0, 7]}
    )
    recipe = hostile_model.recipe.model_copy(update={"chosen": chosen})
    model = dataclasses.replace(
        hostile_model,
        recipe=recipe,
        path=Path("models/<churn>"),
        registry={"name": "churn", "version": "3", "alias": "champion"},
    )
    text = " ".join(parse(model._repr_html_()).text)
    assert "weighted ensemble of linear (trial 0), ? (trial 7)" in text
    assert "churn version 3 (champion)" in text
    assert "models/<churn>" in text


@pytest.fixture(scope="module")
def report(hostile_model: Model) -> Any:
    return hostile_model.report()


@pytest.fixture(scope="module")
def framed_report(report: Any) -> str:
    return str(report._repr_html_())


def test_the_report_is_one_sandboxed_frame(report: Any, framed_report: str) -> None:
    page = parse(framed_report)
    assert [tag for tag, _ in page.tags] == ["iframe"]  # the page's <style> is inside srcdoc
    frame = page.tags[0][1]
    assert frame["sandbox"] == "allow-popups allow-popups-to-escape-sandbox"
    expected = report.html().replace("<head>", '<head><base href="about:srcdoc">', 1)
    assert frame["srcdoc"] == expected
    assert "".join(page.text) == ""


NOTEBOOK = """<!DOCTYPE html><html><head><style>
body {{ margin: 8px; font: 13px serif; background: rgb(250, 240, 230); }}
table {{ border-collapse: separate; }} nav {{ display: block; }}
</style></head><body><table id="cell"><tr><td>a notebook's table</td></tr></table>
<nav id="menu">menu</nav>{output}</body></html>"""

LOOK = """return [getComputedStyle(document.body).cssText,
    getComputedStyle(document.getElementById('cell')).cssText,
    getComputedStyle(document.getElementById('menu')).cssText]"""


@needs_chromium
def test_in_a_browser_the_report_leaves_the_notebook_alone(
    framed_report: str, tmp_path: Path
) -> None:
    bare = tmp_path / "bare.html"
    bare.write_text(NOTEBOOK.format(output=""), encoding="utf-8")
    with_report = tmp_path / "notebook.html"
    with_report.write_text(NOTEBOOK.format(output=framed_report), encoding="utf-8")
    with chromium(tmp_path / "profile") as driver:
        driver.get(bare.as_uri())
        before = driver.execute_script(LOOK)
        driver.get(with_report.as_uri())
        assert driver.execute_script(LOOK) == before
        driver.switch_to.frame(driver.find_element("tag name", "iframe"))
        sections = driver.execute_script(
            "return Array.from(document.querySelectorAll('section h2')).length"
        )
        assert sections >= 5
        link = driver.find_element("css selector", "nav a[href^='#']")
        anchor = link.get_attribute("href").rsplit("#", 1)[1]
        link.click()  # an in-page link scrolls the frame: it does not load the notebook into it
        assert driver.execute_script("return location.href") == f"about:srcdoc#{anchor}"
        assert driver.execute_script("return document.querySelectorAll('nav').length") == 1


def test_frame_attributes_are_escaped() -> None:
    from mlwright.report.frame import framed

    page = parse(framed('<html><head></head><body>"&<"</body></html>', title='a"b'))
    attrs = page.tags[0][1]
    assert attrs["title"] == 'a"b'
    assert (
        attrs["srcdoc"] == '<html><head><base href="about:srcdoc"></head><body>"&<"</body></html>'
    )
