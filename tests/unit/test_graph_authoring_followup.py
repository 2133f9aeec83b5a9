"""Defects a QA pass on graph authoring left: the numbers ``agentmesh run`` shows against the store's, stop reasons
that read as if a node's stop policy ended a run that simply completed, and spec problems reported only on a
second ``graph validate``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import SpecError
from agentmesh.models import ScriptedModel
from agentmesh.models.messages import CallContext, ModelRequest
from agentmesh.parsers import Parsed, register_parser
from agentmesh.runtime import run
from agentmesh.runtime.context import CALL_KINDS
from agentmesh.spec import graph_from_data, load_graph
from agentmesh.store import Store
from tests._cli import run_cli


@register_parser("test_qa_followup_raises")
def _raises(text: str) -> Parsed:
    raise KeyError("no such field")


@register_parser("test_qa_followup_wrong_type")
def _wrong_type(text: str) -> Parsed:
    return 42  # type: ignore[return-value]


@pytest.mark.parametrize("parser", ["test_qa_followup_raises", "test_qa_followup_wrong_type"])
def test_a_run_failed_by_its_first_calls_parser_shows_the_call_the_store_holds(
    parser: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary line said "0 calls" (the call's event was never sent, its parser failing first) while the store
    and the next line ("its 1 recorded calls") said 1; the row said "no answer" with no reply."""
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "name: pg\ninputs: {question: {type: string}}\n"
        f"agents:\n  a: {{prompt: '{{{{ question }}}}', parser: {parser}}}\n"
        "nodes:\n  c: {op: call, agent: a}\n"
    )
    (tmp_path / "s.yaml").write_text('default: "42"\n')
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("COLUMNS", "200")
    args = ["run", str(graph), "-i", "question=hi", "-m", f"scripted:{tmp_path / 's.yaml'}", "--db", db]
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code != 0 and f"parser '{parser}' failed on its reply" in err
    with Store(db) as store:
        (record,) = store.list_runs()
        stored = sum(1 for e in store.events(record.id) if e.kind in CALL_KINDS)
    assert stored == 1
    assert re.search(r" · 1 call · ", out), out
    assert " 0 calls" not in out
    assert "its 1 recorded call served" in " ".join(err.split())
    assert f"parser '{parser}' failed" in " ".join(out.split())  # the row says what happened to the call


def _layers(rounds: int, activation: str) -> dict[str, Any]:
    return {
        "name": "moa",
        "inputs": {"question": {"type": "string"}},
        "agents": {"s": {"prompt": "{{ question }}", "parser": "boxed_math"}},
        "nodes": {
            "layers": {
                "op": "rounds",
                "agents": ["s", "s", "s"],
                "rounds": rounds,
                "activation": activation,
                "stop": {"consensus": {}},
            },
            "aggregate": {"op": "call", "agent": "s"},
        },
        "edges": [["layers", "aggregate"]],
    }


def _agree_in_round_2(request: ModelRequest, context: CallContext) -> str:
    return f"\\boxed{{{context.call_index or 0}}}" if context.round == 1 else "\\boxed{3}"


@pytest.mark.parametrize("activation", ["parallel", "sequential"])
def test_a_stop_policy_that_held_only_at_a_nodes_last_round_is_not_the_runs_stop_reason(
    activation: str, tmp_path: Path
) -> None:
    """The run read "consensus (...) at round 2 in node 'layers'" when 'layers' has 2 rounds: it ran every round and
    every call it would have without the policy, and the aggregate after it ran too; the consensus ended nothing."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run(
        graph_from_data(_layers(2, activation)),
        {"question": "q"},
        model=ScriptedModel(respond=_agree_in_round_2),
        store=db,
    )
    assert result.calls == 7
    assert result.stop_reason == (
        "completed: every node ran; node 'layers': its stop policy, consensus (> 0.667 of active agents agree), held "
        "only at round 2, its last: it ran all 2 rounds"
    )
    # where the policy did end the node early (a third round not run), the reason stays what it was
    early = run(
        graph_from_data(_layers(3, activation)),
        {"question": "q"},
        model=ScriptedModel(respond=_agree_in_round_2),
        store=db,
    )
    assert early.calls == 7
    assert early.stop_reason == "consensus (> 0.667 of active agents agree) at round 2 in node 'layers'"


def test_a_graph_file_with_type_errors_reports_its_names_and_branch_conditions_in_the_same_attempt(
    tmp_path: Path,
) -> None:
    """A type error (``bogus: 3``) hid the bad graph name, the bad node name and both conditions' problems; fixed,
    the next attempt showed the names, and only once those were fixed too the conditions: three attempts."""
    file = tmp_path / "g.yaml"
    file.write_text(
        "name: misc graph\ninputs: {question: {type: string}}\n"
        "agents:\n  s: {prompt: '{{ question }}', parser: boxed_math}\n"
        "nodes:\n  a: {op: team, agents: [s, s], bogus: 3}\n  b.c: {op: call, agent: s}\n"
        "  br: {op: branch, condition: 'nodes.a.answer == ', then: b.c, else: d}\n"
        "  br2: {op: branch, condition: \"questin == 'x'\", then: b.c, else: d}\n"
        "  d: {op: call, agent: s}\n"
        "edges:\n  - [a, br]\n  - [a, br2]\n"
    )
    expected = [
        ":6: nodes.a.bogus: unknown field",
        ":1: name: expected letters, digits, '_' or '-'",
        ":7: nodes.b.c: node names are identifiers",
        ":8: nodes.br.condition: condition is not a valid Jinja2 expression or template: template syntax error",
        ":9: nodes.br2.condition: condition uses undefined variable 'questin'; available: inputs, nodes, question",
    ]
    with pytest.raises(SpecError) as caught:
        load_graph(file)
    said = "\n".join(caught.value.context["problems"])
    for line in expected:
        assert line in said, said
    # the type error fixed: the same problems, each once, and no other
    file.write_text(file.read_text().replace(", bogus: 3", ""))
    with pytest.raises(SpecError) as caught:
        load_graph(file)
    problems = caught.value.context["problems"]
    for line in expected[1:]:
        assert sum(line in p for p in problems) == 1, problems
    assert len(problems) == 4, problems


def test_a_bad_graph_name_does_not_hide_the_checks_across_nodes() -> None:
    """A graph named 'misc graph' (or a node 'b.c') made the spec "unresolved": its prompts' undefined variables
    were reported only after the name was fixed."""
    data = {
        "name": "misc graph",
        "inputs": {"question": {"type": "string"}},
        "agents": {"s": {"prompt": "{{ questin }}", "parser": "boxed_math"}},
        "nodes": {"a": {"op": "call", "agent": "s"}},
    }
    with pytest.raises(SpecError) as caught:
        graph_from_data(data)
    said = "\n".join(caught.value.context["problems"])
    assert "name: expected letters, digits" in said and "template uses undefined variable 'questin'" in said, said
