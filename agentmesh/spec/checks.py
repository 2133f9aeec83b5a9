"""Load-time checks of a graph spec: what pydantic's per-field checks cannot see, each reported as a
:class:`Problem` with the path of the field at fault.

A graph's fields are typed one by one; what is wrong across them -- a name that points nowhere, edges that form a
cycle, an edge into or out of a loop's body, a template variable nobody provides, a stop policy that could never
hold -- is found here, before any model call. :meth:`agentmesh.spec.graph.GraphSpec.problems` checks the graph's
own names and version, then runs these in order (the later ones only on a graph whose names all resolve); the
loader runs :func:`reference_problems` on the parts of a file that could be read, so that unknown names are reported
together with the file's type problems. Apart from :mod:`agentmesh.spec.graph` so that the model reads as the data
it holds and each check is found by what it checks; the checks take the spec as an argument and import
:class:`~agentmesh.spec.graph.GraphSpec` for its type only, as the graph module imports them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import networkx as nx
from pydantic import BaseModel, ConfigDict

from agentmesh._yaml import Loc
from agentmesh.errors import InvalidModelReferenceError
from agentmesh.models.reference import may_be_alias, parse_reference
from agentmesh.models.registry import providers
from agentmesh.spec.operators import (
    COMMON_OUTPUTS,
    COMMON_VARIABLES,
    BranchParams,
    CodeTestsParams,
    LoopParams,
    OperatorParams,
    RankParams,
    ScoreParams,
    VoteParams,
)
from agentmesh.spec.stop import AllOf, AnyOf, Budget, Consensus, MaxRounds, ScoreThreshold, iter_policies
from agentmesh.spec.templates import (
    TemplateSyntaxProblem,
    guarded_nodes,
    guarded_variables,
    node_references,
    numbers_compared,
    template_variables,
)

if TYPE_CHECKING:
    from agentmesh.spec.graph import GraphSpec

_POLICY_TYPES = (AnyOf, AllOf, Consensus, ScoreThreshold, MaxRounds, Budget)
#: What a loop node's output copies from its last body node's, when that node has it (the ``loop`` operator).
_LOOP_PASSES_ON = frozenset({"answers", "answer", "value", "text", "scores"})


class Problem(BaseModel):
    """One thing wrong with a spec: where (a field path) and what was expected."""

    model_config = ConfigDict(frozen=True)

    loc: Loc
    message: str

    @property
    def field(self) -> str:
        return _dotted(self.loc)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the choice closest to a misspelt ``name`` (empty when none is close): the fix of
    a typo said where it is reported, for a field, a node or a model provider alike."""
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


# --- references -------------------------------------------------------------------------------------------------------


def reference_problems(
    agents: Sequence[str],
    nodes: Sequence[str],
    params: Mapping[str, OperatorParams],
    edges: Iterable[Any],
) -> list[Problem]:
    """Names that point nowhere: agents a node uses, nodes a node reads, edge ends.

    ``params`` holds the operator parameters of the nodes that could be read, some perhaps only in part (a node
    whose parameters are invalid is still a known name in ``nodes``), so the loader reports these together with
    the type problems of the file, rather than one kind per attempt. Edges that are not pairs are left to the
    type checks.
    """
    out: list[Problem] = []
    known_agents, known_nodes = set(agents), set(nodes)
    agent_list, node_list = ", ".join(sorted(agents)) or "none", ", ".join(nodes)
    for node_name, node_params in params.items():
        for path, agent in node_params.agents_used():
            # (a name that is not a string is a type problem, reported as such by the caller)
            if isinstance(agent, str) and agent not in known_agents:
                out.append(
                    Problem(
                        loc=("nodes", node_name, *_split(path)),
                        message=f"unknown agent {agent!r}; known agents: {agent_list}",
                    )
                )
        for path, ref in node_params.nodes_read():
            if isinstance(ref, str) and ref not in known_nodes:
                out.append(
                    Problem(
                        loc=("nodes", node_name, *_split(path)), message=f"unknown node {ref!r}; nodes: {node_list}"
                    )
                )
    for i, edge in enumerate(edges):
        if not isinstance(edge, list | tuple) or len(edge) != 2:
            continue
        for j, end in enumerate(edge):
            if isinstance(end, str) and end not in known_nodes:
                out.append(Problem(loc=("edges", i, j), message=f"unknown node {end!r}; nodes: {node_list}"))
    return out


def _split(path: str) -> tuple[str | int, ...]:
    """``"rank.ranker"`` -> ("rank", "ranker"); ``"agents[2]"`` -> ("agents", 2)."""
    out: list[str | int] = []
    for part in path.split("."):
        m = re.fullmatch(r"([^\[]+)((?:\[\d+\])*)", part)
        if not m:
            out.append(part)
            continue
        out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(out)


# --- cycles and loop bodies -------------------------------------------------------------------------------------------


def cycle_problems(spec: GraphSpec) -> list[Problem]:
    """Edges must not form a cycle, nor may a branch route back to a node before it: work is repeated by
    operators that say when to stop (``loop``, ``rounds``), never by an open-ended cycle."""
    g: nx.DiGraph[str] = nx.DiGraph(spec.edges)
    g.add_nodes_from(spec.nodes)
    advice = "repeat work with a 'loop' node (op: loop) or 'rounds'"
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        pass
    else:
        path = " -> ".join([str(cycle[0][0]), *(str(e[1]) for e in cycle)])
        last = (cycle[-1][0], cycle[-1][1])
        index = spec.edges.index(last) if last in spec.edges else 0
        return [Problem(loc=("edges", index), message=f"edges form a cycle ({path}); {advice}")]
    routes: dict[tuple[str, str], str] = {}
    for name, node in spec.nodes.items():
        if isinstance(node.params, BranchParams):
            for field, target in (("then", node.params.then), ("else", node.params.otherwise)):
                if target is not None and (name, target) not in g.edges:
                    routes[(name, target)] = field
                    g.add_edge(name, target)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return []
    path = " -> ".join([str(cycle[0][0]), *(str(e[1]) for e in cycle)])
    branch, target = next((u, v) for u, v, *_ in cycle if (u, v) in routes)
    return [
        Problem(
            loc=("nodes", branch, routes[(branch, target)]),
            message=f"branch {branch!r} routes back to {target!r}, which runs before it ({path}); {advice}",
        )
    ]


def loop_body_problems(spec: GraphSpec) -> list[Problem]:
    """Edges and branch routes that enter or leave a loop's body. The loop runs its body (a chain back to the
    loop node); an edge into a body node ran it a second time outside the loop, and an edge out of one ran its
    target after every iteration rather than once after the loop."""
    owner: dict[str, str] = {}
    for name, node in spec.nodes.items():
        if isinstance(node.params, LoopParams):
            for member in node.params.body:
                owner.setdefault(member, name)
    out: list[Problem] = []
    for i, (a, b) in enumerate(spec.edges):
        for j, end in ((1, b), (0, a)):
            if end in owner:
                loop = owner[end]
                if j == 1:
                    why, hint = f"an edge into it would also run it outside the loop; connect [{a}, {loop}]", ""
                else:
                    why, hint = f"an edge out of it would run {b!r} after every iteration", f"[{loop}, {b}]"
                    why += f"; connect {hint} to run it once after the loop"
                out.append(
                    Problem(
                        loc=("edges", i, j),
                        message=f"node {end!r} is in the body of loop {loop!r}, which runs it: {why}",
                    )
                )
                break
    for name, node in spec.nodes.items():
        if isinstance(node.params, BranchParams):
            for field, target in (("then", node.params.then), ("else", node.params.otherwise)):
                if name in owner and target is not None and target not in owner:
                    # the body chains on to the loop node whatever the branch says: its route ran the target
                    # beside every next iteration, and the loop's answer was the branch's (none)
                    out.append(
                        Problem(
                            loc=("nodes", name, field),
                            message=f"branch {name!r} is in the body of loop {owner[name]!r}, which goes on to "
                            f"its next iteration whatever the branch says: the route to {target!r} would run "
                            f"it beside every iteration; take it out of the body and branch after the loop (an "
                            f"edge [{owner[name]}, {name}]), or decide inside a function node",
                        )
                    )
                elif target in owner:
                    out.append(
                        Problem(
                            loc=("nodes", name, field),
                            message=f"node {target!r} is in the body of loop {owner[target]!r}, which runs it; "
                            f"route to the loop node instead ({field}: {owner[target]})",
                        )
                    )
    return out


def order_problems(spec: GraphSpec) -> list[Problem]:
    """Nodes that read a node which does not run before them, and edges that undo a branch's choice.

    A ``vote``, ``score``, ``rank`` or ``code_tests`` node reads the answers of its ``from`` node (and a vote the
    scores of its ``weights`` node) when it runs; without a path of edges from that node it ran beside it, found
    no answers, and the run succeeded with no answer (or a weighted vote counted every answer 0), silently. An edge
    from a branch to its own ``then`` or ``else`` target ran that target whatever the condition said."""
    g: nx.DiGraph[str] = nx.DiGraph(spec.edges)
    g.add_nodes_from(spec.nodes)
    for name, node in spec.nodes.items():
        if isinstance(node.params, LoopParams):
            # into the body, along it, and back to the loop node, which a node after the loop follows
            g.add_edges_from(zip([name, *node.params.body], [*node.params.body, name], strict=True))
        elif isinstance(node.params, BranchParams):
            g.add_edges_from((name, t) for t in (node.params.then, node.params.otherwise) if t is not None)
    out: list[Problem] = []
    for name, node in spec.nodes.items():
        before: set[str] | None = None
        for path, ref in node.params.nodes_read():
            if path.startswith(("then", "else", "body")):
                continue
            before = nx.ancestors(g, name) if before is None else before
            if ref not in before:
                out.append(
                    Problem(
                        loc=("nodes", name, *_split(path)),
                        message=f"reads the output of node {ref!r}, which does not run before {name!r} (no path of "
                        f"edges from it), so it would find nothing there; add an edge [{ref}, {name}]",
                    )
                )
    for i, (a, b) in enumerate(spec.edges):
        params = spec.nodes[a].params
        if isinstance(params, BranchParams) and b in (params.then, params.otherwise):
            field = "then" if b == params.then else "else"
            out.append(
                Problem(
                    loc=("edges", i),
                    message=f"edge [{a}, {b}] runs {b!r} after branch {a!r} whatever its condition says; the "
                    f"branch routes to it already ({field}: {b}): remove the edge",
                )
            )
    return out


def model_problems(spec: GraphSpec) -> list[Problem]:
    """Model references a run could not resolve: the graph's ``model`` and each card's, by their syntax
    (:func:`~agentmesh.models.reference.parse_reference`, which imports no provider) and their provider.

    A card's model is resolved only at its first call, so ``opnai:gpt-4o`` failed the run there, after the calls of
    every node before it. The providers known are the registry's names (:func:`agentmesh.models.providers`):
    the built-in ones, the runtime's ``replay``, and whatever the user's modules registered (on the command line,
    those ``--import`` loads before the command runs; agentmesh has no entry points for providers). Reading the
    names builds no provider: a factory imports its SDK (openai, llama-cpp) only when it is called, so this check
    keeps ``graph validate`` light. A ``model`` without a ``:`` other than ``local``, the graph's or a card's, may
    be an alias of the settings of the machine it runs on (``model: lab``, :func:`may_be_alias`), which the run
    resolves and checks before it is stored.
    """
    places: list[tuple[Loc, str]] = []
    if spec.model is not None and not may_be_alias(spec.model):
        places.append((("model",), spec.model))
    places += [
        (("agents", key, "model"), card.model)
        for key, card in spec.agents.items()
        if card.model is not None and not may_be_alias(card.model)
    ]
    if not places:
        return []
    known = providers()
    out: list[Problem] = []
    for loc, reference in places:
        try:
            provider = parse_reference(reference).provider
        except InvalidModelReferenceError as exc:
            out.append(Problem(loc=loc, message=exc.message))
            continue
        if provider not in known:
            out.append(
                Problem(
                    loc=loc,
                    message=f"unknown model provider {provider!r} in {reference!r}; {did_you_mean(provider, known)}"
                    f"known providers: {', '.join(known)} (a provider of yours: register it with "
                    "agentmesh.models.register_provider in a module that agentmesh --import loads)",
                )
            )
    return out


# --- templates --------------------------------------------------------------------------------------------------------


def template_problems(spec: GraphSpec) -> list[Problem]:
    """Variables a prompt or a branch condition reads that nobody provides where it is rendered, inputs the runtime
    shadows, and ``nodes.<node>.<key>`` that no node outputs: each would fail (or silently change) the run at that
    node, after the model calls of every node before it."""
    out: list[Problem] = []
    base = COMMON_VARIABLES | set(spec.inputs)
    reported: set[tuple[str, str]] = set()
    for node_name, node in spec.nodes.items():
        for field_path, agent_name in node.params.agents_used():
            available = base | node.params.provides_for(field_path)
            card = spec.agents[agent_name]
            for field, source in (("prompt", card.prompt), ("system", card.system)):
                if source is None:
                    continue
                # (``nodes`` and ``inputs`` are read as the runtime's on purpose, and an operator's own variables
                # may repeat an input so: op alu gives ``query``)
                for var in sorted(template_variables(source) & set(_RUNTIME_VARIABLES) & set(spec.inputs)):
                    if (agent_name, var) not in reported:
                        reported.add((agent_name, var))
                        out.append(_shadowed_input(("agents", agent_name, field), var))
                for var in sorted(template_variables(source) - available - guarded_variables(source)):
                    if (agent_name, var) in reported:
                        continue
                    reported.add((agent_name, var))
                    out.append(
                        Problem(
                            loc=("agents", agent_name, field),
                            message=f"template uses undefined variable {var!r} (agent {agent_name!r} in node "
                            f"{node_name!r}, op {node.op!r}); available: {', '.join(sorted(available))}",
                        )
                    )
                for message in _node_reference_problems(spec, source):
                    if (agent_name, message) not in reported:
                        reported.add((agent_name, message))
                        out.append(Problem(loc=("agents", agent_name, field), message=message))
    # a condition sees the inputs, ``inputs`` and ``nodes`` (as the branch operator renders it): a misspelt
    # name there would otherwise fail the run at the branch, after the model calls of every node before it
    for node_name, node in spec.nodes.items():
        if isinstance(node.params, BranchParams):
            loc = ("nodes", node_name, "condition")
            try:
                condition = node.params.condition_template()
                messages = _condition_variable_problems(condition, spec.inputs)
                messages += _node_reference_problems(spec, condition)
                messages += [
                    f"condition compares nodes.{ref}.{key} with the number {number!r}, and a {spec.nodes[ref].op!r} "
                    f"node's {key} is its parser's normalised text ('{number}'), never equal to a number; compare "
                    f"with '{number}' (or write nodes.{ref}.{key}|float)"
                    for ref, key, number in numbers_compared(condition)
                    if key == "answer" and ref in spec.nodes and spec.nodes[ref].op in ("call", "vote")
                ]
            except TemplateSyntaxProblem as exc:
                messages = [f"condition is not a valid Jinja2 expression or template: {exc}"]
            out += [Problem(loc=loc, message=message) for message in messages]
        if isinstance(node.params, CodeTestsParams):
            # rendered by the operator with the inputs, ``inputs``, ``nodes``, ``answer`` and ``entry_point``: a
            # slip failed the node after the model calls of the node it tests
            # (an entry_point is a template only when it holds one, and sees neither ``answer`` nor itself)
            templates = {"tests": (node.params.tests, {"answer", "entry_point"})}
            if node.params.entry_point and ("{{" in node.params.entry_point or "{%" in node.params.entry_point):
                templates["entry_point"] = (node.params.entry_point, set())
            for field, (source, own) in templates.items():
                given = set(spec.inputs) | {"inputs", "nodes"} | own
                try:
                    messages = _undefined_variables("template", source, given)
                    messages += _node_reference_problems(spec, source)
                except TemplateSyntaxProblem as exc:
                    messages = [f"{field} is not a valid Jinja2 template: {exc}"]
                out += [Problem(loc=("nodes", node_name, field), message=message) for message in messages]
    return out


def _condition_variable_problems(condition: str, inputs: Iterable[str]) -> list[str]:
    """The variables a branch condition (as rendered) reads that it is not given: the inputs, ``inputs`` and
    ``nodes`` (:class:`TemplateSyntaxProblem` when it is not valid Jinja2)."""
    return _undefined_variables("condition", condition, set(inputs) | {"inputs", "nodes"})


def _undefined_variables(what: str, source: str, given: set[str]) -> list[str]:
    """A message for each variable the template ``source`` reads unguarded that is not ``given`` (``what`` names
    the template in it: a condition, a code_tests template)."""
    return [
        f"{what} uses undefined variable {var!r}; available: {', '.join(sorted(given))}"
        for var in sorted(template_variables(source) - given - guarded_variables(source))
    ]


def condition_problems(nodes: Mapping[str, OperatorParams], inputs: Iterable[str]) -> list[Problem]:
    """What is wrong with the branch conditions of ``nodes`` that no other node's name is needed to see (its
    syntax, the variables it reads): the loader reports these with a spec's type problems, in one attempt;
    :func:`template_problems` reports them, and what the condition reads of other nodes, once names resolve."""
    out: list[Problem] = []
    for node_name, params in nodes.items():
        if not isinstance(params, BranchParams) or not isinstance(getattr(params, "condition", None), str):
            continue
        try:
            messages = _condition_variable_problems(params.condition_template(), inputs)
        except TemplateSyntaxProblem as exc:
            messages = [f"condition is not a valid Jinja2 expression or template: {exc}"]
        out += [Problem(loc=("nodes", node_name, "condition"), message=message) for message in messages]
    return out


def _node_reference_problems(spec: GraphSpec, source: str) -> list[str]:
    """What is wrong with the ``nodes.<node>.<key>`` a template reads: a node the graph does not have, or a
    key its operator never outputs (when the operator says what it outputs)."""
    out: list[str] = []
    # (a guarded read of a node the graph does not have is a typo all the same: it is never defined)
    guarded = [(name, None) for name in sorted(guarded_nodes(source))]
    for node_name, key in dict.fromkeys([*node_references(source), *guarded]):
        node = spec.nodes.get(node_name)
        if node is None:
            if any(message.startswith(f"template reads nodes.{node_name}, but") for message in out):
                continue
            out.append(
                f"template reads nodes.{node_name}, but the graph has no node {node_name!r}; "
                f"{did_you_mean(node_name, spec.nodes)}nodes: {', '.join(spec.nodes)}"
            )
            continue
        outputs = _outputs_of(spec, node_name)
        if key is None or outputs is None or key in outputs | COMMON_OUTPUTS:
            continue
        passed_on = ""
        if isinstance(node.params, LoopParams) and key in _LOOP_PASSES_ON:
            last = node.params.body[-1]
            passed_on = (
                f" (a loop passes on its last body node's {key}, and node {last!r} (op "
                f"{spec.nodes[last].op!r}) has none)"
            )
        out.append(
            f"template reads nodes.{node_name}.{key}, but node {node_name!r} (op {node.op!r}) outputs "
            f"{', '.join(sorted(outputs | COMMON_OUTPUTS))}{passed_on}"
        )
    return out


def _outputs_of(spec: GraphSpec, name: str, depth: int = 0) -> frozenset[str] | None:
    """The keys node ``name`` may output (``None``: not known before the run). A loop's are its own count and,
    of the keys it passes on, those its last body node has: ``nodes.<loop>.text`` after a body ending in a
    ``score`` node passed this check and failed the run at the node reading it, after the loop's calls."""
    params = spec.nodes[name].params
    outputs = type(params).outputs
    if outputs is None or not isinstance(params, LoopParams) or depth > len(spec.nodes):
        return outputs
    last = _outputs_of(spec, params.body[-1], depth + 1)
    return outputs if last is None else (outputs - _LOOP_PASSES_ON) | (last & _LOOP_PASSES_ON)


#: What the runtime gives every prompt under a name an input may well have, in the input's place.
_RUNTIME_VARIABLES = {"agent": "the agent's name", "role": "the agent's role"}


def _shadowed_input(loc: Loc, var: str) -> Problem:
    """A template reads ``var``, which is both an input and a variable the runtime gives every prompt (``agent``,
    ``role``). The runtime's wins, so ``You are {{ role }}.`` with an input ``role`` rendered the agent's role
    (often nothing), silently."""
    given = _RUNTIME_VARIABLES[var]
    return Problem(
        loc=loc,
        message=f"template reads {var!r}, which names an input of the graph and also {given}; the template gets "
        f"the latter, not the input: read the input as inputs.{var}, or rename it",
    )


# --- stop policies ----------------------------------------------------------------------------------------------------


def stop_policy_problems(spec: GraphSpec) -> list[Problem]:
    """Stop policies that could never hold or read the wrong node, in the graph's ``stop`` and in its nodes'.

    A ``score_threshold`` naming a node the graph does not have: the policy read the scores of the node it is
    attached to instead, so a misspelt name silently checked another node's scores. One reading a node without
    scores, and a ``consensus`` over fewer answers than its ``min_agents``, never hold."""
    places: list[tuple[Loc, Any]] = [(("stop",), spec.stop)]
    for node_name, node in spec.nodes.items():
        for field in type(node.params).model_fields:
            places.append((("nodes", node_name, field), getattr(node.params, field)))
    out: list[Problem] = []
    for loc, value in places:
        if not isinstance(value, _POLICY_TYPES):
            continue
        for leaf in iter_policies(value):
            if isinstance(leaf, Consensus) and loc[0] == "nodes":
                out.extend(_consensus_problems(spec, leaf, loc))
            if isinstance(leaf, Consensus) and loc[0] == "stop":
                most = _most_answers(spec)
                if most is not None and most < leaf.min_agents:
                    out.append(
                        Problem(
                            loc=loc,
                            message=f"consensus needs {leaf.min_agents} agents (min_agents) and no node of the "
                            f"graph gives more than {most} answer{'s' * (most != 1)}, so it would never hold; "
                            "use another policy, or a team",
                        )
                    )
            if not isinstance(leaf, ScoreThreshold):
                continue
            if leaf.node is not None and leaf.node not in spec.nodes:
                message = f"score_threshold reads node {leaf.node!r}, which the graph does not have; nodes: "
                out.append(Problem(loc=loc, message=message + ", ".join(spec.nodes)))
            elif leaf.node is not None and not _may_score(spec, leaf.node):
                out.append(
                    Problem(
                        loc=loc,
                        message=f"score_threshold reads the scores of node {leaf.node!r}, and a "
                        f"{spec.nodes[leaf.node].op!r} node has none, so it would never hold; name a scored node",
                    )
                )
            elif leaf.node is None and loc[0] == "stop" and not any(_may_score(spec, n) for n in spec.nodes):
                out.append(
                    Problem(
                        loc=loc,
                        message="score_threshold without 'node' reads the scores of each node as it finishes, "
                        "and no node of the graph has scores, so it would never hold; add a scored node "
                        "(op: score) or use another policy",
                    )
                )
            elif leaf.node is None and loc[0] == "nodes":
                # without a node it reads the output it is checked on: a loop's last body node's, else its own
                owner = spec.nodes[str(loc[1])]
                read = owner.params.body[-1] if isinstance(owner.params, LoopParams) else str(loc[1])
                outputs = type(spec.nodes[read].params).outputs
                if outputs is not None and "scores" not in outputs:
                    out.append(
                        Problem(
                            loc=loc,
                            message=f"score_threshold without 'node' reads the scores of node {read!r}, and a "
                            f"{spec.nodes[read].op!r} node has none, so it would never hold; name the scored "
                            "node (node: ...)",
                        )
                    )
    return out


def _may_score(spec: GraphSpec, name: str) -> bool:
    """Whether node ``name`` may output ``scores`` (``True`` when its operator does not say what it outputs)."""
    outputs = type(spec.nodes[name].params).outputs
    return outputs is None or "scores" in outputs


def _most_answers(spec: GraphSpec) -> int | None:
    """The most answers any node of the graph can give (what a graph-level consensus counts), or ``None`` when
    some node's count is not known before the run (a function's, a user operator's, a method's own)."""
    counts: list[int] = []
    for name in spec.nodes:
        count = _answers_of(spec, name, depth=0)
        if count is None:
            return None
        counts.append(count)
    return max(counts, default=0)


def _answers_of(spec: GraphSpec, name: str, depth: int) -> int | None:
    node = spec.nodes[name]
    params = node.params
    outputs = type(params).outputs
    if outputs is not None and "answers" not in outputs:
        return 0  # (a branch's route, a loop check without a body that answers is counted through its body)
    if node.op in ("call", "team", "rounds"):
        return sum(1 for path, _ in params.agents_used() if path == "agent" or path.startswith("agents["))
    if depth > len(spec.nodes):
        return None
    if isinstance(params, LoopParams):
        return _answers_of(spec, params.body[-1], depth + 1)
    if isinstance(params, VoteParams | ScoreParams | RankParams):
        return _answers_of(spec, params.source, depth + 1)
    return None


def _consensus_problems(spec: GraphSpec, policy: Consensus, loc: Loc) -> list[Problem]:
    """A consensus over fewer answers than its ``min_agents`` never holds: a loop whose body ends in one
    ``call`` ran to its last iteration without a word. Checked where the answers are known before the run (a
    ``call``, ``team`` or ``rounds`` node)."""
    owner = spec.nodes[str(loc[1])]
    read = owner.params.body[-1] if isinstance(owner.params, LoopParams) else str(loc[1])
    node = spec.nodes[read]
    if node.op not in ("call", "team", "rounds"):
        return []
    answers = sum(1 for path, _ in node.params.agents_used() if path == "agent" or path.startswith("agents["))
    if answers >= policy.min_agents:
        return []
    return [
        Problem(
            loc=loc,
            message=f"consensus needs {policy.min_agents} agents (min_agents) and node {read!r} gives "
            f"{answers} answer{'s' * (answers != 1)}, so it would never hold; end the loop on a team, or use "
            "another policy",
        )
    ]
