"""Names and values from the data never become code or markup in what mlwright generates.

One small model is trained on a CSV whose file name, column names, category values and class
labels are hostile (quotes, triple quotes, newlines, `<script>`, backticks, Markdown links,
Jinja braces, table pipes). Every generated artifact is then checked: the rebuild script parses,
holds the data location only as a string and runs no payload; the Markdown and HTML reports
carry no live markup; the Triton config parses as protobuf text with every name intact.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from tests.conftest import CliResult

FILE_NAME = (
    'inj"""; open("pwned-name", "w"); """\nopen("pwned-nl", "w") # `x` <script> {{ 7*7 }}.csv'
)
NUM = '<script>alert("num")</script>'
INT = 'x2"""; open("pwned-col", "w"); """'
CAT = "colour`\n# {{ 7*7 }} | [a](javascript:alert(1)) *b* _c_"
TARGET = "churned <b>"
LEVELS = [
    "<script>alert(1)</script>",
    'g"""; open("pwned-cat", "w"); """',
    "b\nnew line ```",
    "{{ 7*7 }}`|`",
]
CLASSES = ("<img src=x onerror=alert(1)>", 'no"""')
PAYLOADS = ("pwned", "<script", "onerror", "javascript:")


def hostile_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    x1 = r.normal(size=n)
    x2 = r.integers(0, 50, size=n)
    level = r.integers(0, len(LEVELS), size=n)
    logit = 1.2 * x1 - 0.02 * x2 + (level == 0) * 0.8
    y = np.where(r.random(n) < 1 / (1 + np.exp(-logit)), CLASSES[0], CLASSES[1])
    return pd.DataFrame({NUM: x1, INT: x2, CAT: [LEVELS[i] for i in level], TARGET: y})


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(package, training CSV) of a model trained on hostile names and values."""
    root = tmp_path_factory.mktemp("hostile")
    data = root / FILE_NAME
    hostile_frame().to_csv(data, index=False)
    package = root / "package"
    mw.train(
        str(data),
        target=TARGET,
        max_trials=1,
        families=("lightgbm",),
        seed=0,
        tracker="none",
        out=str(package),
    )
    return package, data


def test_the_rebuild_script_holds_names_only_as_string_literals(
    hostile: tuple[Path, Path], tmp_path: Path
) -> None:
    package, data = hostile
    script = package / "report" / "rebuild.py"
    tree = ast.parse(script.read_text(encoding="utf-8"))  # it compiles
    kinds = [type(node).__name__ for node in tree.body]
    assert kinds == [
        "Expr",  # the docstring
        "Import",
        "ImportFrom",
        "Import",
        "Import",
        "Import",
        "Assign",  # PACKAGE
        "Assign",  # DATA
        "FunctionDef",
        "If",
    ]
    docstring = ast.get_docstring(tree)
    assert docstring is not None and repr(str(data)) in docstring  # shown, inside the string
    (data_assign,) = [
        n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "DATA"
    ]
    assert isinstance(data_assign.value, ast.IfExp)
    assert ast.literal_eval(data_assign.value.orelse) == str(data)
    # the payload appears nowhere but in those two string constants
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            continue
        text = ast.unparse(node) if isinstance(node, ast.expr) else ""
        assert "pwned" not in text or isinstance(node, (ast.IfExp, ast.Expr)), text
    # running its module-level code (not main) creates no marker
    done = subprocess.run(
        [sys.executable, "-c", f"import runpy; runpy.run_path({str(script)!r}, run_name='x')"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.iterdir())


def _outside_code_blocks(markdown: str) -> list[str]:
    """The lines of ``markdown`` that are not inside a fenced code block (whose text is
    literal), checking that every fence is closed by one at least as long."""
    out, fence = [], ""
    for line in markdown.splitlines():
        run = re.match(r"`{3,}", line)
        if not fence and run:
            fence = run.group(0)
        elif fence and re.fullmatch(rf"{fence}`*\s*", line):
            fence = ""
        elif not fence:
            out.append(line)
    assert not fence, "a code block is never closed"
    return out


def _tables(markdown: str) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in markdown.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def test_the_markdown_report_carries_no_markup_from_the_data(hostile: tuple[Path, Path]) -> None:
    package, _ = hostile
    md = (package / "report" / "report.md").read_text(encoding="utf-8")
    lowered = md.lower()
    assert "<script" not in lowered and "<img" not in lowered and "<b>" not in lowered
    text = "\n".join(_outside_code_blocks(md))
    assert not re.search(r"(?<!\\)\]\(javascript:", text.lower())  # no link: [ ] escaped
    # every row of every table has as many cells as its header (pipes and newlines escaped)
    for table in _tables(text):
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table}
        assert len(widths) == 1, table
    # no line starts a heading, a fence or a list that the data put there
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"#{1,3} ", line) and "{{" not in line, line
        assert not re.match(r"\s*(>|[-+*] #|\d+\. #)", line), line
    # the names are still there, escaped, for a reader
    assert '&lt;script&gt;alert("num")&lt;/script&gt;' in md
    # rendered by a CommonMark parser that passes raw HTML through (as GitHub does), only the
    # report's own elements appear: anchors, plots, code, tables
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
    parser = _Tags()
    parser.feed(rendered)
    assert {tag for tag, _ in parser.tags} <= {
        "h1", "h2", "h3", "p", "em", "strong", "code", "pre", "ul", "ol", "li", "a", "img",
        "table", "thead", "tbody", "tr", "th", "td",
    }  # fmt: skip
    for tag, attrs in parser.tags:
        found = dict(attrs)
        if tag == "a":
            assert set(found) in ({"id"}, {"href"}), found
            assert (found.get("href") or "#").startswith("#")
        if tag == "img":
            assert (found.get("src") or "").startswith("plots/")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def test_the_html_report_carries_no_markup_from_the_data(hostile: tuple[Path, Path]) -> None:
    package, _ = hostile
    page = (package / "report" / "report.html").read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"script", "b", "iframe", "object", "embed"}
    for tag, attrs in parser.tags:
        if tag == "img":  # the plots, embedded by the report itself
            assert (dict(attrs).get("src") or "").startswith("data:image/png;base64,")
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, value)
    assert "{{ 7*7 }}" in page  # shown as text, never evaluated by the template
    assert "&lt;script&gt;alert(&quot;num&quot;)&lt;/script&gt;" in page


def _model_config() -> Any:
    """The part of Triton's ModelConfig (model_config.proto) that mlwright writes, built here
    so that config.pbtxt can be parsed as protobuf text without Triton."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FileDescriptorProto(name="mw_triton.proto", package="mwtriton")
    types = f.enum_type.add(name="DataType")
    for i, name in enumerate(
        ["TYPE_INVALID", "TYPE_BOOL", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64",
         "TYPE_INT8", "TYPE_INT16", "TYPE_INT32", "TYPE_INT64", "TYPE_FP16", "TYPE_FP32",
         "TYPE_FP64", "TYPE_STRING", "TYPE_BF16"]
    ):  # fmt: skip
        types.value.add(name=name, number=i)
    fd = descriptor_pb2.FieldDescriptorProto
    opt, rep = fd.LABEL_OPTIONAL, fd.LABEL_REPEATED

    def message(name: str, fields: list[tuple[str, int, int, int, str | None]]) -> None:
        m = f.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            spec = m.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                spec.type_name = type_name

    message("Reshape", [("shape", 1, fd.TYPE_INT64, rep, None)])
    tensor = [
        ("name", 1, fd.TYPE_STRING, opt, None),
        ("data_type", 2, fd.TYPE_ENUM, opt, ".mwtriton.DataType"),
        ("dims", 3, fd.TYPE_INT64, rep, None),
        ("reshape", 4, fd.TYPE_MESSAGE, opt, ".mwtriton.Reshape"),
        ("label_filename", 5, fd.TYPE_STRING, opt, None),
    ]
    message("Tensor", tensor)
    message("Batching", [])
    message("Specific", [("versions", 1, fd.TYPE_INT64, rep, None)])
    message("VersionPolicy", [("specific", 1, fd.TYPE_MESSAGE, opt, ".mwtriton.Specific")])
    message(
        "ModelConfig",
        [
            ("name", 1, fd.TYPE_STRING, opt, None),
            ("platform", 2, fd.TYPE_STRING, opt, None),
            ("max_batch_size", 3, fd.TYPE_INT32, opt, None),
            ("input", 4, fd.TYPE_MESSAGE, rep, ".mwtriton.Tensor"),
            ("output", 5, fd.TYPE_MESSAGE, rep, ".mwtriton.Tensor"),
            ("dynamic_batching", 6, fd.TYPE_MESSAGE, opt, ".mwtriton.Batching"),
            ("version_policy", 7, fd.TYPE_MESSAGE, opt, ".mwtriton.VersionPolicy"),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("mwtriton.ModelConfig"))


def test_the_triton_config_parses_with_every_name_intact(
    hostile: tuple[Path, Path], tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime", reason="pip install 'mlwright[onnx]'")
    from google.protobuf import text_format

    from mlwright.package.export import export

    model = mw.load(hostile[0])
    done = export(model, "triton", tmp_path / "triton")
    (config,) = done.output.glob("*/config.pbtxt")
    parsed = text_format.Parse(config.read_text(encoding="utf-8"), _model_config()())
    names = {t.name for t in parsed.input}
    assert {NUM, INT, CAT} <= names
    assert parsed.platform == "onnxruntime_onnx" and parsed.max_batch_size == 1024
    labels = (config.parent / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert labels == sorted(CLASSES) or set(labels) == set(CLASSES)


def test_a_class_label_with_a_line_break_is_refused_for_triton(
    hostile: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """labels.txt holds one label per line; a label with a line break would shift every label
    after it, so the export is refused by name rather than written wrong."""
    pytest.importorskip("onnxruntime", reason="pip install 'mlwright[onnx]'")
    from mlwright.errors import MlwrightError
    from mlwright.package import export as export_module

    model = mw.load(hostile[0])
    original = export_module._onnx

    def with_broken_label(m: Any) -> Any:
        data, meta = original(m)
        meta["classes"] = ["fine", "two\nlines"]
        return data, meta

    monkeypatch.setattr(export_module, "_onnx", with_broken_label)
    with pytest.raises(MlwrightError, match=r"'two\\nlines'.*labels.txt"):
        export_module.export(model, "triton", tmp_path / "triton")
    assert not (tmp_path / "triton").exists()


VALUES = [
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "![i](javascript:alert(1))",
    "[r]: javascript:alert(1)",
    "# heading",
    "> quote",
    "1. item",
    "- item",
    "a|b",
    "`tick` **bold** *em* _u_ ~~s~~",
    "line\nbreak\n# x\n```",
    "back\\slash \\` \\*",
    "{{ 7*7 }} {% if x %}",
    "&lt;already escaped&gt; &amp;",
    "    indented",
]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.parametrize("value", VALUES)
def test_any_value_renders_as_its_own_text(value: str) -> None:
    """Through plain() and code(), a value shows in the HTML page exactly as it is, and in the
    Markdown as text: no tag, link, heading, list, quote or extra table cell."""
    from mlwright.report.document import Document, Section, code, plain, to_html, to_markdown

    section = Section("S", "s")
    section.p(plain(value))
    section.p(code(value))
    section.bullets([plain(value)])
    section.table(["h", "i"], [[plain(value), code(value)]])
    doc = Document(plain(value), code(value), [section])
    page = to_html(doc)
    shown = _Text()
    shown.feed(page.split('<section id="s">', 1)[1].split("</p>", 1)[0])
    assert "".join(shown.text).strip().endswith(value.strip())
    parser = _Tags()
    parser.feed(page)
    assert {tag for tag, _ in parser.tags} <= {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "nav",
        "a", "main", "section", "code", "ul", "li", "div", "table", "thead", "tbody", "tr",
        "th", "td", "footer",
    }  # fmt: skip
    md = to_markdown(doc)
    body = md.split("## 1. S", 1)[1]
    assert "<script" not in body and "<" not in body.replace("<code>", "").replace("</code>", "")
    text = re.sub(r"`[^`]*`", "", body)  # code spans are literal
    assert not re.search(r"(?<!\\)\][(\[:]", text)
    for line in body.strip().splitlines():
        assert not re.match(r"\s*(#|>|\d+\.\s|[-+*]\s+[#>])|\s{4}", line), line
    rows = [line for line in body.splitlines() if line.startswith("|")]
    assert {len(re.findall(r"(?<!\\)\|", row)) for row in rows} == {3}
    # rendered by a CommonMark parser (raw HTML allowed, as GitHub does), the Markdown shows
    # the value as text in every place, and holds no element the report did not write
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(body)
    parser = _Tags()
    parser.feed(rendered)
    assert {tag for tag, _ in parser.tags} <= {
        "p", "code", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "pre",
    }  # fmt: skip
    expected = " ".join(value.splitlines()).strip()
    for element in ("p", "li", "td"):
        shown = _Text()
        shown.feed(rendered.split(f"<{element}>", 1)[1].split(f"</{element}>", 1)[0])
        assert " ".join("".join(shown.text).split()) == " ".join(expected.split()), element


def test_console_output_shows_markup_like_names_as_text(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    """Rich console markup in a column name ("[/]" closes a style) is printed as the name, in
    `profile`'s tables and in `train`'s plan and decisions, not parsed (it was an internal
    error)."""
    frame = hostile_frame(200)[[NUM, TARGET]]
    frame["[/]"] = 1.0  # constant: the plan drops it, and says so
    frame["[bold red]x[/]"] = np.arange(200) % 7
    data = tmp_path / "markup.csv"
    frame.to_csv(data, index=False)
    done = cli("profile", str(data), "--target", TARGET)
    assert done.code == 0, done.err
    assert "[/]" in done.out and "[bold red]x[/]" in done.out
    done = cli(
        "train", str(data), "--target", TARGET, "--max-trials", "1", "--family", "lightgbm",
        "--tracker", "none", "--out", str(tmp_path / "pkg"),
    )  # fmt: skip
    assert done.code == 0, done.err
    assert "internal error" not in done.err and "[/]" in done.out + done.err
