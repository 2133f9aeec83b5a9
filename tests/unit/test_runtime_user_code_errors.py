"""What a user's code raises while a node runs -- a user operator, or a function the graph names (``op: function``,
a score or ranking function) -- goes through one helper, ``reraise_named``: a bug is a :class:`RunError` naming the
node and what raised, agentmesh's own errors pass unchanged, and so do LangGraph's ``GraphBubbleUp`` exceptions
(``interrupt()``'s ``GraphInterrupt``, ``ParentCommand``), which LangGraph handles itself.

A registered function's ``GraphInterrupt`` was turned into ``RunError: node 'f': function 'x' raised
GraphInterrupt: ...`` -- a failed run instead of LangGraph's interrupt -- where a user operator's passed."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.errors import GraphBubbleUp, GraphInterrupt
from langgraph.types import Interrupt

from agentmesh.errors import ConfigError
from agentmesh.runtime.context import RunError
from agentmesh.runtime.operators.basic import called
from agentmesh.runtime.operators.registry import reraise_named


class _Bubble(GraphBubbleUp):
    """A GraphBubbleUp of the user's own (LangGraph lets every subclass through its tasks)."""


def _raiser(exc: BaseException, *, run_async: bool) -> Any:
    def sync(*args: Any) -> Any:
        raise exc

    async def asynchronous(*args: Any) -> Any:
        raise exc

    return asynchronous if run_async else sync


@pytest.mark.parametrize("run_async", [False, True])
@pytest.mark.parametrize(
    "exc", [GraphInterrupt([Interrupt(value="ask the user")]), _Bubble("up"), ConfigError("agentmesh's own")]
)
async def test_a_registered_function_lets_interrupts_and_agentmesh_errors_through(
    exc: Exception, run_async: bool
) -> None:
    with pytest.raises(type(exc)) as caught:
        await called("f", "function", "fn", _raiser(exc, run_async=run_async), {}, {})
    assert caught.value is exc


@pytest.mark.parametrize("run_async", [False, True])
async def test_a_registered_functions_bug_is_named(run_async: bool) -> None:
    bug = ValueError("boom")
    with pytest.raises(RunError) as caught:
        await called("f", "score function", "fn", _raiser(bug, run_async=run_async), {}, {})
    assert str(caught.value) == "node 'f': score function 'fn' raised ValueError: boom"
    assert caught.value.__cause__ is bug
    assert caught.value.context == {"node": "f", "function": "fn"}


def test_reraise_named_names_the_node_and_what_raised_and_passes_the_rest() -> None:
    try:
        raise KeyError("oops")
    except KeyError as exc:
        with pytest.raises(RunError) as caught:
            reraise_named(exc, node="a", what="operator 'mine'", operator="mine")
    assert str(caught.value) == "node 'a': operator 'mine' raised KeyError: 'oops'"
    assert caught.value.context == {"node": "a", "operator": "mine"}
    for passing in (GraphInterrupt(), _Bubble(), RunError("already named")):
        with pytest.raises(type(passing)) as through:
            reraise_named(passing, node="a", what="operator 'mine'", operator="mine")
        assert through.value is passing
