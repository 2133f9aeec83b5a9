"""Which nodes have run when a node runs (:class:`RunsBefore`), and the load check built on it: a template that
reads ``nodes.<x>`` where ``x`` may have no output yet (:func:`template_order_problems`).

Apart from :mod:`agentmesh.spec.checks` because it is a model of its own -- how the runtime starts each node, by the
rules of :mod:`agentmesh.spec.joins`, worked out over every route the branches can take -- which the runtime also
asks when a render fails (:func:`agentmesh.runtime.context._unfinished_nodes_hint`), to say why and what to do.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import networkx as nx

from agentmesh._yaml import Loc
from agentmesh.spec.checks import Problem
from agentmesh.spec.joins import branch_arms, join_groups, routes_into_joins, static_predecessors
from agentmesh.spec.operators import BranchParams, CodeTestsParams, LoopParams
from agentmesh.spec.templates import TemplateSyntaxProblem, guarded_nodes, node_reads

if TYPE_CHECKING:
    from agentmesh.spec.graph import GraphSpec


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
