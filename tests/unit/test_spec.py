"""Agent cards and graph specs: loading, errors with file/line/field, round-trips, Python construction, schema."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from agentmesh.errors import SpecError
from agentmesh.parsers import ParserSpec
from agentmesh.spec import (
    AgentCard,
    AnyOf,
    Budget,
    Consensus,
    GraphSpec,
    MaxRounds,
    NodeSpec,
    dump_graph,
    graph_from_data,
    load_agent,
    load_graph,
)
from agentmesh.spec.operators import CallParams, RoundsParams, VoteParams
from agentmesh.spec.schema import graph_json_schema
from agentmesh.spec.templates import node_references

DEBATE = textwrap.dedent(
    """\
    name: debate
    inputs:
      question: {type: string}
    agents:
      debater:
        role: debater
        system: Answer with \\boxed{}.
        prompt: |
          {{ question }}
          {% for p in previous %}- {{ p.text }}
          {% endfor %}
        parser: boxed_math
        sampling: {temperature: 0.7, max_tokens: 256}
    nodes:
      debate:
        op: rounds
        agents: [debater, debater, debater]
        rounds: 3
        stop: {consensus: {fraction: 0.66}}
      vote:
        op: vote
        from: debate
    edges:
      - [debate, vote]
    """
)


def write(tmp_path: Path, text: str, name: str = "g.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_debate_loads_with_expected_structure(tmp_path: Path) -> None:
    spec = load_graph(write(tmp_path, DEBATE))
    assert spec.output_node() == "vote"
    rounds = spec.nodes["debate"].params
    assert isinstance(rounds, RoundsParams) and rounds.rounds == 3 and rounds.agents == ["debater"] * 3
    assert isinstance(rounds.stop, Consensus) and rounds.stop.fraction == 0.66
    assert isinstance(spec.nodes["vote"].params, VoteParams) and spec.nodes["vote"].params.source == "debate"
    card = spec.agents["debater"]
    assert card.parser == ParserSpec(name="boxed_math") and card.sampling.temperature == 0.7
    assert card.template_variables() == {"question", "previous"}


def test_round_trip_dump_load_is_equal(tmp_path: Path) -> None:
    spec = load_graph(write(tmp_path, DEBATE))
    text = dump_graph(spec)
    again = load_graph(write(tmp_path, text, "again.yaml"))
    assert again == spec
    assert again.spec_hash() == spec.spec_hash()
    assert "prompt: |" in text  # prompts stay readable blocks


def test_python_construction_equals_yaml(tmp_path: Path) -> None:
    card = AgentCard(
        name="debater",
        role="debater",
        system="Answer with \\boxed{}.",
        prompt="{{ question }}\n{% for p in previous %}- {{ p.text }}\n{% endfor %}\n",
        parser="boxed_math",  # type: ignore[arg-type]  # the YAML short form is accepted
        sampling={"temperature": 0.7, "max_tokens": 256},  # type: ignore[arg-type]
    )
    built = GraphSpec(
        name="debate",
        inputs={"question": {"type": "string"}},  # type: ignore[dict-item]
        agents={"debater": card},
        nodes={
            "debate": NodeSpec.model_validate(
                {"op": "rounds", "agents": ["debater"] * 3, "rounds": 3, "stop": {"consensus": {"fraction": 0.66}}}
            ),
            "vote": NodeSpec.model_validate({"op": "vote", "from": "debate"}),
        },
        edges=[("debate", "vote")],
    )
    assert built == load_graph(write(tmp_path, DEBATE))
    assert graph_from_data(yaml.safe_load(dump_graph(built))) == built


def test_python_construction_checks_cross_references() -> None:
    with pytest.raises(ValidationError, match="unknown agent 'ghost'"):
        GraphSpec(name="g", nodes={"a": NodeSpec.model_validate({"op": "call", "agent": "ghost"})})


def test_stop_policies_compose_and_round_trip(tmp_path: Path) -> None:
    text = DEBATE + "stop:\n  any:\n    - {max_rounds: 4}\n    - {budget: {calls: 20, wall_s: 60}}\n"
    spec = load_graph(write(tmp_path, text))
    assert isinstance(spec.stop, AnyOf)
    assert spec.stop.any == [MaxRounds(rounds=4), Budget(calls=20, wall_s=60)]
    assert str(spec.stop) == "max rounds (4) or budget (calls=20, wall_s=60)"
    assert load_graph(write(tmp_path, dump_graph(spec), "rt.yaml")) == spec


def test_agent_card_file_and_reference_by_path(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    write(tmp_path / "agents", "role: solver\nprompt: 'Solve: {{ question }}'\nparser: choice_letter\n", "solver.yaml")
    card = load_agent(tmp_path / "agents" / "solver.yaml")
    assert card.name == "solver" and card.parser.name == "choice_letter"
    graph = write(
        tmp_path,
        "name: one\ninputs: {question: {}}\nagents:\n  s: agents/solver.yaml\nnodes:\n  ask: {op: call, agent: s}\n",
    )
    spec = load_graph(graph)
    assert spec.agents["s"].prompt == "Solve: {{ question }}" and spec.agents["s"].name == "s"


def test_json_schema_validates_shipped_form(tmp_path: Path) -> None:
    schema = graph_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    data = yaml.safe_load(DEBATE)
    jsonschema.validate(data, schema)
    data["nodes"]["vote"]["form"] = "debate"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_json_schema_descriptions_read_as_user_documentation() -> None:
    """What an editor shows on hover: no reference to our method specs' sections, Markdown code, whole lines."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "description" and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(graph_json_schema())
    assert len(found) > 50
    for text in found:
        assert "§" not in text and ".md" not in text, text
        assert "``" not in text.replace("```python", ""), text
        assert all("\n" not in paragraph for paragraph in text.split("\n\n")), text
    assert "Writers and judges in alternating layers; a judge's kind is its card's `role`." in found


# --- malformed specs: each with the message (file, line, field, what was expected) asserted ----------------

BAD_SPECS: list[tuple[str, str, str]] = [
    # (description, edit applied to DEBATE as (old, new) joined by '=>', expected message fragment)
    (
        "unknown agent",
        "agents: [debater, debater, debater]=>agents: [debater, debatr]",
        "g.yaml:17: nodes.debate.agents[1]: unknown agent 'debatr'; known agents: debater",
    ),
    (
        "unknown operator",
        "op: vote=>op: votes",
        "g.yaml:21: nodes.vote.op: unknown operator 'votes'; expected one of alu, branch, call",
    ),
    ("wrong type", "rounds: 3=>rounds: three", "g.yaml:18: nodes.debate.rounds: Input should be a valid integer"),
    (
        "out of range",
        "rounds: 3=>rounds: 0",
        "g.yaml:18: nodes.debate.rounds: Input should be greater than or equal to 1",
    ),
    (
        "undefined template variable",
        "{{ question }}=>{{ questoin }}",
        "g.yaml:8: agents.debater.prompt: template uses undefined variable 'questoin'",
    ),
    (
        "unknown node in template",
        "{{ question }}=>{{ question }} {{ nodes.debait }}",
        "g.yaml:8: agents.debater.prompt: template reads nodes.debait, but the graph has no node 'debait'; "
        "did you mean 'debate'? nodes: debate, vote",
    ),
    (
        "output key the node's operator never gives",
        "{{ question }}=>{{ question }} {{ nodes.debate.answer }}",
        "g.yaml:8: agents.debater.prompt: template reads nodes.debate.answer, but node 'debate' (op 'rounds') "
        "outputs active, agents, answers, done, history, max_rounds, network, round, stop, stop_held, stopped",
    ),
    (
        "template syntax",
        "{{ question }}=>{{ question }",
        "g.yaml:8: agents.debater.prompt: template syntax error: unexpected '}'",
    ),
    (
        "cycle",
        "  - [debate, vote]=>  - [debate, vote]\n  - [vote, debate]",
        "g.yaml:25: edges[1]: edges form a cycle (debate -> vote -> debate)",
    ),
    ("unknown node in from", "from: debate=>from: debait", "g.yaml:22: nodes.vote.from: unknown node 'debait'"),
    ("unknown node in edge", "  - [debate, vote]=>  - [debate, voter]", "g.yaml:24: edges[0][1]: unknown node 'voter'"),
    ("unknown parser", "parser: boxed_math=>parser: boxd", "g.yaml:12: agents.debater.parser: unknown parser 'boxd'"),
    (
        "bad parser param",
        "parser: boxed_math=>parser: {name: score, min: abc}",
        "agents.debater.parser: parser 'score': parameter 'min'",
    ),
    ("unknown node field", "from: debate=>from: debate\n    weight: 2", "g.yaml:23: nodes.vote.weight: unknown field"),
    ("missing required", "    rounds: 3\n=>", "g.yaml:15: nodes.debate.rounds: required field is missing"),
    (
        "unknown stop policy",
        "stop: {consensus: {fraction: 0.66}}=>stop: {consensuss: {}}",
        "nodes.debate.stop: unknown stop policy 'consensuss'; expected one of any, all, consensus",
    ),
    (
        "bad model reference",
        "    parser: boxed_math=>    parser: boxed_math\n    model: 'openai:'",
        "agents.debater.model: model reference 'openai:' names no model",
    ),
    (
        "sampling out of range",
        "temperature: 0.7=>temperature: 7",
        "g.yaml:13: agents.debater.sampling.temperature: Input should be less than or equal to 2",
    ),
    (
        "two final nodes",
        "  - [debate, vote]=>  []",
        "output: the graph has 2 final nodes (debate, vote); name one with 'output'",
    ),
    (
        "reserved node name",
        "  vote:\n    op: vote=>  END:\n    op: vote",
        "nodes.END: node names are identifiers, not START/END",
    ),
]


@pytest.mark.parametrize(("what", "edit", "expected"), BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_malformed_spec_is_reported_with_file_line_and_field(
    tmp_path: Path, what: str, edit: str, expected: str
) -> None:
    old, new = edit.split("=>")
    assert old in DEBATE, f"test edit for {what!r} does not apply"
    text = DEBATE.replace(old, new, 1)
    if what == "reserved node name":
        text = text.replace("[debate, vote]", "[debate, END]")
    with pytest.raises(SpecError) as info:
        load_graph(write(tmp_path, text))
    assert expected in str(info.value), str(info.value)
    assert info.value.context["file"].endswith("g.yaml")


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    text = DEBATE.replace("rounds: 3", "rounds: zero").replace("op: vote", "op: votes")
    with pytest.raises(SpecError) as info:
        load_graph(write(tmp_path, text))
    message = str(info.value)
    assert message.startswith("2 problems in")
    assert "nodes.debate.rounds" in message and "nodes.vote.op" in message
    assert info.value.context["line"] == 18 and info.value.context["field"] == "nodes.debate.rounds"


def test_problems_inside_composed_stop_policies_name_their_place_in_the_file(tmp_path: Path) -> None:
    """Each member of an ``any``/``all`` is reported at its own line, under the keys written in the file (a
    member at ``stop.any[1]``, a setting at ``stop.any[0].consensus.fraction``), not pydantic's inner path."""
    stop = (
        "stop:\n"
        "      any:\n"
        "        - {consensus: {fraction: 2}}\n"
        "        - {score_at_least: 70}\n"
        "        - all: [{max_rounds: x}, {budget: {calls: -1}}]"
    )
    message = _spec_error(tmp_path, DEBATE.replace("stop: {consensus: {fraction: 0.66}}", stop))
    assert message.startswith("4 problems in")
    for expected in (
        "g.yaml:21: nodes.debate.stop.any[0].consensus.fraction: Input should be less than or equal to 1 (got 2)",
        "g.yaml:22: nodes.debate.stop.any[1]: unknown stop policy 'score_at_least'; expected one of any, all",
        "g.yaml:23: nodes.debate.stop.any[2].all[0].max_rounds: Input should be a valid integer",
        "g.yaml:23: nodes.debate.stop.any[2].all[1].budget.calls: must be a positive whole number (got -1)",
    ):
        assert expected in message, message


def test_an_input_named_like_a_stop_policy_keeps_its_name_in_problem_paths(tmp_path: Path) -> None:
    text = DEBATE.replace("question: {type: string}", "consensus: {type: strng}").replace(
        "{{ question }}", "{{ consensus }}"
    )
    message = _spec_error(tmp_path, text)
    assert "g.yaml:3: inputs.consensus.type: Input should be 'string'" in message, message


def _spec_error(tmp_path: Path, text: str) -> str:
    """The message loading ``text`` fails with."""
    with pytest.raises(SpecError) as info:
        load_graph(write(tmp_path, text))
    return str(info.value)


def test_unknown_names_are_reported_with_type_problems_in_one_attempt(tmp_path: Path) -> None:
    # a wrong type in one node, an unknown agent in the same node's team, an unknown source and an edge to nowhere
    text = (
        DEBATE.replace("rounds: 3", "rounds: three")
        .replace("agents: [debater, debater, debater]", "agents: [debater, debatr]")
        .replace("from: debate", "from: debait")
        .replace("  - [debate, vote]", "  - [debate, voter]")
    )
    message = _spec_error(tmp_path, text)
    assert message.startswith("4 problems in"), message
    assert "nodes.debate.rounds: Input should be a valid integer" in message
    assert "nodes.debate.agents[1]: unknown agent 'debatr'; known agents: debater" in message
    assert "nodes.vote.from: unknown node 'debait'" in message
    assert "edges[0][1]: unknown node 'voter'" in message


def test_a_bad_input_type_is_reported_with_a_bad_node(tmp_path: Path) -> None:
    """The top-level fields (inputs, stop, unknown keys) were checked only once every card and node was valid,
    so a file with both kinds of mistake showed them one attempt at a time."""
    text = (
        DEBATE.replace("rounds: 3", "rounds: three")
        .replace("question: {type: string}", "question: {type: text}")
        .replace("name: debate", "name: debate\nouptut: vote")
    )
    message = _spec_error(tmp_path, text)
    assert message.startswith("3 problems in"), message
    assert "nodes.debate.rounds: Input should be a valid integer" in message
    assert "inputs.question.type: Input should be 'string'" in message
    assert "ouptut: unknown field" in message


def test_a_malformed_team_still_has_its_other_names_checked_in_place(tmp_path: Path) -> None:
    # a number among the names: the other names are still checked, at their own positions in the file
    text = DEBATE.replace("agents: [debater, debater, debater]", "agents: [debater, 7, debatr]")
    message = _spec_error(tmp_path, text)
    assert message.startswith("2 problems in"), message
    assert "nodes.debate.agents[1]: Input should be a valid string" in message
    assert "nodes.debate.agents[2]: unknown agent 'debatr'; known agents: debater" in message
    assert "unknown agent 7" not in message and "unknown agent None" not in message


def test_a_node_whose_names_cannot_be_read_is_checked_once_its_types_are_fixed(tmp_path: Path) -> None:
    # the team is not a list at all: which agents it means is unknown until it is fixed
    text = DEBATE.replace("agents: [debater, debater, debater]", "agents: {first: debatr}")
    message = _spec_error(tmp_path, text)
    assert "nodes.debate.agents: Input should be a valid list" in message
    assert "unknown agent" not in message
    with pytest.raises(SpecError, match=r"nodes\.debate\.agents\[0\]: unknown agent 'debatr'"):
        load_graph(write(tmp_path, text.replace("{first: debatr}", "[debatr]")))


def test_an_unknown_agent_is_reported_with_a_bad_card_elsewhere(tmp_path: Path) -> None:
    text = DEBATE.replace("temperature: 0.7", "temperature: 7").replace(
        "agents: [debater, debater, debater]", "agents: [debater, debatr]"
    )
    message = _spec_error(tmp_path, text)
    assert message.startswith("2 problems in"), message
    assert "agents.debater.sampling.temperature" in message
    assert "nodes.debate.agents[1]: unknown agent 'debatr'; known agents: debater" in message


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        SpecError, match=r"g.yaml:3: not valid YAML: expected ',' or ']'.*\(while parsing a flow sequence at line 2\)"
    ):
        load_graph(write(tmp_path, "name: x\nnodes: [unclosed\n"))
    with pytest.raises(SpecError, match=r"nope\.yaml: file not found$"):
        load_graph(tmp_path / "nope.yaml")
    # a name rather than a file: where shipped graphs are found by name
    with pytest.raises(SpecError, match=r"debate: file not found \(.*agentmesh\.resolve_graph\('debate'\)\)"):
        load_graph("debate")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_graph(write(tmp_path, "- just\n- a list\n", "list.yaml"))


def test_agent_card_errors_name_the_card_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("prompt: hi\nparser: nosuch\n")
    with pytest.raises(SpecError, match=r"a.yaml:2: parser: unknown parser 'nosuch'"):
        load_agent(tmp_path / "a.yaml")
    graph = write(tmp_path, "name: one\nagents:\n  s: a.yaml\nnodes:\n  ask: {op: call, agent: s}\n")
    with pytest.raises(SpecError, match=r"g.yaml:3: agents.s: in card a.yaml: .*unknown parser 'nosuch'"):
        load_graph(graph)


# --- prompt templates: strict, sandboxed, and rendered with Jinja's globals ------------------------------------


def test_template_renders_with_jinja_globals_and_strict_undefined() -> None:
    import jinja2

    from agentmesh.spec.templates import render

    source = (
        "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}{{ q }}={{ ns.n }}"
    )
    assert render(source, {"q": "sum"}) == "sum=3"
    with pytest.raises(jinja2.UndefinedError, match="'missing' is undefined"):
        render("{{ missing }}", {})


def test_template_sandbox_still_refuses_python_internals() -> None:
    from jinja2.exceptions import SecurityError

    from agentmesh.spec.templates import render

    with pytest.raises(SecurityError, match="__class__"):
        render("{{ ''.__class__.__mro__ }}", {})


def test_template_globals_are_the_environments_in_one_flat_dict() -> None:
    """Each compiled template holds a flat copy of the environment's globals (a ChainMap is copied per render)."""
    from agentmesh.spec.templates import _compiled, _env

    template = _compiled("{{ x }}-flat-globals")
    assert type(template.globals) is dict
    assert template.globals == dict(_env.globals)
    assert template.globals is not _env.globals  # a template's globals never write through to the environment's


def test_template_dict_attributes_render_as_jinjas_sandbox_renders_them() -> None:
    """``p.text`` on a dict takes a shortcut to the key; every case renders as Jinja's own sandbox renders it."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    from agentmesh.spec.templates import render

    reference = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    data = {"p": {"text": "hi", "items": "shadowed key", "__class__": "a key", "n": 3}, "q": {"k": None}}
    for source in (
        "{{ p.text }} {{ p.n + 1 }}",  # keys
        "{{ p.items() | list | length }}",  # a dict method wins over a key of the same name, as in Jinja
        "{{ p['items'] }}",  # the key, by subscription
        "{{ q.k is none }}",  # a key holding None
        "{{ p.missing is defined }}",  # a missing key is undefined, not an error, until it is used
        "{{ p.get('text') }}",
    ):
        assert render(source, dict(data)) == reference.from_string(source).render(**data), source
    for source in ("{{ p.missing }}", "{{ p.__class__.__mro__ }}"):
        with pytest.raises(jinja2.UndefinedError if "missing" in source else jinja2.exceptions.SecurityError):
            reference.from_string(source).render(**data)  # what Jinja does ...
        with pytest.raises(jinja2.UndefinedError if "missing" in source else jinja2.exceptions.SecurityError):
            render(source, dict(data))  # ... and the same here


def test_node_references_are_what_a_template_reads_of_nodes() -> None:
    source = (
        "{{ nodes.solve.answer }} {{ nodes['vote']['text'] }} {{ nodes.plan }} {{ nodes.check.get('x') }}"
        "{% for a in nodes.team.answers %}{{ a.text }}{% endfor %}{% for n, out in nodes.items() %}{{ n }}{% endfor %}"
        "{{ nodes[name].answer }}"
    )
    assert sorted(node_references(source), key=str) == sorted(
        [("solve", "answer"), ("vote", "text"), ("plan", None), ("check", None), ("team", "answers")], key=str
    )
    assert node_references("{% set nodes = inputs %}{{ nodes.anything.at_all }}") == []  # rebound: not the graph's


def _graph_reading(template: str, condition: str = "true") -> dict[str, Any]:
    return {
        "name": "g",
        "inputs": {"q": {}},
        "agents": {
            "solver": {"prompt": "{{ q }}"},
            "critic": {"prompt": template},
        },
        "nodes": {
            "solve": {"op": "team", "agents": ["solver", "solver"]},
            "vote": {"op": "vote", "from": "solve"},
            "tally": {"op": "function", "function": "anything"},
            "gate": {"op": "branch", "condition": condition, "then": "check"},
            "check": {"op": "call", "agent": "critic"},
        },
        "edges": [["solve", "vote"], ["vote", "tally"], ["tally", "gate"]],
    }


@pytest.mark.parametrize(
    "template",
    [
        "{{ nodes.vote.answer }} {{ nodes.vote.votes }} {{ nodes.solve.answers | length }}",
        "{{ nodes.solve.stopped }}",  # any node may say why a budget stopped it
        "{{ nodes.tally.whatever_the_function_returns }}",  # a function's output is not known before the run
    ],
)
def test_templates_reading_declared_outputs_load(template: str) -> None:
    assert graph_from_data(_graph_reading(template)).nodes["check"].op == "call"


def test_a_branch_condition_reading_an_unknown_node_is_reported() -> None:
    with pytest.raises(SpecError, match=r"nodes\.gate\.condition: template reads nodes\.votes, but the graph has no"):
        graph_from_data(_graph_reading("{{ q }}", condition="nodes.votes.answer == 'A'"))
    with pytest.raises(SpecError, match=r"reads nodes\.solve\.answer, but node 'solve' \(op 'team'\) outputs answers"):
        graph_from_data(_graph_reading("{{ q }}", condition="nodes.solve.answer == 'A'"))


def test_a_branch_condition_reading_an_undefined_variable_is_reported_at_load() -> None:
    """A misspelt input in a condition failed the run at the branch, after every call before it."""
    with pytest.raises(
        SpecError,
        match=r"nodes\.gate\.condition: condition uses undefined variable 'qq'; available: "
        r"inputs, nodes, q",
    ):
        graph_from_data(_graph_reading("{{ q }}", condition="qq and nodes.vote.answer == 'A'"))
    # inputs, ``inputs``, ``nodes``, Jinja's constants and a template's own names load
    for condition in ("q == 'x' and inputs.q", "none is none and true", "{% set k = 1 %}{{ k }}"):
        assert graph_from_data(_graph_reading("{{ q }}", condition=condition)).nodes["gate"].op == "branch"


def test_a_branch_condition_that_does_not_parse_is_reported_at_load() -> None:
    with pytest.raises(SpecError, match=r"nodes\.gate\.condition: condition is not a valid Jinja2 expression"):
        graph_from_data(_graph_reading("{{ q }}", condition="nodes.vote.answer =="))


def test_python_nodes_take_their_parameters_flat_or_apart() -> None:
    flat = NodeSpec(op="call", agent="solver")  # type: ignore[call-arg]  # the YAML form as keywords
    assert NodeSpec(op="call", params={"agent": "solver"}) == flat  # type: ignore[arg-type]
    assert NodeSpec(op="call", params=CallParams(agent="solver")) == flat
    with pytest.raises(ValidationError, match="params of a 'call' node must be CallParams, not VoteParams"):
        NodeSpec(op="call", params=VoteParams(source="x"))  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="params of a 'call' node: expected a mapping or CallParams, got list"):
        NodeSpec(op="call", params=["solver"])  # type: ignore[arg-type]


def test_a_graph_ending_in_a_loop_ends_with_the_loop_node() -> None:
    spec = graph_from_data(
        {
            "name": "refine",
            "inputs": {"q": {}},
            "agents": {"solver": {"prompt": "{{ q }}"}, "critic": {"prompt": "{{ nodes.solve.text }}"}},
            "nodes": {
                "iterate": {"op": "loop", "body": ["solve", "critique"], "until": {"max_rounds": 2}},
                "solve": {"op": "call", "agent": "solver"},
                "critique": {"op": "call", "agent": "critic"},
            },
        }
    )
    assert spec.final_nodes() == ["iterate"] and spec.output_node() == "iterate"
    data = spec.model_dump(mode="json", exclude_defaults=True)
    data["nodes"]["report"] = {"op": "call", "agent": "solver"}
    followed = graph_from_data({**data, "edges": [["iterate", "report"]]})
    assert followed.final_nodes() == ["report"]


def test_a_branch_routing_back_to_an_earlier_node_is_a_cycle() -> None:
    data: dict[str, Any] = {
        "name": "g",
        "inputs": {"q": {}},
        "agents": {"a": {"prompt": "{{ q }}"}},
        "nodes": {
            "first": {"op": "call", "agent": "a"},
            "gate": {"op": "branch", "condition": "nodes.first.answer == 'yes'", "then": "done", "else": "first"},
            "done": {"op": "vote", "from": "first"},
        },
        "edges": [["first", "gate"]],
    }
    with pytest.raises(SpecError) as info:
        graph_from_data(data)
    expected = "nodes.gate.else: branch 'gate' routes back to 'first', which runs before it (first -> gate -> first)"
    assert expected in str(info.value)
    data["nodes"]["gate"]["else"] = "done"
    assert graph_from_data(data).final_nodes() == ["done"]


def test_a_key_written_twice_is_an_error_not_a_silent_loss(tmp_path: Path) -> None:
    text = DEBATE.replace("  vote:\n    op: vote", "  debate:\n    op: vote")
    assert text.count("  debate:\n") == 2
    with pytest.raises(SpecError) as info:
        load_graph(write(tmp_path, text))
    assert "g.yaml:20: nodes: key 'debate' again (first at line 15); YAML keeps only the last" in str(info.value)


def test_a_strict_consensus_of_every_agent_is_refused(tmp_path: Path) -> None:
    """Strict consensus is "more than fraction x n agree": with fraction 1 it never held, so a loop or debate with
    ``{consensus: {fraction: 1}}`` silently ran to its last round."""
    message = _spec_error(
        tmp_path, DEBATE.replace("stop: {consensus: {fraction: 0.66}}", "stop: {consensus: {fraction: 1}}")
    )
    assert "nodes.debate.stop.consensus: strict consensus" in message and "strict: false" in message, message
    every = Consensus(fraction=1, strict=False)
    assert str(every) == "consensus (all active agents agree)"
    assert str(Consensus()) == "consensus (> 0.667 of active agents agree)"


def test_a_score_threshold_on_a_node_the_graph_does_not_have_is_reported(tmp_path: Path) -> None:
    """The policy fell back to the scores of the node it is attached to: a misspelt node silently checked
    another node's scores."""
    graph = _graph_reading("{{ q }}")
    bad_stop = {**graph, "stop": {"any": [{"max_rounds": 3}, {"score_threshold": {"node": "scroes", "min": 5}}]}}
    with pytest.raises(SpecError, match=r"stop: score_threshold reads node 'scroes', which the graph does not have"):
        graph_from_data(bad_stop)
    nodes = {
        **graph["nodes"],
        "again": {"op": "loop", "body": ["check"], "until": {"score_threshold": {"node": "x", "min": 1}}},
    }
    with pytest.raises(SpecError, match=r"nodes\.again\.until: score_threshold reads node 'x'"):
        graph_from_data({**graph, "nodes": nodes})
    good = {**graph, "stop": {"score_threshold": {"node": "tally", "min": 5}}}  # (a function may output scores)
    assert graph_from_data(good).stop is not None
    unscored = {**graph, "stop": {"score_threshold": {"node": "vote", "min": 5}}}
    with pytest.raises(SpecError, match=r"stop: score_threshold reads the scores of node 'vote', and a 'vote' node"):
        graph_from_data(unscored)


def test_a_graph_level_policy_that_could_never_hold_is_reported() -> None:
    """The README says such a policy is an error when the spec loads; at the graph's ``stop`` it loaded, and the run
    went on to the end with the policy never checked true."""
    one = {
        "name": "g",
        "inputs": {"q": {}},
        "agents": {"solver": {"prompt": "{{ q }}"}},
        "nodes": {"solve": {"op": "call", "agent": "solver"}, "vote": {"op": "vote", "from": "solve"}},
        "edges": [["solve", "vote"]],
    }
    with pytest.raises(SpecError, match=r"stop: consensus needs 2 agents .* no node of the graph gives more than 1"):
        graph_from_data({**one, "stop": {"any": [{"max_rounds": 2}, {"consensus": {}}]}})
    with pytest.raises(SpecError, match=r"stop: score_threshold without 'node' .* no node of the graph has scores"):
        graph_from_data({**one, "stop": {"score_threshold": {"min": 0.5}}})
    team = {**one, "nodes": {**one["nodes"], "solve": {"op": "team", "agents": ["solver", "solver"]}}}
    assert graph_from_data({**team, "stop": {"consensus": {}}}).stop is not None


@pytest.mark.parametrize(
    ("edge", "expected"),
    [
        (
            ["ask", "critique"],
            r"edges\[0\]\[1\]: node 'critique' is in the body of loop 'iterate', which runs it: an "
            r"edge into it would also run it outside the loop; connect \[ask, iterate\]",
        ),
        (
            ["revise", "ask"],
            r"edges\[0\]\[0\]: node 'revise' is in the body of loop 'iterate', which runs it: an edge "
            r"out of it would run 'ask' after every iteration; connect \[iterate, ask\]",
        ),
    ],
)
def test_an_edge_into_or_out_of_a_loop_body_is_reported(edge: list[str], expected: str) -> None:
    """The loop runs its body; such an edge ran a body node outside the loop too (an extra call per run), or its
    target after every iteration."""
    data = {
        "name": "refine",
        "agents": {"solver": {"prompt": "x"}},
        "nodes": {
            "ask": {"op": "call", "agent": "solver"},
            "iterate": {"op": "loop", "body": ["critique", "revise"], "until": {"max_rounds": 2}},
            "critique": {"op": "call", "agent": "solver"},
            "revise": {"op": "call", "agent": "solver"},
        },
        "edges": [edge],
    }
    with pytest.raises(SpecError, match=expected):
        graph_from_data(data)
    data["nodes"]["gate"] = {"op": "branch", "condition": "true", "then": "revise"}
    data["edges"] = []
    with pytest.raises(SpecError, match=r"nodes\.gate\.then: node 'revise' is in the body of loop 'iterate'"):
        graph_from_data(data)


@pytest.mark.parametrize(
    ("kind", "default"), [("integer", "three"), ("boolean", "no"), ("number", True), ("list", "a,b"), ("string", 3)]
)
def test_an_input_default_of_another_type_is_reported(kind: str, default: Any) -> None:
    """A run took the default as written: "no" for a boolean was true in every {% if %}."""
    data = {
        "name": "g",
        "inputs": {"x": {"type": kind, "default": default}},
        "nodes": {"f": {"op": "function", "function": "f"}},
    }
    with pytest.raises(SpecError, match=rf"inputs\.x: default {default!r} is not of the input's type {kind}"):
        graph_from_data(data)


def test_input_defaults_of_their_type_load() -> None:
    inputs = {
        "n": {"type": "integer", "default": 3},
        "x": {"type": "number", "default": 3},
        "b": {"type": "boolean", "default": False},
    }
    spec = graph_from_data({"name": "g", "inputs": inputs, "nodes": {"f": {"op": "function", "function": "f"}}})
    assert spec.inputs["b"].default is False and spec.inputs["x"].default == 3


def test_an_agent_card_given_as_a_graph_says_so(tmp_path: Path) -> None:
    card = tmp_path / "critic.yaml"
    card.write_text("name: critic\nprompt: 'Check {{ q }}'\nparser: boxed_math\n")
    with pytest.raises(SpecError, match=r"critic\.yaml:1: this is an agent card \(it has a prompt\), not a graph spec"):
        load_graph(card)


def test_a_score_threshold_on_a_node_without_scores_is_reported() -> None:
    """Without ``node`` it reads the scores of the output it is checked on: a debate's rounds have none, so the
    policy silently never held."""
    graph = _graph_reading("{{ q }}")
    rounds = {"op": "rounds", "agents": ["solver"], "rounds": 3, "stop": {"score_threshold": {"min": 5}}}
    with pytest.raises(
        SpecError,
        match=r"nodes\.solve\.stop: score_threshold without 'node' reads the scores of node "
        r"'solve', and a 'rounds' node has none",
    ):
        graph_from_data({**graph, "nodes": {**graph["nodes"], "solve": rounds}})
    scored = {"op": "loop", "body": ["check"], "until": {"score_threshold": {"min": 5}}}
    with pytest.raises(SpecError, match=r"reads the scores of node 'check', and a 'call' node has none"):
        graph_from_data({**graph, "nodes": {**graph["nodes"], "again": scored}, "edges": graph["edges"][:2]})
    named = {**rounds, "stop": {"score_threshold": {"min": 5, "node": "tally"}}}  # (a function may output scores)
    assert graph_from_data({**graph, "nodes": {**graph["nodes"], "solve": named}}).nodes["solve"].op == "rounds"


def test_a_consensus_over_fewer_answers_than_it_needs_is_reported() -> None:
    """A loop whose body ends in one ``call`` gives one answer, and consensus needs two (min_agents): it never
    held, and the loop ran to its last iteration without a word."""
    graph = _graph_reading("{{ q }}")
    loop = {"op": "loop", "body": ["check"], "until": {"any": [{"consensus": {}}, {"max_rounds": 3}]}}
    expected = r"nodes\.again\.until: consensus needs 2 agents \(min_agents\) and node 'check' gives 1 answer"
    with pytest.raises(SpecError, match=expected):
        graph_from_data({**graph, "nodes": {**graph["nodes"], "again": loop}})
    team = {"op": "rounds", "agents": ["solver", "solver"], "rounds": 2, "stop": {"consensus": {"min_agents": 3}}}
    with pytest.raises(SpecError, match=r"consensus needs 3 agents \(min_agents\) and node 'solve' gives 2 answers"):
        graph_from_data({**graph, "nodes": {**graph["nodes"], "solve": team}})
