"""The ``call`` event listeners get when an agent's reply fails its parser: the call happened and is stored, so a
live view counts it and shows its reply and the error -- from ``RunContext.ask`` and from ``ask_samples`` (with the
sample that failed), served or made. Pinned so the event stays the same wherever the runtime sends it from."""

from __future__ import annotations

from typing import Any

import pytest

from agentmesh.models import ModelClient, ScriptedModel
from agentmesh.parsers import Parsed, register_parser
from agentmesh.runtime.budget import BudgetTracker
from agentmesh.runtime.context import RunContext, RunError
from agentmesh.spec import graph_from_data


@register_parser("test_parse_failure_events_raises_on_b")
def _raises_on_b(text: str) -> Parsed:
    if "b" in text:
        raise KeyError("no such field")
    return Parsed(value=text, normalized=text, ok=True)


def _context(events: list[tuple[str, dict[str, Any]]], *replies: str) -> RunContext:
    spec = graph_from_data(
        {
            "name": "g",
            "inputs": {"question": {"type": "string"}},
            "agents": {"a": {"prompt": "{{ question }}", "parser": "test_parse_failure_events_raises_on_b"}},
            "nodes": {"only": {"op": "call", "agent": "a"}},
        }
    )
    return RunContext(
        run_id="r",
        spec=spec,
        model=ModelClient(ScriptedModel([{"agent": "a", "responses": list(replies)}])),
        store=None,
        budget=BudgetTracker([]),
        inputs={"question": "q"},
        listeners=[lambda kind, data: events.append((kind, data))],
    )


_ERROR = (
    "node 'only': agent 'a': parser 'test_parse_failure_events_raises_on_b' failed on its reply: "
    "KeyError: 'no such field'"
)


async def test_ask_tells_listeners_of_a_call_whose_reply_failed_its_parser() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    ctx = _context(events, "b")
    with pytest.raises(RunError) as caught:
        await ctx.ask(node="only", agent="a", slot=2, round=1, variables={"question": "q"})
    assert str(caught.value) == _ERROR
    assert isinstance(caught.value.__cause__, KeyError)
    assert events == [
        (
            "call",
            {
                "node": "only",
                "round": 1,
                "served": False,
                "agent": "a",
                "slot": 2,
                "text": "b",
                "value": None,
                "key": None,
                "ok": False,
                "error": _ERROR,
            },
        )
    ]
    assert list(events[0][1]) == ["node", "round", "served", "agent", "slot", "text", "value", "key", "ok", "error"]


async def test_ask_samples_tells_listeners_of_the_sample_that_failed_and_of_no_other() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    ctx = _context(events, "a", "b", "c")
    with pytest.raises(RunError, match="failed on its reply"):
        await ctx.ask_samples(node="only", agent="a", slot=0, round=3, variables={"question": "q"}, n=3)
    assert events == [
        (
            "call",
            {
                "node": "only",
                "round": 3,
                "served": False,
                "sample": 1,
                "agent": "a",
                "slot": 0,
                "text": "b",
                "value": None,
                "key": None,
                "ok": False,
                "error": _ERROR,
            },
        )
    ]
    assert list(events[0][1])[:4] == ["node", "round", "served", "sample"]


async def test_a_parser_failure_sends_no_event_without_listeners_and_a_parsed_reply_its_usual_one() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    ctx = _context(events, "a", "b")
    ctx.listeners = []
    with pytest.raises(RunError, match="failed on its reply"):
        await ctx.ask_samples(node="only", agent="a", slot=0, round=0, variables={"question": "q"}, n=2)
    ctx = _context(events, "a")
    answer = await ctx.ask(node="only", agent="a", slot=0, round=0, variables={"question": "q"})
    assert answer.ok and events == [("call", {"node": "only", "round": 0, "served": False, **answer.model_dump()})]
