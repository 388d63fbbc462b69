"""The ASGI callable's types, shared by the server's middleware and its bare routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]

__all__ = ["Receive", "Scope", "Send"]
