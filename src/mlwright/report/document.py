"""A report as a list of sections made of a few kinds of block, rendered two ways.

The same blocks become Markdown (figures referenced as PNG files beside it) and one
self-contained HTML page (figures embedded as data URIs; styles inline; prints well). Text in
blocks is plain with `backticks` for code, so neither renderer needs to parse Markdown.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


@dataclass
class Figure:
    name: str  # file name, e.g. "roc_test.png"
    caption: str
    png: bytes


@dataclass
class Table:
    header: list[str]
    rows: list[list[Any]]
    caption: str | None = None


@dataclass
class Code:
    text: str
    lang: str = ""


@dataclass
class Section:
    title: str
    anchor: str
    blocks: list[Any] = field(default_factory=list)  # str (paragraph), list[str], Table, ...

    def p(self, text: str) -> None:
        self.blocks.append(text)

    def h(self, text: str) -> None:
        self.blocks.append(Heading(text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(list(items))

    def table(self, header: list[str], rows: list[list[Any]], caption: str | None = None) -> None:
        if rows:
            self.blocks.append(Table(header, rows, caption))

    def code(self, text: str, lang: str = "") -> None:
        self.blocks.append(Code(text, lang))

    def figure(self, figure: Figure | None) -> None:
        if figure is not None:
            self.blocks.append(figure)


@dataclass
class Heading:
    text: str


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section]

    @property
    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


# --- Markdown -------------------------------------------------------------------------------------


def to_markdown(doc: Document, plots_dir: str = "plots") -> str:
    out = [f"# {doc.title}", "", f"_{doc.subtitle}_", ""]
    out += [f"{i}. [{s.title}](#{s.anchor})" for i, s in enumerate(doc.sections, 1)] + [""]
    for i, section in enumerate(doc.sections, 1):
        out += [f'<a id="{section.anchor}"></a>', "", f"## {i}. {section.title}", ""]
        for block in section.blocks:
            out += [*_md_block(block, plots_dir), ""]
    return "\n".join(out).rstrip() + "\n"


def _md_block(block: Any, plots_dir: str) -> list[str]:
    if isinstance(block, str):
        return [block]
    if isinstance(block, Heading):
        return [f"### {block.text}"]
    if isinstance(block, list):
        return [f"- {item}" for item in block]
    if isinstance(block, Table):
        lines = [] if block.caption is None else [f"**{block.caption}**", ""]
        lines.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
        lines.append("|" + "|".join("---" for _ in block.header) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return lines
    if isinstance(block, Code):
        return [f"```{block.lang}", block.text.rstrip("\n"), "```"]
    if isinstance(block, Figure):
        return [f"![{block.caption}]({plots_dir}/{block.name})", "", f"_{block.caption}_"]
    raise TypeError(f"unknown block {type(block).__name__}")


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


# --- HTML -----------------------------------------------------------------------------------------


def to_html(doc: Document) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(
        loader=PackageLoader("mlwright.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    sections = [
        {"title": s.title, "anchor": s.anchor, "html": "\n".join(_html_block(b) for b in s.blocks)}
        for s in doc.sections
    ]
    return env.get_template("page.html.j2").render(
        title=doc.title, subtitle=Markup(inline(doc.subtitle)), sections=sections
    )


def inline(text: str) -> str:
    """Escaped text with `code` spans and **bold**."""
    escaped = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(str(text)))
    return _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", escaped)


def _html_block(block: Any) -> str:
    if isinstance(block, str):
        return f"<p>{inline(block)}</p>"
    if isinstance(block, Heading):
        return f"<h3>{inline(block.text)}</h3>"
    if isinstance(block, list):
        return "<ul>" + "".join(f"<li>{inline(i)}</li>" for i in block) + "</ul>"
    if isinstance(block, Table):
        caption = "" if block.caption is None else f"<caption>{inline(block.caption)}</caption>"
        head = "".join(f"<th>{inline(h)}</th>" for h in block.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in block.rows
        )
        return (
            f'<div class="table"><table>{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>"
        )
    if isinstance(block, Code):
        return f"<pre><code>{html.escape(block.text.rstrip())}</code></pre>"
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        alt = html.escape(block.caption)
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{alt}" '
            f'data-name="{html.escape(block.name)}"><figcaption>{alt}</figcaption></figure>'
        )
    raise TypeError(f"unknown block {type(block).__name__}")


def write(doc: Document, path: Path) -> list[Path]:
    """Write ``doc`` to ``path`` (.html: one file; .md: the file and its ``plots/``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".html", ".htm"):
        path.write_text(to_html(doc), encoding="utf-8")
        return [path]
    plots = path.parent / "plots"
    written = [path]
    if doc.figures:
        plots.mkdir(exist_ok=True)
    for fig in doc.figures:
        (plots / fig.name).write_bytes(fig.png)
        written.append(plots / fig.name)
    path.write_text(to_markdown(doc), encoding="utf-8")
    return written
