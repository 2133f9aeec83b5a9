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

import contextlib
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
from agentmesh.spec.joins import branch_arms, join_groups, routes_into_joins, static_predecessors
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
    node_reads,
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


def template_order_problems(spec: GraphSpec) -> list[Problem]:
    """Templates that read ``nodes.<x>`` unguarded where node ``x`` has no output yet.

    A prompt, a branch condition or a ``code_tests`` template sees ``nodes``: the outputs of the nodes that have
    finished when its node runs (the run's state, kept across a loop's iterations). One reading a node that does
    not run before it whichever route each branch takes (:class:`RunsBefore`) -- no path of edges from it, its own
    output, a node later in the same loop body, a node on one arm of a branch read after the arms join -- found
    no such key when it rendered, and the run failed there, after the model calls of every node before it. The
    template may say itself that the output may be missing, as a repeating node reading what it gave the previous
    iteration does (``{% if nodes.x is defined %}``, ``nodes.x | default(...)``, ``'x' in nodes``,
    ``nodes.get('x')``: :func:`~agentmesh.spec.templates.guarded_nodes`, the analysis that finds guarded
    variables); such a read loads. Nodes the graph does not have are :func:`template_problems`'."""
    before = RunsBefore(spec)
    out: list[Problem] = []
    reported: set[tuple[Loc, str]] = set()
    for node_name, node in spec.nodes.items():
        templates: list[tuple[Loc, str, str, str]] = []  # where, what renders it, its source, what it is called
        for _, agent_name in node.params.agents_used():
            card = spec.agents[agent_name]
            for field, source in (("prompt", card.prompt), ("system", card.system)):
                if source is not None:
                    templates.append((("agents", agent_name, field), f"agent {agent_name!r}", source, "template"))
        if isinstance(node.params, BranchParams):
            with contextlib.suppress(TemplateSyntaxProblem):  # (reported by template_problems)
                templates.append((("nodes", node_name, "condition"), "", node.params.condition_template(), "condition"))
        if isinstance(node.params, CodeTestsParams):
            templates.append((("nodes", node_name, "tests"), "", node.params.tests, "tests"))
            if node.params.entry_point and ("{{" in node.params.entry_point or "{%" in node.params.entry_point):
                templates.append((("nodes", node_name, "entry_point"), "", node.params.entry_point, "entry_point"))
        for loc, renderer, source, what in templates:
            try:
                reads, guarded = node_reads(source), guarded_nodes(source)
            except TemplateSyntaxProblem:
                continue
            seen: set[str] = set()
            for ref, _, line, under in reads:
                if ref in seen or ref in guarded or ref not in spec.nodes or before.ran(ref, node_name):
                    continue
                if any(
                    guard.startswith("nodes.") and not before.ran(guard.removeprefix("nodes."), node_name)
                    for guard in under
                ):
                    continue  # in a block that tests for a node this one may run without: the template's choice
                seen.add(ref)
                said = [renderer, f"line {line} of the {what}" if "\n" in source.strip() else ""]
                by = f" ({', '.join(p for p in said if p)})" if any(said) else ""
                guard = f"guard the read ({{% if nodes.{ref} is defined %}}, nodes.{ref} | default(...))"
                message = (
                    f"{what} reads nodes.{ref}, which has no output yet when node {node_name!r} renders it{by}: "
                    f"{before.why_not(ref, node_name, guard)}"
                )
                if (loc, message) not in reported:
                    reported.add((loc, message))
                    out.append(Problem(loc=loc, message=message))
    return out


#: What a node's run may wait for: a node (its output), a branch's route (``(branch, "then" | "else")``) or the end of
#: a repeating node or a loop (``(node, "done")``: the pass-through node its successors wait for).
_Token = str | tuple[str, str]


class RunsBefore:
    """Which nodes have an output whenever a node runs, on every route the branches can take.

    Worked out from how :mod:`agentmesh.runtime.compile` starts nodes, by the same rules
    (:mod:`agentmesh.spec.joins`), not from the paths of edges alone: a node starts when all the predecessors of one
    of its joins have finished (several predecessors are one join, except predecessors on the two arms of one
    branch, a join per arm; a branch's route into a join is one of its predecessors), when one branch routes to it
    (a route straight to a node whose other predecessors are all on the branch's other arm), or with the run when
    nothing leads to it. What every way of starting it has run is what it may read: a node on one arm of a branch,
    read after the arms join (or where the other arm routes straight to the reader), has no output when the branch
    took the other route, though a path of edges leads from it. A loop's body runs at least once before the loop is
    left, so a node after the loop has every body node's output; a body node at its first iteration has what the
    loop node had when the loop was entered. Each branch may take either route (their conditions are not
    compared)."""

    def __init__(self, spec: GraphSpec) -> None:
        # what leads where (for the messages): the edges, the routes, and through each loop's body (the loop node,
        # its body in order, back to the loop node, which its successors follow)
        g: nx.DiGraph[str] = nx.DiGraph(spec.edges)
        g.add_nodes_from(spec.nodes)
        self._body: dict[str, list[str]] = {}
        self._enclosing: dict[str, list[str]] = {}  # node -> the loops whose body holds it, innermost first
        self._routes: dict[str, dict[str, str]] = {}  # branch -> {"then": target, "else": target}
        for name, node in spec.nodes.items():
            if isinstance(node.params, LoopParams):
                g.add_edges_from(zip([name, *node.params.body], [*node.params.body, name], strict=True))
                self._body[name] = list(node.params.body)
                for member in node.params.body:
                    self._enclosing.setdefault(member, []).append(name)
            elif isinstance(node.params, BranchParams):
                routes = {"then": node.params.then, "else": node.params.otherwise}
                self._routes[name] = {field: target for field, target in routes.items() if target is not None}
                g.add_edges_from((name, t) for t in self._routes[name].values())
        self._graph = g
        self._starts = self._ways_to_start(spec)
        self._must = self._must_have_run()

    def _ways_to_start(self, spec: GraphSpec) -> dict[_Token, list[frozenset[_Token]]]:
        """For each node and pass-through, the sets of what it waits for, any one set starting it: the triggers
        :func:`agentmesh.runtime.compile.build_state_graph` gives it (a loop node's are those that enter the loop,
        not its body's last node, whose run is the next iteration)."""
        followed = {a for a, _ in spec.edges} | {m for body in self._body.values() for m in body}
        done: dict[str, _Token] = {
            name: (name, "done")
            for name, node in spec.nodes.items()
            if (node.params.repeats and name in followed) or name in self._body
        }

        def source(name: str) -> _Token:
            return done.get(name, name)

        through = routes_into_joins(spec)
        static: dict[str, list[_Token]] = {n: [source(p) for p in ps] for n, ps in static_predecessors(spec).items()}
        routed: dict[str, list[_Token]] = {n: [] for n in spec.nodes}
        for loop, body in self._body.items():
            routed[body[0]].append(loop)
        for branch, routes in self._routes.items():
            for field, target in routes.items():
                # a route into a join goes through a pass-through of its own, one more of the join's predecessors
                (static if (branch, field) in through else routed)[target].append((branch, field))
        arms = branch_arms(spec, source, lambda branch, field: (branch, field), through)
        out: dict[_Token, list[frozenset[_Token]]] = {}
        for name in spec.nodes:
            preds = static[name]
            if len(preds) == 1:
                ways = [frozenset(preds)]
            else:
                ways = [frozenset(group) for group in join_groups(arms, preds)] if preds else []
            ways += [frozenset({r}) for r in routed[name]]
            out[name] = ways or [frozenset()]  # (nothing leads to it: it starts with the run)
        for name, token in done.items():
            # a loop is left after its body's last node ran at least once; a repeating node's last round is its own
            out[token] = [frozenset({source(self._body[name][-1])} if name in self._body else {name})]
        for branch, routes in self._routes.items():
            for field in routes:
                out[(branch, field)] = [frozenset({branch})]
        return out

    def _must_have_run(self) -> dict[_Token, frozenset[_Token]]:
        """What has finished whenever each node or pass-through starts: over every way to start it, what that way
        waits for and what each of those had when it started. The greatest solution, from "everything" down (as
        dominators are found): a graph with a cycle (refused by :func:`cycle_problems`) still gets an answer."""
        every = frozenset(self._starts)
        must: dict[_Token, frozenset[_Token]] = {t: every for t in self._starts}
        deps: nx.DiGraph[_Token] = nx.DiGraph()
        deps.add_nodes_from(self._starts)
        deps.add_edges_from((d, t) for t, ways in self._starts.items() for way in ways for d in way)
        try:
            order = list(nx.topological_sort(deps))
        except nx.NetworkXUnfeasible:
            order = list(self._starts)
        changed = True
        while changed:
            changed = False
            for token in order:
                found: frozenset[_Token] | None = None
                for way in self._starts[token]:
                    had = frozenset(way).union(*(must[d] for d in way))
                    found = had if found is None else found & had
                new = found or frozenset()
                if new != must[token]:
                    must[token], changed = new, True
        return must

    def loops_around(self, name: str) -> list[str]:
        """The loops whose bodies hold ``name``, directly or through a loop in a body (innermost first)."""
        out: list[str] = []
        todo = list(self._enclosing.get(name, []))
        while todo:
            loop = todo.pop(0)
            if loop not in out:
                out.append(loop)
                todo.extend(self._enclosing.get(loop, []))
        return out

    def ran(self, ref: str, name: str) -> bool:
        """Whether node ``ref`` has an output whenever node ``name`` runs (at its first run, too), whichever route
        each branch takes."""
        return ref in self._must.get(name, frozenset())

    def why_not(self, ref: str, name: str, guard: str) -> str:
        """Why ``ref`` may have no output when ``name`` runs, and the fix: ``guard`` (how the caller says to guard
        the read) as the only one when a branch decides it, as the other otherwise."""
        loops = self.loops_around(name)
        if ref == name:
            again = f" (in loop {loops[0]!r}, the previous iteration's)" if loops else ""
            return (
                f"it is the node's own output, which it has only once it has finished; read another node's{again}, "
                f"or {guard}"
            )
        shared = next((loop for loop in loops if loop in self.loops_around(ref)), None)
        if shared is not None:
            return (
                f"node {ref!r} runs after {name!r} in the body of loop {shared!r}, so it has none in the first "
                f"iteration; put {ref!r} before {name!r} in the body, or {guard}"
            )
        if nx.has_path(self._graph, name, ref):  # (an edge [ref, name] would close a cycle)
            return (
                f"node {ref!r} runs after {name!r} (a path of edges leads from {name!r} to it); read it in a node "
                f"after {ref!r}, or {guard}"
            )
        if nx.has_path(self._graph, ref, name):
            return f"{self._route_around(ref, name)}; {guard}"
        return (
            f"node {ref!r} does not run before it (no path of edges from it); add an edge [{ref}, {name}], or {guard}"
        )

    def _route_around(self, ref: str, name: str) -> str:
        """How ``name`` can run without ``ref``, which a path of edges leads from: most often a branch's route that
        ``ref`` needs and ``name`` does not (the innermost, when branches nest); else the way ``name``, or a node
        before it, starts without waiting for ``ref``."""
        routes = [
            t for t in self._must[ref] if isinstance(t, tuple) and t[0] in self._routes and t not in self._must[name]
        ]
        if routes:
            branch, field = max(routes, key=lambda t: len(self._must[t]))
            target = self._routes[branch][field]
            said = f"node {ref!r} runs only when branch {branch!r} routes to " + (
                "it" if target == ref else repr(target)
            )
            other_field = "else" if field == "then" else "then"
            other = self._routes[branch].get(other_field)
            if other is not None and (other == name or nx.has_path(self._graph, other, name)):
                return f"{said} ({field}: {target}), and {name!r} runs on its other route too ({other_field}: {other})"
            return f"{said} ({field}: {target}), and {name!r} runs on a route without it"
        node: _Token = name
        visited: set[_Token] = set()
        while node not in visited:  # (a graph with a cycle, refused for it, may lead back)
            visited.add(node)
            way = next(w for w in self._starts[node] if ref not in w and not any(ref in self._must[d] for d in w))
            label = node if isinstance(node, str) else node[0]
            (only,) = way if len(way) == 1 else (None,)
            if isinstance(only, tuple) and only[1] in self._routes.get(only[0], {}):
                return (
                    f"branch {only[0]!r} routes straight to {label!r} ({only[1]}: {label}), which then runs without "
                    f"waiting for {ref!r}"
                )
            after = [d for d in way if nx.has_path(self._graph, ref, _named(d))]
            if not after:
                waits = ", ".join(sorted(repr(_named(d)) for d in way)) or "the start of the run"
                return f"{label!r} can start after {waits}, without {ref!r}"
            node = after[0]
        return f"{name!r} can start without {ref!r}"


def _named(token: _Token) -> str:
    """The node a token stands for: itself, the branch of a route, the node a pass-through follows."""
    return token if isinstance(token, str) else token[0]


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
