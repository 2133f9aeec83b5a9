"""Writing a new graph as a researcher does, from the README and the docstrings: the mistakes that passed
``graph validate`` and then ran wrong or failed after model calls, each now refused (or named) before any call."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import SpecError
from agentmesh.models import ScriptedModel
from agentmesh.models.messages import Choice, ModelResponse, Usage
from agentmesh.parsers import Parsed, register_parser
from agentmesh.runtime import RunError, operator, register_function, resume, run
from agentmesh.runtime.budget import BudgetExhausted, BudgetTracker
from agentmesh.runtime.operators import NodeOutput, NodeRun, gather_answers
from agentmesh.spec import graph_from_data, load_graph
from agentmesh.spec.operators import OperatorParams
from agentmesh.spec.stop import Budget
from tests._servers import FakeOpenAIServer, Reply


def _graph(nodes: dict[str, Any], edges: list[list[str]], **extra: Any) -> dict[str, Any]:
    return {
        "name": "qa",
        "inputs": {"question": {"type": "string"}, "test": {"type": "string", "required": False}},
        "agents": {
            "s": {"prompt": "{{ question }}", "parser": "boxed_math"},
            "j": {"prompt": "{{ candidate }}", "parser": {"name": "score", "min": 1, "max": 10}},
        },
        "nodes": nodes,
        "edges": edges,
        **extra,
    }


TEAM = {"t": {"op": "team", "agents": ["s", "s", "s"]}}


@pytest.mark.parametrize(
    ("nodes", "edges", "expected"),
    [
        # the vote ran beside the team, found no answers, and the run "succeeded" with no answer
        ({**TEAM, "v": {"op": "vote", "from": "t"}}, [], r"nodes\.v\.from: reads the output of node 't', which "),
        # the vote ran beside its scorer: every weight 0, silently
        (
            {
                **TEAM,
                "sc": {"op": "score", "from": "t", "judge": "j"},
                "v": {"op": "vote", "from": "t", "weights": "sc"},
            },
            [["t", "sc"], ["t", "v"]],
            r"nodes\.v\.weights: reads the output of node 'sc', which does not run before 'v' .*add an edge \[sc, v\]",
        ),
        (
            {**TEAM, "k": {"op": "rank", "from": "t", "keep": 1, "ranker": "s"}, "x": {"op": "call", "agent": "s"}},
            [["x", "k"]],
            r"nodes\.k\.from: .*add an edge \[t, k\]",
        ),
    ],
)
def test_a_node_reading_a_node_that_does_not_run_before_it_is_refused(
    nodes: dict[str, Any], edges: list[list[str]], expected: str
) -> None:
    with pytest.raises(SpecError, match=expected):
        graph_from_data(_graph(nodes, edges, output="v" if "v" in nodes else "k"))


def test_a_node_after_a_loop_may_read_the_loops_body() -> None:
    nodes = {
        "refine": {"op": "loop", "body": ["draft", "critique"], "until": {"max_rounds": 2}},
        "draft": {"op": "team", "agents": ["s", "s"]},
        "critique": {"op": "score", "from": "draft", "judge": "j"},
        "final": {"op": "vote", "from": "draft", "weights": "critique"},
    }
    assert graph_from_data(_graph(nodes, [["refine", "final"]])).output_node() == "final"


def test_an_edge_from_a_branch_to_its_own_target_is_refused() -> None:
    """The edge ran the target whatever the condition said: both arms ran."""
    nodes = {
        "a": {"op": "call", "agent": "s"},
        "gate": {"op": "branch", "condition": "nodes.a.answer == '1'", "then": "yes", "else": "no"},
        "yes": {"op": "call", "agent": "s"},
        "no": {"op": "call", "agent": "s"},
    }
    with pytest.raises(SpecError, match=r"edges\[2\]: edge \[gate, no\] runs 'no' after branch 'gate' whatever"):
        graph_from_data(_graph(nodes, [["a", "gate"], ["gate", "yes"], ["gate", "no"]], output="yes"))
    assert graph_from_data(_graph(nodes, [["a", "gate"]], output="yes")).nodes["gate"].op == "branch"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tests": "{{ tset }}"}, r"nodes\.c\.tests: template uses undefined variable 'tset'; available: answer, "),
        ({"tests": "{{ test }"}, r"nodes\.c\.tests: tests is not a valid Jinja2 template: template syntax error"),
        ({"tests": "{{ nodes.t.anwser }}"}, r"nodes\.c\.tests: template reads nodes\.t\.anwser, but node 't'"),
        ({"tests": "{{ test }}", "entry_point": "{{ answer }}"}, r"nodes\.c\.entry_point: .*variable 'answer'"),
    ],
)
def test_a_code_tests_template_is_checked_when_the_spec_loads(params: dict[str, Any], expected: str) -> None:
    """It failed the node when it rendered, after the calls of the node whose code it tests."""
    nodes = {**TEAM, "c": {"op": "code_tests", "from": "t", **params}}
    with pytest.raises(SpecError, match=expected):
        graph_from_data(_graph(nodes, [["t", "c"]]))
    fine = {**TEAM, "c": {"op": "code_tests", "from": "t", "tests": "{{ test }}{{ answer.text }}", "entry_point": "f"}}
    assert graph_from_data(_graph(fine, [["t", "c"]])).output_node() == "c"


def test_a_user_function_that_raises_or_a_parser_that_returns_no_parsed_is_named(tmp_path: Path) -> None:
    """Both came out as their bare exception from inside LangGraph's task (``ValueError: boom``, with a note
    naming a task id), and the command line printed agentmesh's traceback: now a :class:`RunError` naming the node
    and the function (or the agent and the parser), the user's exception chained."""

    @register_function("test_qa_authoring_boom")
    def boom(outputs: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("boom went the function")

    @register_parser("test_qa_authoring_bad_parser")
    def bad_parser(text: str) -> Parsed:
        return text  # type: ignore[return-value]

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    model = ScriptedModel(default="ok")
    nodes = {"a": {"op": "call", "agent": "s"}, "f": {"op": "function", "function": "test_qa_authoring_boom"}}
    with pytest.raises(RunError, match=r"node 'f': function 'test_qa_authoring_boom' raised ValueError: boom") as e:
        run(graph_from_data(_graph(nodes, [["a", "f"]])), {"question": "q"}, model=model, store=db)
    assert isinstance(e.value.__cause__, ValueError)
    spec = _graph({"a": {"op": "call", "agent": "s"}}, [])
    spec["agents"]["s"]["parser"] = "test_qa_authoring_bad_parser"
    with pytest.raises(RunError, match=r"node 'a': agent 's': parser 'test_qa_authoring_bad_parser' failed on its "):
        run(graph_from_data(spec), {"question": "q"}, model=model, store=db)


def test_a_syntax_error_in_a_prompt_of_many_lines_says_which_line_and_does_not_quote_it_whole(tmp_path: Path) -> None:
    """It said only the key's line, then repeated the whole prompt as ``(got 'Hello\\n{{ question }\\n...')``."""
    file = tmp_path / "g.yaml"
    file.write_text(
        "name: g\ninputs:\n  question: {}\nagents:\n  s:\n    prompt: |-\n      Hello\n      {{ question }\n"
        "      Bye\nnodes:\n  a: {op: call, agent: s}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_graph(file)
    assert str(caught.value) == (
        f"{file}:6: agents.s.prompt: template syntax error: unexpected '}}' (line 2 of the template)"
    )


def test_a_rank_step_after_the_last_round_is_refused() -> None:
    """It never ran, and nothing said so: every agent went on to the end."""
    rank = {"before_round": 3, "keep": 2, "ranker": "s"}
    nodes = {"r": {"op": "rounds", "agents": ["s", "s", "s"], "rounds": 2, "rank": rank}}
    with pytest.raises(SpecError, match=r"nodes\.r\.rank: before_round is 3 and the node has 2 rounds, so the rank"):
        graph_from_data(_graph(nodes, []))
    nodes["r"]["rounds"] = 3
    assert graph_from_data(_graph(nodes, [])).nodes["r"].op == "rounds"


def test_a_user_operator_that_raises_is_named(tmp_path: Path) -> None:
    """It came out as its bare exception (``KeyError: 'oops'``) from inside LangGraph's task."""

    class Params(OperatorParams):
        agent: str

    @operator("test_qa_authoring_raises", params=Params)
    async def raises(run: NodeRun) -> NodeOutput:
        raise KeyError("oops")

    spec = _graph({"a": {"op": "test_qa_authoring_raises", "agent": "s"}}, [])
    with pytest.raises(RunError, match=r"node 'a': operator 'test_qa_authoring_raises' raised KeyError: 'oops'") as e:
        run(graph_from_data(spec), {"question": "q"}, model=ScriptedModel(default="ok"), store=_db(tmp_path))
    assert isinstance(e.value.__cause__, KeyError)


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_a_list_of_stop_policies_says_how_to_combine_them() -> None:
    """``stop: [{...}, {...}]`` said pydantic's "Input should be a valid dictionary or object to extract fields
    from"."""
    spec = _graph({"a": {"op": "call", "agent": "s"}}, [], stop=[{"budget": {"calls": 4}}, {"max_rounds": 2}])
    with pytest.raises(SpecError, match=r"stop: a stop policy is one mapping, .*: \{any: \[\.\.\.\]\}"):
        graph_from_data(spec)


def test_a_card_indented_one_level_too_far_left_says_so(tmp_path: Path) -> None:
    """``s:`` then ``prompt:`` at its level said "Input should be a valid dictionary or instance of AgentCard" and
    "agents.prompt: in card {{ question }}: {{ question }}: file not found"."""
    file = tmp_path / "g.yaml"
    file.write_text(
        "name: g\ninputs:\n  question: {}\nagents:\n  s:\n  prompt: '{{ question }}'\n"
        "nodes:\n  a: {op: call, agent: s}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_graph(file)
    assert caught.value.context["problems"] == [
        f"{file}:5: agents.s: empty: expected the card's fields (prompt, parser, ...) indented under it, or a card "
        "file's path",
        f"{file}:6: agents.prompt: 'prompt' is a card's field, not an agent: indent it under its agent's name",
    ]


def test_a_problem_in_a_card_file_says_where_in_that_file(tmp_path: Path) -> None:
    """It named only the graph's line that names the card (``agents: {w: cards/w.yaml}``): the prompt to fix is
    in the card's file."""
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "w.yaml").write_text("role: writer\nprompt: |-\n  Hi {{ questoin }}\n")
    file = tmp_path / "g.yaml"
    file.write_text("name: g\ninputs:\n  question: {}\nagents:\n  w: cards/w.yaml\nnodes:\n  a: {op: call, agent: w}\n")
    with pytest.raises(SpecError, match=r"g\.yaml:5: agents\.w\.prompt: template uses undefined variable 'questoin' "):
        load_graph(file)
    with pytest.raises(SpecError, match=r"\(in card file cards/w\.yaml:2\)$"):
        load_graph(file)


def test_an_operator_asking_twice_in_one_slot_is_refused(tmp_path: Path) -> None:
    """Both calls ran and the run succeeded; a replay then served the first answer to both and stopped on a call
    "the recorded run did not make", and a resume answered the second from the first's record."""

    class Params(OperatorParams):
        agent: str

    @operator("test_qa_authoring_one_slot", params=Params)
    async def one_slot(run: NodeRun) -> NodeOutput:
        return await gather_answers(run, [("s", 0, {}), ("s", 0, {})])

    spec = _graph({"a": {"op": "test_qa_authoring_one_slot", "agent": "s"}}, [])
    with pytest.raises(
        RunError, match=r"node 'a': operator 'test_qa_authoring_one_slot' asks agent 's' twice in slot 0"
    ):
        run(graph_from_data(spec), {"question": "q"}, model=ScriptedModel(default="ok"), store=_db(tmp_path))


def test_a_cost_budget_on_a_model_without_a_price_stops_the_run_saying_why(
    tmp_path: Path, fake_server: FakeOpenAIServer
) -> None:
    """A call whose cost is unknown counted $0: a run on a model without a price made every call under any cost
    budget (nine for a debate under $0.0000001) and ended "completed: every node ran"."""
    count = itertools.count()
    fake_server.reset(lambda body: Reply.ok(f"\\boxed{{{next(count)}}}"))  # never agreeing: three rounds of three
    model = f"openai:qa-unpriced@{fake_server.url}"
    result = run("debate", {"question": "q"}, model=model, store=_db(tmp_path), budget={"cost_usd": 1e-7})
    assert result.cost_usd is None and result.calls == 3  # the first round's, in flight together
    assert result.stop_reason is not None
    assert "budget: $1e-07 cannot be kept: model 'qa-unpriced' has no price" in result.stop_reason


def test_a_budget_tracker_with_an_unpriced_call_refuses_the_next_under_a_cost_budget() -> None:
    tracker = BudgetTracker([Budget(cost_usd=1.0)])
    tracker.reserve_call()
    tracker.spend(ModelResponse(model="m", choices=(Choice(text="x"),), usage=Usage(), cost_usd=None))
    with pytest.raises(BudgetExhausted, match=r"budget: \$1 cannot be kept: model 'm' has no price"):
        tracker.reserve_call()
    assert BudgetTracker([Budget(calls=5)], unpriced="m").exhausted() is None  # (no cost budget: nothing to keep)


def test_a_failed_runs_error_names_the_stored_run_so_that_it_can_be_resumed(tmp_path: Path) -> None:
    """The run is stored under a fresh id, and its error did not say which: ``resume`` needed a search of the
    store. Now ``context["run"]``, as a Ray run's error has it."""
    fails = [True]

    @register_function("test_qa_authoring_flaky")
    def flaky(outputs: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        if fails.pop() if fails else False:
            raise RuntimeError("not yet")
        return {"answer": outputs["a"]["answer"], "text": "fixed"}

    nodes = {"a": {"op": "call", "agent": "s"}, "f": {"op": "function", "function": "test_qa_authoring_flaky"}}
    spec = graph_from_data(_graph(nodes, [["a", "f"]]))
    with pytest.raises(RunError) as caught:
        run(spec, {"question": "q"}, model=ScriptedModel(default="\\boxed{7}"), store=_db(tmp_path))
    run_id = caught.value.context["run"]
    result = resume(run_id, model=ScriptedModel(default="\\boxed{7}"), store=_db(tmp_path))
    assert (result.run_id, result.status, result.answer, result.text) == (run_id, "succeeded", "7", "fixed")


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("{{ question | uppercase }}", "no filter named 'uppercase'"),  # was a TemplateAssertionError traceback
        ("{% if question is palindrome %}x{% endif %}", "no test named 'palindrome'"),  # passed; failed at render
    ],
)
def test_a_filter_or_test_jinja_does_not_have_is_refused_at_load(prompt: str, expected: str) -> None:
    spec = _graph({"a": {"op": "call", "agent": "s"}}, [])
    spec["agents"]["s"]["prompt"] = prompt
    with pytest.raises(SpecError, match=rf"agents\.s\.prompt: template error: {expected}"):
        graph_from_data(spec)
    gate = {"op": "branch", "condition": "question | lenght > 3", "then": "a"}
    nodes = {"a": {"op": "call", "agent": "s"}, "g": gate}
    with pytest.raises(SpecError, match=r"nodes\.g\.condition: .*template error: no filter named 'lenght'"):
        graph_from_data(_graph(nodes, []))


def test_a_node_field_indented_one_level_too_far_left_says_so(tmp_path: Path) -> None:
    """``agents: [s, s]`` at the level of the nodes said "expected {op: <operator>, ...}; operators: ..."."""
    file = tmp_path / "g.yaml"
    file.write_text(
        "name: g\ninputs:\n  question: {}\nagents:\n  s: {prompt: '{{ question }}'}\nnodes:\n  a:\n    op: team\n"
        "  agents: [s, s]\n"
    )
    with pytest.raises(SpecError) as caught:
        load_graph(file)
    assert caught.value.context["problems"] == [
        f"{file}:7: nodes.a.agents: required field is missing",
        f"{file}:9: nodes.agents: 'agents' is a node's field, not a node: indent it under its node's name",
    ]


def test_a_weighted_vote_with_no_score_is_the_plain_majority(tmp_path: Path) -> None:
    """A judge whose replies held no score weighted every answer 0, and the first answer seen won the tie of zeros
    against three that agreed."""
    nodes = {
        "t": {"op": "team", "agents": ["s", "s", "s", "s"]},
        "sc": {"op": "score", "from": "t", "judge": "j"},
        "v": {"op": "vote", "from": "t", "weights": "sc"},
    }
    model = ScriptedModel(
        [{"agent": "s", "responses": ["\\boxed{50}", "\\boxed{51}", "\\boxed{51}", "\\boxed{51}"]}],
        default="I cannot score that.",
    )
    spec = graph_from_data(_graph(nodes, [["t", "sc"], ["sc", "v"]]))
    result = run(spec, {"question": "q"}, model=model, store=_db(tmp_path))
    assert result.outputs["sc"]["scores"] == [0.0, 0.0, 0.0, 0.0] and result.answer == "51"


def test_a_score_or_ranking_function_that_raises_is_named(tmp_path: Path) -> None:
    @register_function("test_qa_authoring_bad_reward")
    def bad_reward(answer: dict[str, Any], inputs: dict[str, Any]) -> float:
        raise ZeroDivisionError("no steps")

    @register_function("test_qa_authoring_bad_rank")
    async def bad_rank(answers: list[dict[str, Any]], keep: int) -> list[int]:
        raise IndexError("off by one")

    for node, expected in (
        ({"op": "score", "from": "t", "function": "test_qa_authoring_bad_reward"}, "score function"),
        ({"op": "rank", "from": "t", "keep": 1, "function": "test_qa_authoring_bad_rank"}, "ranking function"),
    ):
        spec = graph_from_data(_graph({**TEAM, "x": node}, [["t", "x"]]))
        with pytest.raises(RunError, match=rf"node 'x': {expected} 'test_qa_authoring_bad_\w+' raised \w+Error: "):
            run(spec, {"question": "q"}, model=ScriptedModel(default="\\boxed{1}"), store=_db(tmp_path))


def test_a_function_or_operator_returning_what_a_checkpoint_cannot_hold_is_named(tmp_path: Path) -> None:
    """It failed the run as "a checkpoint of thread '<run id>' could not be stored: TypeError: Type is not msgpack
    serializable: object", naming neither the node nor the function."""

    @register_function("test_qa_authoring_returns_object")
    def returns_object(outputs: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        return {"answer": "1", "when": {1, 2}, "obj": object()}

    class Params(OperatorParams):
        agent: str

    @operator("test_qa_authoring_operator_returns_object", params=Params)
    async def op_returns_object(run: NodeRun) -> NodeOutput:
        return {"answer": "1", "obj": object()}

    for node, who in (
        ({"op": "function", "function": "test_qa_authoring_returns_object"}, "function"),
        ({"op": "test_qa_authoring_operator_returns_object", "agent": "s"}, "operator"),
    ):
        spec = graph_from_data(_graph({"a": {"op": "call", "agent": "s"}, "f": node}, [["a", "f"]]))
        with pytest.raises(RunError, match=rf"node 'f': {who} 'test_qa_authoring_\w+' returned a value a checkpoint"):
            run(spec, {"question": "q"}, model=ScriptedModel(default="ok"), store=_db(tmp_path))


def test_a_branch_comparing_an_answer_with_a_number_is_refused(tmp_path: Path) -> None:
    """``nodes.a.answer == 51`` was always false (an answer is the text '51'): the branch took else, silently."""
    gate = {"op": "branch", "condition": "nodes.a.answer == 51", "then": "b"}
    nodes = {"a": {"op": "call", "agent": "s"}, "g": gate, "b": {"op": "call", "agent": "s"}}
    with pytest.raises(SpecError, match=r"nodes\.g\.condition: condition compares nodes\.a\.answer with the number 51"):
        graph_from_data(_graph(nodes, [["a", "g"]]))
    gate["condition"] = "nodes.a.answer == '51'"
    spec = graph_from_data(_graph(nodes, [["a", "g"]]))
    result = run(spec, {"question": "q"}, model=ScriptedModel(default="\\boxed{51}"), store=_db(tmp_path))
    assert result.outputs["g"]["taken"] == "then" and "b" in result.outputs


def test_a_misspelt_field_says_what_was_expected_and_the_closest(tmp_path: Path) -> None:
    """It said "unknown field (not part of this schema)", not which fields were expected there."""
    file = tmp_path / "g.yaml"
    file.write_text(
        "name: g\ninputs:\n  question: {type: string, descripton: x}\nagents:\n  s:\n    prompt: '{{ question }}'\n"
        "    sampling: {temprature: 0.5}\nnodes:\n"
        "  l: {op: loop, body: [a], until: {max_rounds: 2}, max_iteration: 3}\n"
        "  a: {op: team, agents: [s, s]}\nedgs: []\n"
    )
    with pytest.raises(SpecError) as caught:
        load_graph(file)
    said = "\n".join(caught.value.context["problems"])
    for expected in (
        ":3: inputs.question.descripton: unknown field; did you mean 'description'? expected one of: type, ",
        ":7: agents.s.sampling.temprature: unknown field; did you mean 'temperature'? expected one of: temperature, ",
        ":9: nodes.l.max_iteration: unknown field; did you mean 'max_iterations'? expected one of: body, until, max_",
        ":11: edgs: unknown field; did you mean 'edges'? expected one of: name, description, version, inputs, agents",
    ):
        assert expected in said, said


def test_a_function_may_take_args_named_as_the_runtimes_own_parameters(tmp_path: Path) -> None:
    """``args: {node: ...}`` collided with the helper that calls the function: ``called() got multiple values for
    argument 'node'``."""

    @register_function("test_qa_authoring_named_args")
    def named(outputs: dict[str, Any], inputs: dict[str, Any], *, node: str, name: str, fn: str, what: str) -> Any:
        return {"answer": outputs[node]["answer"], "text": f"{name}{fn}{what}"}

    args = {"node": "a", "name": "n", "fn": "f", "what": "w"}
    node = {"op": "function", "function": "test_qa_authoring_named_args", "args": args}
    nodes = {"a": {"op": "call", "agent": "s"}, "f": node}
    spec = graph_from_data(_graph(nodes, [["a", "f"]]))
    result = run(spec, {"question": "q"}, model=ScriptedModel(default="\\boxed{3}"), store=_db(tmp_path))
    assert (result.answer, result.text) == ("3", "nfw")
