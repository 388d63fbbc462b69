"""Reading a request's JSON body: bounded nesting, and only text the serving store can keep.

orjson reads the common body. Bodies it refuses are read again by the standard library, which
also takes the ``NaN`` and ``Infinity`` literals (read as numbers) and escapes for lone UTF-16
surrogates; a string holding one cannot be written as UTF-8, so such a body is refused
(:class:`BodyError`, naming the record and field) before anything is scored or stored. No body
nested deeper than :data:`MAX_DEPTH` levels goes further than this module: deeper is refused, never
left to recursion in a parser, validator or error message.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

MAX_DEPTH = 64  # a body's objects and arrays; tensor inputs need their rank plus three
Path = tuple[str | int, ...]


class BodyError(ValueError):
    """A body that is refused, with where in it (``path``) and why."""

    def __init__(self, reason: str, fix: str, path: Path = (), value: Any = None) -> None:
        super().__init__(reason)
        self.reason, self.fix, self.path, self.value = reason, fix, path, value

    def item(self, batch_keys: tuple[str, ...] = ("records", "items")) -> dict[str, Any]:
        """The contract's error item: the record is the index under one of ``batch_keys``."""
        record, field = locate(self.path, batch_keys)
        return {
            "record": record,
            "field": field,
            "value": self.value,
            "reason": self.reason,
            "fix": self.fix,
        }


def locate(path: Path, batch_keys: tuple[str, ...] = ("records", "items")) -> tuple[Any, Any]:
    """(record, field) of a location in a body: the index under a batch key, then the first
    name after it (or the first name when the location is in no batch)."""
    record: int | None = None
    rest = path
    if len(path) >= 2 and path[0] in batch_keys and isinstance(path[1], int):
        record, rest = path[1], path[2:]
    field = next((p for p in rest if isinstance(p, str)), None)
    return record, field


def parse(raw: bytes, *, depth: bool = True) -> Any:
    """The parsed body; raises :class:`BodyError` when it is not JSON, is nested deeper than
    :data:`MAX_DEPTH`, or holds a lone surrogate. With ``depth=False`` the nesting of a body
    that orjson reads is left to the caller (:func:`check`, on the paths that go deep)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc) or "recursion" in str(exc).lower():
            raise _too_deep(()) from None
    else:
        if depth:
            check(value)
        return value
    try:
        value = json.loads(raw)  # NaN / Infinity literals, or escapes that make lone surrogates
    except RecursionError:
        raise _too_deep(()) from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise BodyError("the body is not valid JSON", "send a JSON object") from None
    check(value, text=True)
    return value


def check(value: Any, *, text: bool = False) -> None:
    """Raise :class:`BodyError` at the first place ``value`` is nested deeper than
    :data:`MAX_DEPTH` or (with ``text``) holds a string that is not valid Unicode text."""
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if type(node) is dict:
            if len(path) >= MAX_DEPTH:
                raise _too_deep(path)
            for key, item in node.items():
                if text and not _encodable(key):
                    raise _surrogate((*path, key), key)
                if type(item) in _CONTAINERS or (text and type(item) is str):
                    stack.append((item, (*path, key)))
        elif type(node) is list:
            if len(path) >= MAX_DEPTH:
                raise _too_deep(path)
            stack.extend(
                (item, (*path, i))
                for i, item in enumerate(node)
                if type(item) in _CONTAINERS or (text and type(item) is str)
            )
        elif type(node) is str and not _encodable(node):
            raise _surrogate(path, node)


_CONTAINERS = (dict, list)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep(path: Path) -> BodyError:
    return BodyError(
        f"the body is nested deeper than {MAX_DEPTH} levels",
        "send records of plain values (tensor inputs: one nested list per input)",
        path[:4],
    )


def _surrogate(path: Path, text: str) -> BodyError:
    # the surrogate may be in a key on the path (a field's name): the error names it escaped
    safe = tuple(_escaped(p) if isinstance(p, str) else p for p in path)
    return BodyError(
        "the text holds a lone UTF-16 surrogate (an escape like \\ud800 without its pair), "
        "which is not a character and cannot be stored",
        "send valid Unicode text: encode characters outside the BMP as a surrogate pair",
        safe,
        _escaped(text)[:80],
    )


def _escaped(text: str) -> str:
    """``text`` with lone surrogates written as escapes, so that it can be encoded."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


__all__ = ["MAX_DEPTH", "BodyError", "check", "locate", "parse"]
