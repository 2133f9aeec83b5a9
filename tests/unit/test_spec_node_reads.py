"""A template reading ``nodes.<x>`` where node ``x`` has no output yet is refused when the spec loads.

A prompt sees the outputs of the nodes that finished before its node ran; one reading a node with no path of edges
to it, its own output or a node later in the same loop body rendered ``nodes.x`` as undefined and failed the run
there, after the model calls of every node before it. A read the template guards loads, and so does one in a
block guarded by a node that may be missing there (a card shared by two nodes).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import SpecError
from agentmesh.models import ScriptedModel
from agentmesh.runtime import run
from agentmesh.spec import graph_from_data, load_graph
from agentmesh.spec.loader import stored_graph
from agentmesh.spec.templates import guarded_nodes, node_reads

GUARD = "guard the read ({% if nodes.review is defined %}, nodes.review | default(...))"


def _graph(writer: str, edges: list[list[str]] | None = None, **nodes: Any) -> dict[str, Any]:
    return {
        "name": "g",
        "agents": {"writer": {"prompt": writer}, "critic": {"prompt": "Review: {{ nodes.draft.text }}"}},
        "nodes": {"draft": {"op": "call", "agent": "writer"}, "review": {"op": "call", "agent": "critic"}, **nodes},
        "edges": [["draft", "review"]] if edges is None else edges,
    }


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        graph_from_data(data)
    return str(info.value)


def test_a_read_of_a_node_that_runs_later_is_refused() -> None:
    """(The graph the runtime's own hint was written for: it now fails before the run is stored.)"""
    message = _error(_graph("Improve on: {{ nodes.review.text }}"))
    assert message == (
        "<spec>: agents.writer.prompt: template reads nodes.review, which has no output yet when node 'draft' "
        "renders it (agent 'writer'): node 'review' runs after 'draft' (a path of edges leads from 'draft' to it); "
        f"read it in a node after 'review', or {GUARD}"
    )


def test_a_read_of_a_node_with_no_path_to_the_reader_is_refused() -> None:
    data = {**_graph("{{ nodes.review.text }}", edges=[]), "output": "review"}
    data["agents"]["critic"]["prompt"] = "x"
    message = _error(data)
    assert message == (
        "<spec>: agents.writer.prompt: template reads nodes.review, which has no output yet when node 'draft' "
        "renders it (agent 'writer'): node 'review' does not run before it (no path of edges from it); add an edge "
        f"[review, draft], or {GUARD}"
    )


def test_a_node_reading_its_own_output_is_refused() -> None:
    data = _graph("x")
    data["agents"]["critic"]["prompt"] = "{{ nodes.draft.text }} {{ nodes.review.text }}"
    assert _error(data).endswith(
        "agents.critic.prompt: template reads nodes.review, which has no output yet when node 'review' renders it "
        "(agent 'critic'): it is the node's own output, which it has only once it has finished; read another "
        f"node's, or {GUARD}"
    )


def test_the_file_the_card_and_the_line_of_the_template_are_named(tmp_path: Path) -> None:
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "writer.yaml").write_text("prompt: |\n  Question.\n\n  Improve on: {{ nodes.review.text }}\n")
    graph = textwrap.dedent(
        """\
        name: g
        agents:
          writer: cards/writer.yaml
          critic: {prompt: "{{ nodes.draft.text }}"}
        nodes:
          draft: {op: call, agent: writer}
          review: {op: call, agent: critic}
        edges: [[draft, review]]
        """
    )
    (tmp_path / "g.yaml").write_text(graph)
    with pytest.raises(SpecError) as info:
        load_graph(tmp_path / "g.yaml")
    message = str(info.value)
    assert message.startswith(
        f"{tmp_path / 'g.yaml'}:3: agents.writer.prompt: template reads nodes.review, which has no output yet when "
        "node 'draft' renders it (agent 'writer', line 3 of the template): node 'review' runs after 'draft'"
    ), message
    assert message.endswith("(in card file cards/writer.yaml:1)"), message  # (its prompt's key)
    assert info.value.context["field"] == "agents.writer.prompt" and info.value.context["line"] == 3


@pytest.mark.parametrize(
    "writer",
    [
        "{% if nodes.review is defined %}Improve on: {{ nodes.review.text }}{% endif %}",
        "{% if nodes.review is undefined %}Write.{% else %}{{ nodes.review.text }}{% endif %}",
        "{{ (nodes.review | default({'text': ''})).text }}",
        "{% if 'review' in nodes %}{{ nodes.review.text }}{% endif %}",
        "{{ nodes.get('review', {}).get('text', '') }}",
        # the README's card shared by two nodes: the block reading the draft renders where the review ran only
        "{% if nodes.review is defined %}{{ nodes.draft.text }}: {{ nodes.review.text }}{% endif %}",
    ],
)
def test_guarded_reads_load(writer: str) -> None:
    assert graph_from_data(_graph(writer)).nodes["draft"].op == "call"


@pytest.mark.parametrize(
    "writer",
    [
        "{{ nodes.review.text if nodes.review is defined else '' }}",
        "{% if nodes.review is defined %}{{ nodes.review.text }}{% endif %}",
        "{{ (nodes.review | default({})).text | default('') }}",
        "{% if 'review' in nodes %}{{ nodes.review.text }}{% endif %}",
        "{{ nodes.get('review') }}",
    ],
)
def test_guarded_reads_render_as_the_check_says(writer: str, tmp_path: Path) -> None:
    """What the check takes for a guard is one: the first node renders it without the later node's output."""
    model = ScriptedModel([], default="ok")
    result = run(graph_from_data(_graph(writer)), {}, model=model, store=f"sqlite:///{tmp_path / 'r.db'}")
    assert result.outputs["draft"]["text"] == "ok"


@pytest.mark.parametrize(
    "writer",
    [
        # a test or a default of something read from the output fails on the missing output first
        "{% if nodes.review.text is defined %}{{ nodes.review.text }}{% endif %}",
        "{{ nodes.review.text | default('') }}",
        # a guard of another node that runs before this one: the block renders here
        "{% if 'start' in nodes %}{{ nodes.review.text }}{% endif %}",
    ],
)
def test_what_is_no_guard_is_refused(writer: str) -> None:
    data = _graph(writer, edges=[["start", "draft"], ["draft", "review"]])
    data["nodes"]["start"] = {"op": "call", "agent": "critic"}
    data["agents"]["critic"]["prompt"] = "{% if nodes.draft is defined %}{{ nodes.draft.text }}{% endif %}"
    assert "agents.writer.prompt: template reads nodes.review, which has no output yet" in _error(data)


def test_what_the_guard_analysis_finds() -> None:
    source = (
        "{% if 'a' in nodes %}{{ nodes.a.x }}{% endif %}\n{{ nodes.b | default(1) }}{{ nodes.get('c') }}{{ nodes.d.y }}"
    )
    assert guarded_nodes(source) == {"a", "b", "c"}
    assert [(r.node, r.line, r.under) for r in node_reads(source)] == [
        ("a", 1, frozenset({"nodes.a"})),
        ("d", 2, frozenset()),
        ("b", 2, frozenset()),
    ]
    assert guarded_nodes("{% for nodes in inputs %}{{ nodes.a is defined }}{% endfor %}") == frozenset()


LOOP = {
    "refine": {"op": "loop", "body": ["draft", "review"], "until": {"max_rounds": 2}},
    "final": {"op": "call", "agent": "closer"},
}


def _loop_graph(writer: str, critic: str = "{{ nodes.draft.text }}", closer: str = "x") -> dict[str, Any]:
    return {
        "name": "g",
        "agents": {"writer": {"prompt": writer}, "critic": {"prompt": critic}, "closer": {"prompt": closer}},
        "nodes": {"draft": {"op": "call", "agent": "writer"}, "review": {"op": "call", "agent": "critic"}, **LOOP},
        "edges": [["refine", "final"]],
    }


def test_a_loop_body_node_reading_a_later_one_unguarded_is_refused() -> None:
    """The loop keeps its body's outputs from one iteration to the next, but the first has none of a later node."""
    message = _error(_loop_graph("{{ nodes.review.text }}"))
    assert message.endswith(
        "agents.writer.prompt: template reads nodes.review, which has no output yet when node 'draft' renders it "
        "(agent 'writer'): node 'review' runs after 'draft' in the body of loop 'refine', so it has none in the "
        f"first iteration; put 'review' before 'draft' in the body, or {GUARD}"
    ), message
    message = _error(_loop_graph("{{ nodes.draft.text }}"))
    assert "it is the node's own output, which it has only once it has finished; read another node's (in loop " in (
        message
    )


@pytest.mark.parametrize(
    ("writer", "critic", "closer"),
    [
        # the previous iteration's review and draft, guarded; the loop's own count
        ("{% if nodes.review is defined %}{{ nodes.draft.text }} / {{ nodes.review.text }}{% endif %}", "x", "x"),
        ("{{ nodes.refine.iteration }}", "{{ nodes.draft.text }}", "x"),
        # after the loop: its body has run at least once
        ("x", "x", "{{ nodes.draft.text }} {{ nodes.review.text }} {{ nodes.refine.iteration }}"),
    ],
)
def test_what_a_loop_has_run_loads(writer: str, critic: str, closer: str) -> None:
    assert graph_from_data(_loop_graph(writer, critic, closer)).output_node() == "final"


def test_a_guarded_read_of_the_previous_iteration_renders_in_the_second(tmp_path: Path) -> None:
    writer = "Draft{% if nodes.review is defined %} after {{ nodes.review.text }}{% endif %}"
    model = ScriptedModel([{"agent": "writer", "prompt": "after r1", "responses": ["d2"]}], default="r1")
    result = run(graph_from_data(_loop_graph(writer)), {}, model=model, store=f"sqlite:///{tmp_path / 'r.db'}")
    assert result.outputs["draft"]["text"] == "d2"


def test_a_branch_condition_reading_a_node_that_runs_later_is_refused() -> None:
    data = _graph("x", edges=[["draft", "gate"]])
    data["nodes"]["gate"] = {"op": "branch", "condition": "nodes.review.answer == 'ok'", "then": "review"}
    assert _error(data).endswith(
        "nodes.gate.condition: condition reads nodes.review, which has no output yet when node 'gate' renders it: "
        "node 'review' runs after 'gate' (a path of edges leads from 'gate' to it); read it in a node after "
        f"'review', or {GUARD}"
    )


def test_an_unknown_node_is_refused_with_the_likely_one_guarded_or_not() -> None:
    for writer in (
        "{{ nodes.reveiw.text }}",
        "{% if nodes.reveiw is defined %}x{% endif %}",
        "{{ nodes.get('reveiw') }}",
    ):
        data = _graph(writer, edges=[["review", "draft"]])
        data["agents"]["critic"]["prompt"] = "x"
        assert _error(data).endswith(
            "agents.writer.prompt: template reads nodes.reveiw, but the graph has no node 'reveiw'; did you mean "
            "'review'? nodes: draft, review"
        ), writer


def test_a_stored_spec_that_reads_a_later_node_still_reads() -> None:
    """A run that failed on such a read is stored; its spec is read back to show or export it."""
    data = _graph("Improve on: {{ nodes.review.text }}")
    assert stored_graph(data, "r1").nodes["draft"].op == "call"
