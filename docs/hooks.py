"""MkDocs hooks: README.md is the site's home page, and the benchmark results it cites are pages.

The Markdown files are written to read well on a repository's file view, where README.md links to
``docs/train.md`` and a page in docs/ links to ``../bench/results/serving.md``. On the site, the
README becomes ``index.md`` and ``bench/results/*.md`` become pages of their own, so those links are
rewritten to where the pages are; every other link is left for ``mkdocs build --strict`` to check.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "bench/results"
# the target of an inline Markdown link: ](target) or ](target#anchor)
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    files.append(
        File.generated(config, "index.md", content=(ROOT / "README.md").read_text("utf-8"))
    )
    for path in sorted((ROOT / RESULTS).glob("*.md")):
        # reached through the pages' links; a new result needs no entry in the nav
        files.append(
            File.generated(
                config,
                f"{RESULTS}/{path.name}",
                abs_src_path=str(path),
                inclusion=InclusionLevel.NOT_IN_NAV,
            )
        )
    return files


def on_page_markdown(markdown: str, page: Page, **_: Any) -> str:
    home = page.file.src_uri == "index.md"

    def moved(match: re.Match[str]) -> str:
        target = match["target"]
        if home and target.startswith("docs/"):
            target = target.removeprefix("docs/")
        elif not home and target.startswith(f"../{RESULTS}/"):
            target = target.removeprefix("../")
        return f"]({target}{match['anchor'] or ''})"

    return LINK.sub(moved, markdown)
