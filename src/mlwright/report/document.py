r"""A report as a list of sections made of a few kinds of block, rendered two ways.

The same blocks become Markdown (figures referenced as PNG files beside it) and one
self-contained HTML page (figures embedded as data URIs; styles inline; prints well). Text in
blocks is plain with `backticks` for code and **double asterisks** for bold, so neither renderer
needs to parse Markdown; a backslash before `` ` ``, ``*`` or ``\`` makes it literal.

Names and values from the data (columns, categories, classes, file names) are untrusted: put them
into text with :func:`code` (a code span) or :func:`plain`, which escape the few characters the
text format gives meaning to. Both renderers escape everything else: the HTML page escapes every
character HTML gives meaning to, and the Markdown escapes HTML (``<`` becomes ``&lt;``) and
Markdown's own punctuation, so no value can become a tag, a link, a heading or a table cell.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SPANS = re.compile(r"`((?:[^`\\]|\\.)+)`|\*\*((?:[^*\\]|\\.)+)\*\*", re.S)
_ESCAPED = re.compile(r"\\([`*\\])")
_MD_PUNCT = re.compile(r"([\\`*~])")
# a "]" that would close a link, an image or a reference definition ("[a](…)", "[a]: …")
_MD_LINK_CLOSE = re.compile(r"\](?=[(\[:])")
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# what makes the start of a line a heading, a quote or a list item
_MD_BLOCK_START = re.compile(r"^(\d{1,9})?(#{1,6}(?=\s|$)|>|[+-](?=\s|$)|(?<=\d)[.)](?=\s|$))")
_CODE_SAFE = re.compile(r"[^`<>&\r\n]*")


def when(ts: Any, missing: str = "—") -> str:
    """An epoch time as the pages show it (``2026-12-05 14:03 UTC``); ``missing`` without one."""
    if not isinstance(ts, (int, float)):
        return missing
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def plain(value: Any) -> str:
    """``value`` as literal text inside block text (its backticks, asterisks and backslashes
    lose their meaning)."""
    return re.sub(r"([`*\\])", r"\\\1", str(value))


def code(value: Any) -> str:
    """``value`` as a code span inside block text, whatever characters it holds."""
    return "`" + (plain(value) or '""') + "`"


def spans(text: str) -> list[tuple[str, str]]:
    """Block text as (kind, literal text) pieces: kind is "text", "code" or "bold"."""
    out: list[tuple[str, str]] = []
    at = 0
    for match in _SPANS.finditer(text):
        if match.start() > at:
            out.append(("text", _ESCAPED.sub(r"\1", text[at : match.start()])))
        if match.group(1) is not None:
            out.append(("code", _ESCAPED.sub(r"\1", match.group(1))))
        else:
            out.append(("bold", _ESCAPED.sub(r"\1", match.group(2))))
        at = match.end()
    if at < len(text):
        out.append(("text", _ESCAPED.sub(r"\1", text[at:])))
    return out


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
    numbered: bool = True  # False: a section before the numbered ones (the summary)

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

    def headings(self) -> list[tuple[Section, str]]:
        """Each section with its heading: numbered sections count from 1, others keep their
        title alone."""
        out, number = [], 0
        for section in self.sections:
            if section.numbered:
                number += 1
                out.append((section, f"{number}. {section.title}"))
            else:
                out.append((section, section.title))
        return out


# --- Markdown -------------------------------------------------------------------------------------


def to_markdown(doc: Document, plots_dir: str = "plots") -> str:
    out = [f"# {md_inline(doc.title)}", "", f"_{md_inline(doc.subtitle)}_", ""]
    out += [f"- [{md_inline(title)}](#{s.anchor})" for s, title in doc.headings()]
    out.append("")
    for section, title in doc.headings():
        out += [f'<a id="{section.anchor}"></a>', "", f"## {md_inline(title)}", ""]
        for block in section.blocks:
            out += [*_md_block(block, plots_dir), ""]
    return "\n".join(out).rstrip() + "\n"


def _md_block(block: Any, plots_dir: str) -> list[str]:
    if isinstance(block, str):
        return [_md_line_start(md_inline(block))]
    if isinstance(block, Heading):
        return [f"### {md_inline(block.text)}"]
    if isinstance(block, list):
        return [f"- {_md_line_start(md_inline(item))}" for item in block]
    if isinstance(block, Table):
        lines = [] if block.caption is None else [f"**{md_inline(block.caption)}**", ""]
        lines.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
        lines.append("|" + "|".join("---" for _ in block.header) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return lines
    if isinstance(block, Code):
        return _md_code_block(block)
    if isinstance(block, Figure):
        caption = md_inline(block.caption)
        return [f"![{caption}]({plots_dir}/{block.name})", "", f"_{caption}_"]
    raise TypeError(f"unknown block {type(block).__name__}")


def md_inline(text: Any, *, cell: bool = False) -> str:
    """Block text as one line of Markdown in which only our own code spans and bold mean
    anything: HTML and Markdown punctuation from the text are escaped, line breaks are spaces.
    ``cell``: the line is a table cell, so pipes are escaped too."""
    out = []
    for kind, piece in spans(str(text)):
        if kind == "code":
            out.append(_md_code(piece, cell))
        elif kind == "bold":
            out.append(f"**{_md_text(piece, cell)}**")
        else:
            out.append(_md_text(piece, cell))
    return "".join(out)


def _md_text(text: str, cell: bool) -> str:
    text = html.escape(" ".join(text.splitlines()), quote=False)
    text = _MD_LINK_CLOSE.sub(r"\\]", _MD_PUNCT.sub(r"\\\1", text))
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    return text.replace("|", "\\|") if cell else text


def _md_code(text: str, cell: bool) -> str:
    if text and _CODE_SAFE.fullmatch(text) and text.strip() == text and not (cell and "|" in text):
        return f"`{text}`"
    # a backtick, markup or a line break inside: an HTML code element, whose text is escaped
    return f"<code>{_md_text(text, cell)}</code>"


def _md_line_start(line: str) -> str:
    """Escape what would make the start of a paragraph a heading, quote or list."""
    return _MD_BLOCK_START.sub(lambda m: f"{m.group(1) or ''}\\{m.group(2)}", line.lstrip(), 1)


def _md_cell(value: Any) -> str:
    return md_inline(value, cell=True)


def _md_code_block(block: Code) -> list[str]:
    """A fenced block, its text literal: the fence is longer than any run of backticks in the
    text, so no line of it can close the block early."""
    text = block.text.rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{block.lang}", text, fence]


# --- HTML -----------------------------------------------------------------------------------------


def to_html(doc: Document) -> str:
    from jinja2 import Environment, PackageLoader
    from markupsafe import Markup

    env = Environment(loader=PackageLoader("mlwright.report", "templates"), autoescape=True)
    sections = [
        {
            "title": title,
            "anchor": s.anchor,
            "numbered": s.numbered,
            "html": Markup("\n".join(_html_block(b) for b in s.blocks)),
        }
        for s, title in doc.headings()
    ]
    return env.get_template("page.html.j2").render(
        title=doc.title, subtitle=Markup(inline(doc.subtitle)), sections=sections
    )


def inline(text: Any) -> str:
    """Block text as HTML: every piece escaped, our code spans and bold as elements."""
    out = []
    for kind, piece in spans(str(text)):
        escaped = html.escape(piece)
        if kind == "code":
            out.append(f"<code>{escaped}</code>")
        elif kind == "bold":
            out.append(f"<strong>{escaped}</strong>")
        else:
            out.append(escaped)
    return "".join(out)


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
        alt = html.escape(plain_text(block.caption))
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{alt}" '
            f'data-name="{html.escape(block.name)}"><figcaption>{inline(block.caption)}'
            "</figcaption></figure>"
        )
    raise TypeError(f"unknown block {type(block).__name__}")


def plain_text(text: str) -> str:
    """Block text without its markers (for attributes such as alt text)."""
    return "".join(piece for _, piece in spans(text))


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
