"""The ASGI callable's types, shared by the server's middleware and its bare routes, and
reading a request's body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


async def read_body(receive: Receive) -> bytes | None:
    """The request's whole body; None when the client went away before sending it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


__all__ = ["Receive", "Scope", "Send", "read_body"]
