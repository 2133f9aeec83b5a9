"""``op: function`` and the run context: a registered function that declares a keyword-only ``ctx`` gets a
:class:`FunctionContext` (the run's store and id, the node it runs as, under a loop the iteration's record name);
one that does not is called with ``(outputs, inputs, **args)`` as before; a graph cannot pass ``ctx`` itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import ConfigError
from agentmesh.models import ScriptedModel
from agentmesh.runtime import register_function, run
from agentmesh.runtime.operators import FunctionContext
from agentmesh.runtime.operators.registry import function_problems, takes_context
from agentmesh.spec import graph_from_data
from agentmesh.store import Store


def test_a_function_gets_the_context_only_when_it_declares_a_keyword_only_ctx() -> None:
    def plain(outputs: Any, inputs: Any) -> dict[str, Any]:
        return {}

    def forwards(outputs: Any, inputs: Any, **kwargs: Any) -> dict[str, Any]:
        return {}

    def positional(outputs: Any, inputs: Any, ctx: Any = None) -> dict[str, Any]:
        return {}

    def asks(outputs: Any, inputs: Any, *, ctx: FunctionContext | None = None) -> dict[str, Any]:
        return {}

    assert [takes_context(f) for f in (plain, forwards, positional, asks, len)] == [False, False, False, True, False]


def test_the_context_carries_the_runs_store_id_and_node(tmp_path: Path) -> None:
    seen: list[tuple[str, str, str, bool, list[str]]] = []

    @register_function("test_ctx_sees_run")
    def sees_run(outputs: Any, inputs: Any, *, ctx: FunctionContext, tag: str) -> dict[str, Any]:
        assert ctx.store is not None
        runs = [r.id for r in ctx.store.list_runs()]
        seen.append((ctx.run_id, ctx.node, ctx.call_node, ctx.run.inputs == {"x": 1}, runs))
        return {"tag": tag, "n": len(seen)}

    @register_function("test_ctx_not_asked")
    def not_asked(outputs: Any, inputs: Any, **args: Any) -> dict[str, Any]:
        return {"args": sorted(args)}  # no ctx slipped in through **args

    spec = graph_from_data(
        {
            "name": "ctx_functions",
            "inputs": {"x": {"type": "integer"}},
            "nodes": {
                "first": {"op": "function", "function": "test_ctx_sees_run", "args": {"tag": "a"}},
                "again": {"op": "loop", "body": ["inner"], "until": {"max_rounds": 2}, "max_iterations": 2},
                "inner": {"op": "function", "function": "test_ctx_sees_run", "args": {"tag": "b"}},
                "other": {"op": "function", "function": "test_ctx_not_asked", "args": {"k": 1}},
            },
            "edges": [["first", "again"], ["again", "other"]],
            "output": "other",
        }
    )
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        result = run(spec, {"x": 1}, model=ScriptedModel([]), store=store)
    assert result.status == "succeeded" and result.outputs["other"]["args"] == ["k"]
    assert [s[1:4] for s in seen] == [("first", "first", True), ("inner", "inner", True), ("inner", "inner#1", True)]
    assert {s[0] for s in seen} == {result.run_id} and all(result.run_id in s[4] for s in seen)


def test_a_graph_cannot_pass_ctx_to_a_function_that_takes_the_context(tmp_path: Path) -> None:
    @register_function("test_ctx_overridden")
    def overridden(outputs: Any, inputs: Any, *, ctx: FunctionContext) -> dict[str, Any]:
        return {}

    spec = graph_from_data(
        {
            "name": "ctx_override",
            "nodes": {"f": {"op": "function", "function": "test_ctx_overridden", "args": {"ctx": "mine"}}},
            "output": "f",
        }
    )
    # refused when the run starts, before it is stored (as `graph validate` refuses it), not at the node
    with pytest.raises(
        ConfigError,
        match=r"graph 'ctx_override': nodes\.f\.args\.ctx: function 'test_ctx_overridden' gets 'ctx' from the runtime",
    ):
        run(spec, {}, model=ScriptedModel([]), store=f"sqlite:///{tmp_path / 'runs.db'}")
    with Store(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        assert store.list_runs() == []
    assert function_problems(spec) == [
        "nodes.f.args.ctx: function 'test_ctx_overridden' gets 'ctx' from the runtime (the run context); remove it "
        "from the node's args"
    ]


def test_registration_mistakes_are_refused_at_the_decorator() -> None:
    """Used without its name, ``@register_function`` replaced the user's function with its inner decorator and
    registered nothing; a shipped name was silently taken over (every graph using it changed); an operator's params
    that are no OperatorParams failed only when a spec loaded."""
    from agentmesh import operator
    from agentmesh.runtime.operators import registry
    from agentmesh.spec.operators import OperatorParams

    def mine(outputs: Any, inputs: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(ConfigError, match=r"used without its name\? write @agentmesh.register_function\('name'\)"):
        register_function(mine)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected a callable to register, got int"):
        register_function("test_reg_not_callable")(42)  # type: ignore[type-var]
    shipped = registry.get_function("pairwise_winner")
    with pytest.raises(ConfigError, match=r"function 'pairwise_winner' is agentmesh's own .*replace=True"):
        register_function("pairwise_winner")(mine)
    assert registry.get_function("pairwise_winner") is shipped
    register_function("test_reg_again")(mine)
    register_function("test_reg_again")(lambda outputs, inputs: {})  # the user's own name: again is fine
    try:
        assert register_function("pairwise_winner", replace=True)(mine) is mine
        assert registry.get_function("pairwise_winner") is mine
    finally:
        register_function("pairwise_winner", replace=True)(shipped)

    async def op(run: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(ConfigError, match=r"params must be a subclass of .*OperatorParams"):
        operator("test_reg_bad_params", params=dict)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"operator 'vote' is agentmesh's own"):
        operator("vote", params=OperatorParams)(op)


def test_an_operator_registered_again_is_the_one_the_next_run_of_the_same_spec_uses(tmp_path: Path) -> None:
    """A spec compiles once per process; its nodes held the operator registered at that moment, so an operator
    fixed and registered again (a notebook cell run twice) kept running its old version in every later run."""
    from agentmesh import operator
    from agentmesh.spec.operators import OperatorParams

    class Params(OperatorParams):
        pass

    def register(version: int) -> None:
        @operator("test_reg_op_version", params=Params)
        async def op(run: Any) -> dict[str, Any]:
            return {"answer": version}

    register(0)
    spec = graph_from_data({"name": "op_version", "inputs": {}, "nodes": {"only": {"op": "test_reg_op_version"}}})
    answers = []
    for version in (1, 2):
        register(version)
        store = f"sqlite:///{tmp_path / 'runs.db'}"  # not the default database of the directory the tests run in
        answers.append(run(spec, {}, model=ScriptedModel(default="unused"), store=store).outputs["only"]["answer"])
    assert answers == [1, 2]


def test_function_args_are_checked_by_graph_validate_with_the_unknown_functions() -> None:
    @register_function("test_args_checked")
    def takes_k(outputs: Any, inputs: Any, *, k: int) -> dict[str, Any]:
        return {"k": k}

    spec = graph_from_data(
        {
            "name": "args_checked",
            "nodes": {
                "f": {"op": "function", "function": "test_args_checked", "args": {"kk": 1}},
                "g": {"op": "function", "function": "test_args_unknown_fn"},
            },
            "edges": [["f", "g"]],
            "output": "g",
        }
    )
    problems = function_problems(spec)
    assert problems[0].startswith("nodes.f.args: function 'test_args_checked': unknown argument(s) kk; missing")
    assert problems[1].startswith("nodes.g.function: unknown function 'test_args_unknown_fn'")
