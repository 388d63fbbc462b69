"""The model server as the continuous-training loop drives it: its admin routes over HTTP.

The loop starts and stops experiments (``POST /v1/admin/experiments``, ``…/{id}/stop``) and
makes a promoted version serve (``POST /v1/admin/reload``), with the bearer token the server was
started with (``MLWRIGHT_ADMIN_TOKEN``). Every call is bounded in time; a server that cannot be
reached, or answers an error, raises :class:`ServerError` with what it said.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from mlwright.errors import MlwrightError

TIMEOUT = 120.0  # seconds: a start loads and gates the challenger before it answers


class ServerError(MlwrightError):
    """The server could not be reached, or refused a call."""

    def __init__(self, message: str, *, status: int | None = None, fix: str | None = None):
        super().__init__(message, fix=fix)
        self.status = status
        self.body: dict[str, Any] = {}


class Server:
    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def models(self) -> list[dict[str, Any]]:
        """What ``/v1/models`` lists (the served model and its variants)."""
        return list(self._call("GET", "/v1/models").get("models") or [])

    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start (or, the same id and config again, look up) an experiment."""
        return self._call("POST", "/v1/admin/experiments", body)

    def stop(self, experiment_id: str, reason: str) -> dict[str, Any]:
        try:
            return self._call(
                "POST", f"/v1/admin/experiments/{experiment_id}/stop", {"reason": reason}
            )
        except ServerError as exc:
            if exc.status == 404:  # nothing to stop: the server forgot it (a restart)
                return {"id": experiment_id, "status": "stopped"}
            raise

    def reload(self, ref: str) -> dict[str, Any]:
        """Make the server serve ``ref`` (gated; the previous version serves until then)."""
        return self._call("POST", "/v1/admin/reload", {"model": ref})

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                answer: Any = json.loads(response.read() or b"{}")
                return answer if isinstance(answer, dict) else {"answer": answer}
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = {"text": raw.decode("utf-8", "replace")[:300]}
            error = ServerError(
                f"{method} {path} answered {exc.code}: {_said(answer)}",
                status=exc.code,
                fix=_fix(exc.code),
            )
            error.body = answer if isinstance(answer, dict) else {}
            raise error from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerError(
                f"cannot reach the server at {self.url}: {reason}",
                fix="check --server, and that `mlwright serve` runs there",
            ) from None


def _said(answer: Any) -> str:
    if isinstance(answer, dict):
        errors = answer.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return "; ".join(str(first[k]) for k in ("field", "reason") if first.get(k))
        for key in ("reason", "detail", "text"):
            if answer.get(key):
                return str(answer[key])[:300]
    return str(answer)[:300]


def _fix(status: int) -> str:
    if status in (401, 404):
        return (
            "start the server with MLWRIGHT_ADMIN_TOKEN set and give the loop the same token "
            "(MLWRIGHT_ADMIN_TOKEN); admin routes are off without one"
        )
    return "see the server's log"
