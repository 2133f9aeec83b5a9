"""Agents that answer from a fixed table of replies per role (tests, demos, the worked examples' ``replies``).

Each role's replies are served in order; asking a role for more replies than it has is an error, so a test
catches a pipeline that calls an agent it should have skipped. :attr:`ScriptedAgents.requests` keeps every
request for assertions on what the agents were shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentmesh.systems.alu.pipeline import (
    AluAgents,
    AuditRequest,
    ComposeRequest,
    CriticRequest,
    EraseRequest,
    ExtractRequest,
)

__all__ = ["ScriptExhausted", "ScriptedAgents"]


class ScriptExhausted(AssertionError):
    """A role was called more often than the script has replies for it."""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value]
    return list(value)


class ScriptedAgents:
    """All five roles (and the reference extractor) from ``{"vanilla": str, "audit": str, "erase": str | [..],
    "critic": [sample, ...], "composer": str, "critic_extract": [[int, ...], ...] | [int, ...]}``.

    A role given one string answers it once; a list answers its items in order. ``critic_extract`` given a flat
    list of numbers is one extraction.
    """

    def __init__(self, replies: Mapping[str, Any]) -> None:
        self._left: dict[str, list[Any]] = {}
        for role in ("vanilla", "audit", "erase", "critic", "composer"):
            self._left[role] = _as_list(replies.get(role))
        extract = replies.get("critic_extract")
        if isinstance(extract, Sequence) and extract and not isinstance(extract[0], Sequence):
            extract = [extract]
        self._left["critic_extract"] = _as_list(extract)
        self.requests: dict[str, list[Any]] = {role: [] for role in self._left}

    def _next(self, role: str, request: Any) -> Any:
        self.requests[role].append(request)
        if not self._left[role]:
            raise ScriptExhausted(f"the script has no (more) replies for role {role!r}")
        return self._left[role].pop(0)

    def calls(self, role: str) -> int:
        return len(self.requests[role])

    def unused(self, role: str) -> int:
        return len(self._left[role])

    async def answer(self, query: str) -> str:
        return str(self._next("vanilla", query))

    async def audit(self, request: AuditRequest) -> str:
        return str(self._next("audit", request))

    async def erase(self, request: EraseRequest) -> str:
        return str(self._next("erase", request))

    async def rate(self, request: CriticRequest) -> str:
        return str(self._next("critic", request))

    async def compose(self, request: ComposeRequest) -> str:
        return str(self._next("composer", request))

    async def extract(self, request: ExtractRequest) -> list[int | float]:
        return [x if isinstance(x, int | float) else float(x) for x in self._next("critic_extract", request)]

    def agents(self) -> AluAgents:
        return AluAgents(self, self, self, self, self, extractor=self)
