"""What a user's code raises while a node runs -- a user operator, or a function the graph names (``op: function``,
a score or ranking function) -- goes through one helper, ``reraise_named``: a bug is a :class:`RunError` naming the
node and what raised, agentmesh's own errors pass unchanged, and so do LangGraph's ``GraphBubbleUp`` exceptions
(``interrupt()``'s ``GraphInterrupt``, ``ParentCommand``), which LangGraph handles itself. A run that LangGraph then
ends on a pending interrupt fails, naming the node: agentmesh has no way to answer one.

A registered function's ``GraphInterrupt`` was turned into ``RunError: node 'f': function 'x' raised
GraphInterrupt: ...`` -- a failed run instead of LangGraph's interrupt -- where a user operator's passed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph.errors import GraphBubbleUp, GraphInterrupt
from langgraph.types import Interrupt, interrupt

from agentmesh.errors import ConfigError
from agentmesh.models import ScriptedModel
from agentmesh.runtime import register_function, run
from agentmesh.runtime.context import RunError
from agentmesh.runtime.operators import NodeOutput, NodeRun
from agentmesh.runtime.operators.basic import called
from agentmesh.runtime.operators.registry import operator, reraise_named
from agentmesh.spec import graph_from_data
from agentmesh.spec.operators import OperatorParams
from agentmesh.store import Store


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


def test_a_function_that_calls_interrupt_fails_the_run_naming_the_node(tmp_path: Path) -> None:
    """``interrupt()`` in a registered function ended LangGraph's ``ainvoke`` with the interrupt pending, and the
    run was stored as "succeeded", the node and those after it "not run (a branch took another route)". agentmesh
    cannot answer an interrupt, so the run fails, naming the node and what it asked; it is stored as failed."""

    @register_function("test_interrupting_function")
    def asks_a_human(outputs: Any, inputs: Any) -> dict[str, Any]:
        interrupt("approve the plan?")
        return {"answer": "approved"}

    spec = graph_from_data(
        {
            "name": "interrupting",
            "nodes": {
                "first": {"op": "function", "function": "test_interrupting_function"},
                "after": {"op": "function", "function": "test_interrupting_function"},
            },
            "edges": [["first", "after"]],
            "output": "after",
        }
    )
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with pytest.raises(
        RunError, match=r"node 'first' paused the run with LangGraph's interrupt\(\) \('approve the plan\?'\)"
    ) as e:
        run(spec, {}, model=ScriptedModel([]), store=db)
    assert e.value.context["node"] == "first"
    with Store(db) as store:
        (stored,) = store.list_runs()
        assert stored.status == "failed" and "interrupt()" in (stored.error or "")


def test_a_user_operator_that_calls_interrupt_fails_the_run(tmp_path: Path) -> None:
    class Params(OperatorParams):
        pass

    @operator("test_interrupting_operator", params=Params)
    async def pauses(run_: NodeRun) -> NodeOutput:
        interrupt({"need": "a reviewer"})
        return {"answer": "never"}

    spec = graph_from_data(
        {"name": "interrupting_op", "nodes": {"p": {"op": "test_interrupting_operator"}}, "output": "p"}
    )
    with pytest.raises(
        RunError, match=r"node 'p' paused the run with LangGraph's interrupt\(\) \(\{'need': 'a reviewer'\}\)"
    ):
        run(spec, {}, model=ScriptedModel([]), store=f"sqlite:///{tmp_path / 'runs.db'}")


@pytest.mark.parametrize(
    ("answers", "said"),
    [("abc", "'answers' that is str 'abc'"), ([{"key": "1"}, 7], "an item of 'answers' that is int 7")],
)
def test_a_function_returning_answers_that_are_not_a_list_of_answers_is_named(
    answers: Any, said: str, tmp_path: Path
) -> None:
    """``"answers": "abc"`` from a registered function failed the run as ``AttributeError: 'str' object has no
    attribute 'get'`` (the node's summary read each answer); the run fails naming the node, the function and what
    'answers' must be."""

    @register_function("test_bad_answers", replace=True)
    def bad(outputs: Any, inputs: Any) -> dict[str, Any]:
        return {"answers": answers}

    spec = graph_from_data({"name": "bad_answers", "nodes": {"f": {"op": "function", "function": "test_bad_answers"}}})
    with pytest.raises(RunError, match=rf"node 'f': function 'test_bad_answers' returned {said}; 'answers' is a list"):
        run(spec, {}, model=ScriptedModel([]), store=f"sqlite:///{tmp_path / 'runs.db'}")


def test_a_budget_that_cuts_a_node_short_says_in_which_node(tmp_path: Path) -> None:
    """A team cut part-way by the run's budget said "(after node 'sample')", as if the node had finished."""
    spec = graph_from_data(
        {
            "name": "cut_team",
            "agents": {"a": {"prompt": "x"}},
            "nodes": {"sample": {"op": "team", "agents": ["a", "a", "a"]}, "v": {"op": "vote", "from": "sample"}},
            "edges": [["sample", "v"]],
            "stop": {"budget": {"calls": 2}},
        }
    )
    result = run(spec, {}, model=ScriptedModel([], default="ok"), store=f"sqlite:///{tmp_path / 'runs.db'}")
    assert (result.calls, result.stop_reason) == (2, "budget: 2 model calls in node 'sample'")
