"""The server's outermost ASGI layer: what a request must be before any route reads it.

- A POST with a body must say ``Content-Type: application/json`` (415 otherwise). A web page
  can send a cross-site ``text/plain`` or form POST without asking first (no CORS preflight);
  it cannot send ``application/json`` that way, so such a page cannot reach the routes. The
  paths given as ``csv_paths`` (a tabular server's ``/invocations``, as MLflow's) also read
  ``text/csv``, which is no more a "simple" cross-site type than JSON is.
- A body over the limit is refused with 413, whether its size is declared (Content-Length) or
  it arrives in chunks: the body is read here, up to the limit, before the app sees it.
"""

from __future__ import annotations

from typing import Any

import orjson

from mlwright.serve.asgi import Receive, Scope, Send
from mlwright.serve.schemas import error_body

JSON_MEDIA = "application/json"
CSV_MEDIA = "text/csv"


class Guard:
    """ASGI middleware: the content type of POST bodies and the size of every body."""

    def __init__(self, app: Any, limit: int, csv_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.limit = limit
        self.csv_paths = csv_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        refused = _media_problem(scope, headers, scope.get("path") in self.csv_paths)
        if refused is not None:
            await _answer(send, 415, *refused)
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        try:
            body = await self._read(receive)
        except _Disconnected:
            return
        if body is None:
            await self._too_large(send)
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (the rest is never read)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        await _answer(
            send,
            413,
            f"the request body is larger than {self.limit:,} bytes",
            "send fewer rows per request (or start the server with a larger limit)",
        )


class _Disconnected(Exception):
    pass


def _media_problem(
    scope: Scope, headers: dict[bytes, bytes], csv: bool = False
) -> tuple[str, str] | None:
    """(reason, fix) when a POST with a body is not JSON (nor CSV, with ``csv``), else None."""
    if scope.get("method") != "POST":
        return None
    declared = headers.get(b"content-length")
    if declared == b"0" or (declared is None and b"transfer-encoding" not in headers):
        return None  # no body: nothing to read, whatever its type
    given = headers.get(b"content-type", b"").decode("latin-1")
    media = given.split(";")[0].strip().lower()
    if media == JSON_MEDIA or (csv and media == CSV_MEDIA):
        return None
    named = f"content type {given[:100]!r}" if given else "no content type"
    if csv:
        return (
            f"the body has {named}; this route reads {JSON_MEDIA} or {CSV_MEDIA}",
            f"send the body as JSON with the header Content-Type: {JSON_MEDIA} (or CSV as "
            f"{CSV_MEDIA})",
        )
    return (
        f"the body has {named}; this server reads POST bodies as {JSON_MEDIA} only",
        f"send the body as JSON with the header Content-Type: {JSON_MEDIA}",
    )


async def _answer(send: Send, status: int, reason: str, fix: str) -> None:
    body = orjson.dumps(error_body(reason, fix))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["JSON_MEDIA", "Guard"]
