"""Promotion's reload: a swap the server is already running (it follows the alias) is waited
for; any other refusal is one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlwright.autopilot import loop
from mlwright.autopilot.client import Server, ServerError
from mlwright.autopilot.policy import Policy

POLICY = {"model": "churn", "triggers": {"schedule": {"every": "1d"}}, "retrain": {"data": ["a"]}}


class Answers(Server):
    """A server whose reloads answer ``answers`` in turn."""

    def __init__(self, answers: list[Any]) -> None:
        super().__init__("http://127.0.0.1:9", None)
        self.answers, self.calls = answers, 0

    def reload(self, ref: str) -> dict[str, Any]:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, ServerError):
            raise answer
        return dict(answer)


def refused(status: str) -> ServerError:
    error = ServerError(f"POST /v1/admin/reload answered 409: {status}", status=409)
    error.body = {"status": status}
    return error


def test_a_busy_swap_is_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "RELOAD_WAIT", 0.0)
    server = Answers([refused("busy"), refused("busy"), {"status": "swapped", "version": "2"}])
    pilot = loop.Autopilot(Policy.parse(POLICY), server=server, store=tmp_path / "s.db")
    assert pilot._reload() == {"status": "swapped", "version": "2"}
    assert server.calls == 3
    gated = Answers([refused("refused")])
    pilot = loop.Autopilot(Policy.parse(POLICY), server=gated, store=tmp_path / "s.db")
    with pytest.raises(ServerError, match="refused"):
        pilot._reload()
    assert gated.calls == 1
    always = Answers([refused("busy")] * loop.RELOAD_TRIES)
    pilot = loop.Autopilot(Policy.parse(POLICY), server=always, store=tmp_path / "s.db")
    with pytest.raises(ServerError, match="busy"):
        pilot._reload()
    assert always.calls == loop.RELOAD_TRIES
