"""What a script author meets composing graphs in Python: results checked against what the README promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentmesh import ScriptedModel, resolve_graph, run
from agentmesh.errors import ConfigError, SpecError
from agentmesh.runtime import RunError
from agentmesh.spec import graph_from_data
from agentmesh.store import Store


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def _debate_then_check(activation: str = "parallel") -> Any:
    """Three debaters for up to three rounds, a vote, then a checker's call: the output node."""
    return graph_from_data(
        {
            "name": "debate_checked",
            "inputs": {"question": {"type": "string"}},
            "agents": {
                "debater": {"prompt": "{{ question }}", "parser": "boxed_math"},
                "checker": {
                    "prompt": "{{ question }} The debate says {{ nodes.vote.answer }}.",
                    "parser": "boxed_math",
                },
            },
            "nodes": {
                "debate": {"op": "rounds", "agents": ["debater"] * 3, "rounds": 3, "activation": activation},
                "vote": {"op": "vote", "from": "debate"},
                "check": {"op": "call", "agent": "checker"},
            },
            "edges": [["debate", "vote"], ["vote", "check"]],
        }
    )


def _debaters() -> ScriptedModel:
    return ScriptedModel(
        [
            {"agent": "debater", "round": 1, "responses": ["\\boxed{51}", "\\boxed{50}", "\\boxed{51}"]},
            {"agent": "debater", "template": "\\boxed{51}"},
            {"agent": "checker", "template": "\\boxed{51}", "optional": True},
        ]
    )


def test_a_budget_spent_before_the_output_nodes_call_ends_with_the_vote_already_reached(db: str) -> None:
    """README: once a budget is spent no further call starts, "and the run ends with its best answer so far". The
    checker's call was refused, its node output ``answer: None``, and that was the run's answer."""
    result = run(_debate_then_check(), {"question": "What is 17*3?"}, model=_debaters(), store=db, budget={"calls": 5})
    assert result.calls == 5
    assert result.outputs["check"]["answers"] == [] and result.outputs["check"]["stopped"]
    assert result.outputs["vote"]["answer"] == "51"
    assert (result.answer, result.text) == ("51", "\\boxed{51}")
    assert (result.stop_reason or "").startswith("budget: 5 model calls")


def test_a_round_the_budget_cut_before_any_call_keeps_the_previous_rounds_answers(db: str) -> None:
    """A budget spent exactly at the end of round 1: round 2 got no call, and the node's output held no answers, so
    the vote after it, and the run's answer, were None although round 1 had voted 51."""
    model = _debaters()
    result = run(_debate_then_check(), {"question": "What is 17*3?"}, model=model, store=db, budget={"calls": 3})
    assert len(model.calls) == 3 and result.calls == 3
    debate = result.outputs["debate"]
    assert debate["round"] == 2 and debate["done"] and (debate["stop"] or "").startswith("budget: 3 model calls")
    assert [a["key"] for a in debate["answers"]] == ["51", "50", "51"]  # round 1's, still the best the node has
    assert debate["network"]["nodes"] == []  # nobody answered in round 2
    assert result.outputs["vote"]["answer"] == "51" and result.answer == "51"


def test_a_sequential_round_cut_before_any_call_keeps_the_previous_rounds_answers_and_members(db: str) -> None:
    spec = _debate_then_check(activation="sequential")
    result = run(spec, {"question": "What is 17*3?"}, model=_debaters(), store=db, budget={"calls": 3})
    debate = result.outputs["debate"]
    assert sorted(a["slot"] for a in debate["answers"]) == [0, 1, 2] and sorted(debate["active"]) == [0, 1, 2]
    assert result.answer == "51"


def _refine_loop(reads: str) -> dict[str, Any]:
    """A writer drafts and a grader scores until a score of 8; an editor then reads ``reads``."""
    return {
        "name": "refine_loop",
        "inputs": {"question": {"type": "string"}},
        "agents": {
            "writer": {"prompt": "{{ question }}"},
            "grader": {"prompt": "Rate 0-10: {{ candidate }}", "parser": "score"},
            "editor": {"prompt": "Polish: {{ " + reads + " }}"},
        },
        "nodes": {
            "refine": {"op": "loop", "body": ["draft", "judge"], "until": {"score_threshold": {"min": 8}}},
            "draft": {"op": "call", "agent": "writer"},
            "judge": {"op": "score", "from": "draft", "judge": "grader"},
            "polish": {"op": "call", "agent": "editor"},
        },
        "edges": [["refine", "polish"]],
    }


def test_a_prompt_reading_what_a_loops_last_body_node_lacks_is_refused_when_the_spec_loads(db: str) -> None:
    """README: a ``nodes.<name>.<key>`` a prompt reads is checked when the spec loads. A loop outputs what its last
    body node has of answers/answer/value/text/scores; ``nodes.refine.text`` after a ``score`` node passed the
    check and failed the run at the editor, after every call of the loop."""
    with pytest.raises(SpecError) as caught:
        graph_from_data(_refine_loop("nodes.refine.text"))
    message = str(caught.value)
    assert "agents.editor.prompt: template reads nodes.refine.text, but node 'refine' (op 'loop') outputs" in message
    assert "(a loop passes on its last body node's text, and node 'judge' (op 'score') has none)" in message
    # what the loop does pass on (the grader's scores), and its own count, are still accepted and render
    spec = graph_from_data(_refine_loop("nodes.refine.scores[0] }} after {{ nodes.refine.iteration"))
    model = ScriptedModel(
        [
            {"agent": "writer", "responses": ["draft one", "draft two"]},
            {"agent": "grader", "responses": ["5 [END]", "9 [END]"]},
            {"agent": "editor", "template": "{{ prompt }}"},
        ]
    )
    result = run(spec, {"question": "Explain tides."}, model=model, store=db)
    model.assert_complete()
    assert result.answer == "Polish: 9.0 after 2"


def _debate_with_stop(stop: dict[str, Any], activation: str = "parallel") -> Any:
    return graph_from_data(
        {
            "name": "budgeted_debate",
            "inputs": {"question": {"type": "string"}},
            "agents": {"debater": {"prompt": "{{ question }}", "parser": "boxed_math"}},
            "nodes": {
                "debate": {
                    "op": "rounds",
                    "agents": ["debater"] * 3,
                    "rounds": 5,
                    "stop": stop,
                    "activation": activation,
                },
                "vote": {"op": "vote", "from": "debate"},
            },
            "edges": [["debate", "vote"]],
        }
    )


def _disagreeing(agent: str = "debater") -> ScriptedModel:
    return ScriptedModel([{"agent": agent, "template": "\\boxed{ {{- call_index -}} }"}])


def test_a_budget_in_a_nodes_stop_policy_ends_that_node(db: str) -> None:
    """README: stop policies end a rounds or loop node, and compose with any/all, budget among them. A budget in a
    node's policy was checked against the run's budgets only (the graph's and the caller's), none of which it is,
    so it never held: the debate ran all 5 rounds, 15 calls."""
    parallel = run(_debate_with_stop({"budget": {"calls": 4}}), {"question": "q"}, model=_disagreeing(), store=db)
    assert parallel.calls == 6  # checked after each layer, as a consensus is: round 2 took the run past 4
    assert parallel.stop_reason == "budget: 4 model calls (spent 6) at round 2 in node 'debate'"
    sequential = run(
        _debate_with_stop({"budget": {"calls": 4}}, activation="sequential"),
        {"question": "q"},
        model=_disagreeing(),
        store=db,
    )
    assert sequential.calls == 4 and sequential.stop_reason == "budget: 4 model calls at round 2 in node 'debate'"
    composed = _debate_with_stop({"any": [{"consensus": {}}, {"budget": {"calls": 9}}]})
    result = run(composed, {"question": "q"}, model=_disagreeing(), store=db)
    assert result.calls == 9 and result.outputs["debate"]["round"] == 3 and result.answer is not None
    # the node's budget is not the run's: nothing refuses a call after the node
    assert result.stop_reason == "budget: 9 model calls at round 3 in node 'debate'"


def test_a_budget_in_a_loops_until_ends_the_loop(db: str) -> None:
    spec = graph_from_data(
        {
            "name": "budgeted_loop",
            "inputs": {"question": {"type": "string"}},
            "agents": {"solver": {"prompt": "{{ question }}", "parser": "boxed_math"}},
            "nodes": {
                "again": {"op": "loop", "body": ["ask"], "until": {"budget": {"calls": 4}}, "max_iterations": 9},
                "ask": {"op": "team", "agents": ["solver", "solver"]},
            },
            "output": "again",
        }
    )
    result = run(spec, {"question": "q"}, model=_disagreeing("solver"), store=db)
    assert result.calls == 4 and result.outputs["again"]["iteration"] == 2
    assert result.stop_reason == "budget: 4 model calls after iteration 2 in node 'again'"


def test_a_function_declaring_ctx_positionally_is_told_to_make_it_keyword_only(db: str) -> None:
    """README: a function that declares a keyword-only ``ctx`` gets the run's FunctionContext. Written positionally,
    ``ctx`` failed as "missing a required argument: 'ctx' ... args may give nothing", and ``ctx=None`` ran with
    None; both are refused before the run is stored, saying how to write it."""
    from agentmesh.runtime.operators.registry import register_function

    @register_function("qa_counts_runs_positional")
    def counts(outputs: Any, inputs: Any, ctx: Any) -> dict[str, Any]:
        return {"answer": str(len(ctx.store.list_runs()))}

    @register_function("qa_counts_runs_defaulted")
    def defaulted(outputs: Any, inputs: Any, ctx: Any = None) -> dict[str, Any]:
        return {"answer": str(ctx)}

    @register_function("qa_counts_runs")
    def keyword(outputs: Any, inputs: Any, *, ctx: Any) -> dict[str, Any]:
        return {"answer": str(len(ctx.store.list_runs()))}

    def graph(function: str, args: dict[str, Any] | None = None) -> Any:
        node = {"op": "function", "function": function, **({"args": args} if args else {})}
        return graph_from_data({"name": "counter", "nodes": {"count": node}})

    for function in ("qa_counts_runs_positional", "qa_counts_runs_defaulted"):
        with pytest.raises(ConfigError) as caught:
            run(graph(function), {}, model=ScriptedModel([]), store=db)
        assert (
            f"nodes.count.function: function {function!r} declares 'ctx' as a positional parameter, and the run "
            "context goes only to a keyword-only one: write def "
        ) in str(caught.value)
        assert "(outputs, inputs, *, ctx)" in str(caught.value)
    with Store(db) as store:
        assert store.list_runs() == []  # refused before anything was stored
    assert run(graph("qa_counts_runs"), {}, model=ScriptedModel([]), store=db).answer == "1"
    # a ctx of the node's own, given in args, is an ordinary argument
    assert (
        run(graph("qa_counts_runs_defaulted", {"ctx": "mine"}), {}, model=ScriptedModel([]), store=db).answer == "mine"
    )


def test_a_branch_inside_a_loops_body_routing_out_of_it_is_refused_when_the_spec_loads() -> None:
    """A loop's body is a chain back to the loop node. A branch in it routed to a node outside on every iteration
    while the loop went on: the fixer ran beside each iteration, and the loop's answer was the branch's (none)."""
    data = {
        "name": "loop_with_branch",
        "inputs": {"question": {"type": "string"}},
        "agents": {
            "solver": {"prompt": "{{ question }}", "parser": "boxed_math"},
            "fixer": {"prompt": "Fix: {{ nodes.ask.text }}", "parser": "boxed_math"},
        },
        "nodes": {
            "again": {"op": "loop", "body": ["ask", "gate"], "until": {"max_rounds": 3}},
            "ask": {"op": "call", "agent": "solver"},
            "gate": {"op": "branch", "condition": "nodes.ask.answer == '1'", "then": "fix"},
            "fix": {"op": "call", "agent": "fixer"},
        },
        "output": "again",
    }
    with pytest.raises(SpecError) as caught:
        graph_from_data(data)
    assert (
        "nodes.gate.then: branch 'gate' is in the body of loop 'again', which goes on to its next iteration whatever "
        "the branch says: the route to 'fix' would run it beside every iteration; take it out of the body and branch "
        "after the loop (an edge [again, gate]), or decide inside a function node"
    ) in str(caught.value)
    # as the message says: the branch after the loop
    fixed = {
        **data,
        "nodes": {**data["nodes"], "again": {"op": "loop", "body": ["ask"], "until": {"max_rounds": 3}}},
        "edges": [["again", "gate"]],
        "output": "fix",
    }
    assert graph_from_data(fixed).nodes["gate"].op == "branch"


@pytest.mark.parametrize("name", ["role", "agent"])
def test_a_prompt_reading_an_input_the_runtimes_own_variable_hides_is_refused_when_the_spec_loads(
    name: str, db: str
) -> None:
    """Prompts see the inputs at the top level, and ``agent`` and ``role`` from the runtime, which win: ``You are
    {{ role }}.`` with an input ``role`` rendered "You are ." and made the call."""
    data = {
        "name": "persona",
        "inputs": {name: {"type": "string"}},
        "agents": {"actor": {"prompt": "You are {{ " + name + " }}."}},
        "nodes": {"answer": {"op": "call", "agent": "actor"}},
    }
    with pytest.raises(SpecError) as caught:
        graph_from_data(data)
    assert f"agents.actor.prompt: template reads {name!r}, which names an input of the graph and also " in str(
        caught.value
    )
    assert f"the template gets the latter, not the input: read the input as inputs.{name}, or rename it" in str(
        caught.value
    )
    # as the message says: the input read through ``inputs``
    fixed = {**data, "agents": {"actor": {"prompt": "You are {{ inputs['" + name + "'] }}."}}}
    model = ScriptedModel([{"template": "{{ prompt }}"}])
    assert run(graph_from_data(fixed), {name: "a pirate"}, model=model, store=db).answer == "You are a pirate."


@pytest.mark.parametrize(("event", "stored"), [("start", "failed"), ("call", "failed"), ("stop", "succeeded")])
def test_a_listener_that_raises_is_named_and_the_run_is_not_left_running(event: str, stored: str, db: str) -> None:
    """A listener's bug failed the run as its bare exception (``KeyError: 'oops'``), as if the run had; raised on
    ``start``, it left the run stored as running."""

    def shows_progress(kind: str, data: dict[str, Any]) -> None:
        if kind == event:
            raise KeyError("oops")

    with pytest.raises(RunError) as caught:
        run(
            "debate",
            {"question": "q"},
            model=ScriptedModel([], default="\\boxed{1}"),
            store=db,
            listeners=shows_progress,
        )
    assert f"listener {shows_progress.__qualname__} raised KeyError: 'oops' on the {event!r} event (" in str(
        caught.value
    )
    assert isinstance(caught.value.__cause__, KeyError)
    with Store(db) as store:
        (record,) = store.list_runs()
    assert record.status == stored and f"run {record.id}: " in str(caught.value)


def test_a_spec_derived_with_model_copy_from_plain_parts_runs_or_names_what_is_wrong(db: str) -> None:
    """``spec.model_copy(update=...)`` does not validate: parts given in their YAML form (a node as
    ``{"op": "call", ...}``, a card or the stop policy as a mapping) failed inside pydantic's serializer
    (``'dict' object has no attribute 'op'``, ``... 'model'``) before any check could name them."""
    debate = resolve_graph("debate")
    judged = debate.model_copy(
        update={
            "agents": {**debate.agents, "judge": {"prompt": "Check {{ nodes.vote.answer }}", "parser": "boxed_math"}},
            "nodes": {**debate.nodes, "judge": {"op": "call", "agent": "judge"}},
            "edges": [*debate.edges, ("vote", "judge")],
            "stop": {"budget": {"calls": 40}},
        }
    )
    result = run(judged, {"question": "q"}, model=ScriptedModel([], default="\\boxed{1}"), store=db)
    assert result.answer == "1" and sorted(result.outputs) == ["debate", "judge", "vote"]
    with Store(db) as store:
        assert store.get_run(result.run_id).meta["spec"]["stop"] == {"budget": {"calls": 40}}
    broken = debate.model_copy(update={"nodes": {**debate.nodes, "judge": {"op": "call", "agent": "nobody"}}})
    with pytest.raises(SpecError, match=r"graph 'debate': nodes\.judge\.agent: unknown agent 'nobody'"):
        run(broken, {"question": "q"}, model=ScriptedModel([]), store=db)
