"""What a server worker hands its writer process: answered requests and monitoring references.

A :class:`PredictionBatch` is one answered request as the bytes that crossed the wire; a
:class:`Watch` names the monitoring reference a variant's version is counted against. Both
travel to the writer process as length-prefixed frames on its standard input.
"""

from __future__ import annotations

import json
import operator
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson


@dataclass(frozen=True)
class PredictionBatch:
    """The predictions of one answered request, as the bytes that crossed the wire: the
    request body (records as sent) and the response (predictions as answered). Parsing and
    storing happen in the writer process, never on the request path."""

    request_id: str
    ts: float
    model: str
    version: str | None
    variant: str
    entity_key: str | None
    features: tuple[str, ...]
    n: int  # predictions in the answer
    body: bytes  # {"records": [...], ...}
    answer: bytes  # {"predictions": [...], ...}

    def __len__(self) -> int:
        return self.n

    @property
    def head(self) -> tuple[Any, ...]:
        """The request's own columns: id, time, model, version, variant, entity key."""
        return (self.request_id, self.ts, self.model, self.version, self.variant, self.entity_key)

    def frame(self) -> bytes:
        """The batch as one length-prefixed message for the writer process."""
        head = orjson.dumps([*self.head, self.features, self.n])
        sizes = _FRAME.pack(len(head), len(self.body), len(self.answer))
        return b"".join((sizes, head, self.body, self.answer))

    @classmethod
    def read(cls, stream: BinaryIO) -> PredictionBatch | Watch | None:
        """The next framed batch (or :class:`Watch`) from ``stream``; None at its end."""
        prefix = stream.read(_FRAME.size)
        if len(prefix) < _FRAME.size:
            return None
        sizes = _FRAME.unpack(prefix)
        head, body, answer = (stream.read(size) for size in sizes)
        if len(head) < sizes[0] or len(body) < sizes[1] or len(answer) < sizes[2]:
            return None  # cut off mid-message: the server died while sending it
        if not sizes[0]:
            return Watch(**orjson.loads(body))
        rid, ts, model, version, variant, key, features, n = orjson.loads(head)
        return cls(rid, ts, model, version, variant, key, tuple(features), n, body, answer)

    def parsed(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The records as sent and the predictions as answered."""
        return read_json(self.body)["records"], orjson.loads(self.answer)["predictions"]

    def inputs(self, records: list[dict[str, Any]]) -> list[Any]:
        """Each record's values of ``features``, in their order (None where one is absent)."""
        names = self.features
        if len(names) > 1:
            pick = operator.itemgetter(*names)
            try:
                return list(map(pick, records))  # served records carry every feature
            except (KeyError, TypeError):
                pass
        return [[record.get(name) for name in names] for record in records]

    def row(
        self,
        parsed: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None,
        inputs: list[Any] | None = None,
    ) -> tuple[Any, ...]:
        """The batch as one row of the requests table: inputs are arrays of the features'
        values (in the order of ``features``), outputs the answered predictions."""
        records, outputs = parsed or self.parsed()
        names = self.features
        if inputs is None:
            inputs = self.inputs(records)
        return (
            *self.head,
            len(outputs),
            _dumps(list(names)),
            _dumps(inputs),
            _dumps(outputs),
        )


_FRAME = struct.Struct("<III")  # sizes of a frame's head, request body and response


@dataclass(frozen=True)
class Watch:
    """Tells the writer process which monitoring reference a variant's version is counted
    against (sent when the server starts and before a swapped-in version takes traffic)."""

    variant: str
    version: str | None
    reference: str  # path of the package's reference.json

    def frame(self) -> bytes:
        """A frame with an empty head: the writer reads it as a Watch, not a batch."""
        body = orjson.dumps(self.__dict__)
        return _FRAME.pack(0, len(body), 0) + body


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # e.g. an integer beyond 64 bits
        return json.dumps(value, default=str)


def read_json(body: bytes) -> Any:
    """Parse JSON; NaN and Infinity literals are read as numbers (as json.loads reads them).
    Raises ValueError when ``body`` is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)
