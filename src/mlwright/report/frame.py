"""A whole HTML page shown inside another one (a notebook's output) without touching it.

The report is a page with its own styles for ``body``, ``table`` and ``nav``; written into a
notebook's output as it is, they would restyle the whole notebook. :func:`framed` puts the page
in an ``<iframe srcdoc>``: a document of its own, whose styles stay inside it.
"""

from __future__ import annotations

import html
import re

# in a srcdoc frame, links resolve against the notebook's URL unless the page says otherwise:
# "#evaluation" would load the notebook into the frame instead of scrolling to the section
_BASE = '<base href="about:srcdoc">'
_HEAD = re.compile(r"<head[^>]*>", re.IGNORECASE)


def framed(page: str, *, title: str = "mlwright report", height: str = "80vh") -> str:
    """``page`` (a complete HTML document) as an ``<iframe>`` element whose ``srcdoc`` holds it,
    escaped. The frame is sandboxed: no scripts, no access to the notebook; links the page
    opens in a new window (``target="_blank"``) still open."""
    head = _HEAD.search(page)
    if head is not None:
        page = page[: head.end()] + _BASE + page[head.end() :]
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" title="{html.escape(title)}" '
        'sandbox="allow-popups allow-popups-to-escape-sandbox" '
        f'style="width: 100%; height: {html.escape(height)}; border: 1px solid #d8dee4">'
        "</iframe>"
    )
