"""A template reading ``nodes.<x>`` where node ``x`` has no output yet is refused when the spec loads.

A prompt sees the outputs of the nodes that finished before its node ran; one reading a node with no path of edges
to it, its own output or a node later in the same loop body rendered ``nodes.x`` as undefined and failed the run
there, after the model calls of every node before it. A read the template guards loads, and so does one in a
block guarded by a node that may be missing there (a card shared by two nodes).
"""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import SpecError
from agentmesh.models import ScriptedModel
from agentmesh.runtime import register_function, run
from agentmesh.spec import graph_from_data, load_graph
from agentmesh.spec.loader import stored_graph
from agentmesh.spec.run_order import RunsBefore
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


# --- branches: a node read must have run on every route the branches can take ----------------------------------------


def _branchy(reader: str, reads: str, nodes: dict[str, Any], edges: list[list[str]]) -> dict[str, Any]:
    """A graph of call nodes (those given as None) and the branches and loops given, ``reader`` rendering
    ``{{ nodes.<reads>.<a key it outputs> }}``; each branch's condition is an input of its own (c1, c2), so either
    route may be taken."""
    conditions = sorted({str(n["condition"]) for n in nodes.values() if n is not None and n.get("op") == "branch"})
    op = (nodes.get(reads) or {}).get("op")
    key = {"branch": "taken", "loop": "iteration"}.get(op, "text")
    return {
        "name": "g",
        "inputs": {c: {"type": "boolean"} for c in conditions},
        "agents": {"plain": {"prompt": "x"}, "reader": {"prompt": f"Use: {{{{ nodes.{reads}.{key} }}}}"}},
        "nodes": {
            name: {"op": "call", "agent": "reader" if name == reader else "plain"} if node is None else node
            for name, node in nodes.items()
        },
        "edges": edges,
    }


def _branch(condition: str, then: str, otherwise: str | None = None) -> dict[str, Any]:
    return {"op": "branch", "condition": condition, "then": then, **({"else": otherwise} if otherwise else {})}


def _loop(*body: str) -> dict[str, Any]:
    return {"op": "loop", "body": list(body), "until": {"max_rounds": 2}}


#: name -> (nodes, edges): the shapes a branch, a join and a loop make
SHAPES: dict[str, tuple[dict[str, Any], list[list[str]]]] = {
    # the runtime test's graph: the else route goes straight to the node the then route joins
    "empty_arm": (
        {"first": None, "gate": _branch("c1", "deep", "final"), "deep": None, "final": None},
        [["first", "gate"], ["deep", "final"]],
    ),
    "no_else": (
        {"first": None, "gate": _branch("c1", "deep"), "deep": None, "final": None},
        [["first", "gate"], ["deep", "final"]],
    ),
    "fan_in": ({"s": None, "a": None, "b": None, "j": None}, [["s", "a"], ["s", "b"], ["a", "j"], ["b", "j"]]),
    "both_arms": (
        {"s": None, "gate": _branch("c1", "t", "e"), "t": None, "e": None, "j": None},
        [["s", "gate"], ["t", "j"], ["e", "j"]],
    ),
    "nested": (
        {
            "g1": _branch("c1", "g2", "e"),
            "g2": _branch("c2", "t", "u"),
            "t": None,
            "u": None,
            "e": None,
            "k": None,
            "j": None,
        },
        [["t", "k"], ["u", "k"], ["k", "j"], ["e", "j"]],
    ),
    "loop_after_branch": (
        {"gate": _branch("c1", "x", "y"), "x": None, "y": None, "L": _loop("w"), "w": None, "fin": None},
        [["x", "L"], ["y", "L"], ["L", "fin"]],
    ),
    "loop_on_an_arm": (
        {"gate": _branch("c1", "L", "fin"), "L": _loop("w", "v"), "w": None, "v": None, "fin": None},
        [["L", "fin"]],
    ),
    "straight_to_a_join": (
        {"s": None, "p": None, "p2": None, "gate": _branch("c1", "t", "j"), "t": None, "j": None},
        [["s", "gate"], ["s", "p"], ["p", "p2"], ["p2", "j"], ["t", "j"]],
    ),
    "loop_entered_twice": (
        {"a": None, "a2": None, "b": None, "L": _loop("x"), "x": None, "fin": None},
        [["a", "a2"], ["a2", "L"], ["b", "L"], ["L", "fin"]],
    ),
    "side_edge": (
        {"gate": _branch("c1", "t"), "t": None, "c": None, "j": None},
        [["gate", "c"], ["t", "j"], ["c", "j"]],
    ),
}


@pytest.mark.parametrize(
    ("shape", "reader", "reads"),
    [
        ("empty_arm", "final", "first"),
        ("empty_arm", "deep", "first"),
        ("no_else", "final", "deep"),  # no else: the run ends at the branch when it does not route to deep
        ("fan_in", "j", "a"),
        ("fan_in", "j", "b"),
        ("both_arms", "j", "s"),
        ("both_arms", "j", "gate"),
        ("nested", "k", "g2"),  # k runs after either arm of g2, both on g1's then route
        ("nested", "j", "g1"),
        ("nested", "t", "g1"),
        ("loop_after_branch", "w", "gate"),
        ("loop_after_branch", "fin", "w"),
        ("loop_on_an_arm", "v", "w"),
        ("loop_on_an_arm", "w", "gate"),
        ("side_edge", "j", "c"),
        ("side_edge", "j", "t"),  # j joins t and c: it waits for t, so it runs only when t did
    ],
)
def test_a_node_that_runs_before_on_every_route_loads(shape: str, reader: str, reads: str) -> None:
    nodes, edges = SHAPES[shape]
    assert reader in graph_from_data(_branchy(reader, reads, nodes, edges)).nodes


def _route_guard(node: str) -> str:
    return f"; guard the read ({{% if nodes.{node} is defined %}}, nodes.{node} | default(...))"


def test_a_node_on_one_arm_of_a_branch_read_after_the_arms_join_is_refused_naming_the_route() -> None:
    """It loaded (a path of edges leads from it), and the run failed at the reader when the branch took the other
    route, after the model calls of every node before it."""
    nodes, edges = SHAPES["empty_arm"]
    assert _error(_branchy("final", "deep", nodes, edges)) == (
        "<spec>: agents.reader.prompt: template reads nodes.deep, which has no output yet when node 'final' renders "
        "it (agent 'reader'): node 'deep' runs only when branch 'gate' routes to it (then: deep), and 'final' runs "
        f"on its other route too (else: final){_route_guard('deep')}"
    )


@pytest.mark.parametrize(
    ("shape", "reader", "reads", "why"),
    [
        (
            "both_arms",
            "j",
            "t",
            "node 't' runs only when branch 'gate' routes to it (then: t), and 'j' runs on its "
            "other route too (else: e)",
        ),
        # nested branches: the innermost route the node needs is named
        (
            "nested",
            "j",
            "t",
            "node 't' runs only when branch 'g2' routes to it (then: t), and 'j' runs on its other route too (else: u)",
        ),
        (
            "nested",
            "k",
            "u",
            "node 'u' runs only when branch 'g2' routes to it (else: u), and 'k' runs on its other route too (then: t)",
        ),
        (
            "nested",
            "j",
            "g2",
            "node 'g2' runs only when branch 'g1' routes to it (then: g2), and 'j' runs on its "
            "other route too (else: e)",
        ),
        # a loop entered from either arm: its body, and what follows it, run after either
        (
            "loop_after_branch",
            "w",
            "x",
            "node 'x' runs only when branch 'gate' routes to it (then: x), and 'w' runs "
            "on its other route too (else: y)",
        ),
        (
            "loop_after_branch",
            "fin",
            "y",
            "node 'y' runs only when branch 'gate' routes to it (else: y), and 'fin' "
            "runs on its other route too (then: x)",
        ),
        # a loop on one arm: its body has run after the loop, but not when the branch took the other route
        (
            "loop_on_an_arm",
            "fin",
            "w",
            "node 'w' runs only when branch 'gate' routes to 'L' (then: L), and 'fin' "
            "runs on its other route too (else: fin)",
        ),
    ],
)
def test_reads_of_a_node_some_route_skips_are_refused_naming_the_route(
    shape: str, reader: str, reads: str, why: str
) -> None:
    nodes, edges = SHAPES[shape]
    assert _error(_branchy(reader, reads, nodes, edges)).endswith(f": {why}{_route_guard(reads)}")


@pytest.mark.parametrize(
    ("shape", "reader", "reads"), [("straight_to_a_join", "j", "p2"), ("loop_entered_twice", "x", "a2")]
)
def test_reads_across_a_join_the_runtime_used_to_skip_load(shape: str, reader: str, reads: str) -> None:
    """Two ways the runtime started a node without all its predecessors -- a branch routing straight to a join (j
    ran without waiting for p2), a loop node entered by whichever predecessor finished first (and entered again by
    the other) -- made this check refuse such reads; both are joins now (spec.joins), so the reads load."""
    nodes, edges = SHAPES[shape]
    graph_from_data(_branchy(reader, reads, nodes, edges))


@pytest.mark.parametrize(
    ("shape", "reader", "waits_for"),
    [("straight_to_a_join", "j", {"p2", "gate"}), ("loop_entered_twice", "x", {"a2", "b"})],
)
def test_a_join_runs_once_after_every_predecessor_on_every_route(
    shape: str, reader: str, waits_for: set[str], tmp_path: Path
) -> None:
    """A loop node with two predecessors was entered by each (after `a2` and after `b`): its body and `fin` after it
    ran twice, the first time without `a2`. A branch routing straight to a join started it without `p2`, which ran
    beside the branch. Now each node runs once per run (a loop's body once per iteration), after all it waits for."""
    nodes, edges = SHAPES[shape]
    recording = {
        name: {"op": "function", "function": "runs_before_seen", "args": {"me": name}} if node is None else node
        for name, node in nodes.items()
    }
    spec = graph_from_data({**_branchy("none", "none", recording, edges), "agents": {}})
    conditions = sorted(spec.inputs)
    for values in itertools.product([False, True], repeat=len(conditions)):
        _SEEN.clear()
        result = run(spec, dict(zip(conditions, values, strict=True)), store=f"sqlite:///{tmp_path / 'r.db'}")
        assert result.status == "succeeded"
        ran = [me for me, _ in _SEEN]
        loop_iterations = 2 if shape == "loop_entered_twice" else 1  # (_loop's until: max_rounds 2)
        assert ran.count(reader) in (0, loop_iterations), (values, ran)
        assert all(ran.count(n) <= 1 for n in ran if n != "x"), (values, ran)
        for me, outputs in _SEEN:
            if me == reader:
                assert waits_for <= outputs, (values, me, sorted(outputs))


def test_a_guarded_read_of_a_node_on_one_arm_loads_and_renders_on_either_route(tmp_path: Path) -> None:
    nodes, edges = SHAPES["empty_arm"]
    data = _branchy("final", "deep", nodes, edges)
    data["agents"]["reader"]["prompt"] = "Use: {% if nodes.deep is defined %}{{ nodes.deep.text }}{% endif %}."
    spec = graph_from_data(data)
    for hard in (False, True):
        model = ScriptedModel([{"agent": "reader", "responses": ["done"]}], default="ok")
        result = run(spec, {"c1": hard}, model=model, store=f"sqlite:///{tmp_path / 'r.db'}")
        assert result.outputs["final"]["text"] == "done"
        assert model.calls[-1].prompt.endswith("Use: ok." if hard else "Use: .")


def test_a_branch_in_a_loop_body_is_refused_alone() -> None:
    """A branch inside a body cannot route anywhere (the loop goes on whatever it says), so the reads have no
    route inside a body to follow: that is the only problem said."""
    nodes = {"L": _loop("w", "gate"), "w": None, "gate": _branch("c1", "t"), "t": None}
    message = _error(_branchy("t", "w", nodes, [["L", "t"]]))
    assert message.startswith(
        "<spec>: nodes.gate.then: branch 'gate' is in the body of loop 'L', which goes on to its "
    )
    assert "\n" not in message


_SEEN: list[tuple[str, frozenset[str]]] = []


@register_function("runs_before_seen", replace=True)
def _seen(outputs: dict[str, Any], inputs: dict[str, Any], *, me: str) -> dict[str, Any]:
    _SEEN.append((me, frozenset(outputs)))
    return {"text": me}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_what_the_check_says_ran_has_run_in_every_run(shape: str, tmp_path: Path) -> None:
    """The check against the runtime: each node of the shape a function recording which outputs it sees, the graph
    run with each branch taking either route; whatever RunsBefore says a node may read, every run of it saw."""
    nodes, edges = SHAPES[shape]
    recording = {
        name: {"op": "function", "function": "runs_before_seen", "args": {"me": name}} if node is None else node
        for name, node in nodes.items()
    }
    spec = graph_from_data({**_branchy("none", "none", recording, edges), "agents": {}})
    before = RunsBefore(spec)
    conditions = sorted(spec.inputs)
    saw: dict[str, frozenset[str]] = {}
    for values in itertools.product([False, True], repeat=len(conditions)):
        _SEEN.clear()
        run(spec, dict(zip(conditions, values, strict=True)), store=f"sqlite:///{tmp_path / 'r.db'}")
        for me, outputs in _SEEN:
            saw[me] = saw.get(me, outputs) & outputs
    assert saw, shape
    for reader, seen in saw.items():
        said = {ref for ref in spec.nodes if before.ran(ref, reader)}
        assert said <= seen, (shape, reader, said - seen)
    # and what it refuses went missing in a run
    missing = {
        ("empty_arm", "final"): "deep",
        ("both_arms", "j"): "t",
        ("nested", "j"): "t",
        ("loop_on_an_arm", "fin"): "w",
    }
    for (where, reader), ref in missing.items():
        if where == shape:
            assert not before.ran(ref, reader) and ref not in saw[reader]


def test_a_node_named_as_a_step_the_runtime_adds_after_another_is_refused() -> None:
    """``gate__else`` is the pass-through of branch ``gate``'s route into a join (``x__done`` a repeating node's
    exit): a node of that name made LangGraph refuse the graph when the run started ("node already present")."""
    nodes, edges = SHAPES["straight_to_a_join"]
    data = _branchy("j", "p2", {**nodes, "gate__else": None}, [*edges, ["s", "gate__else"]])
    assert _error({**data, "output": "j"}).endswith(
        "nodes.gate__else: 'gate__else' is the name of a step the runtime adds after node 'gate' (its 'else'); name "
        "the node otherwise"
    )
    graph_from_data(
        {**_branchy("j", "p2", {**nodes, "other__else": None}, [*edges, ["s", "other__else"]]), "output": "j"}
    )
