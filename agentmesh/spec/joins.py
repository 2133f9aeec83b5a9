"""Where a node waits for several others: the rules :mod:`agentmesh.runtime.compile` builds a graph's LangGraph
joins by and :class:`agentmesh.spec.run_order.RunsBefore` reasons over, kept here once so that the load check that says
what a template may read cannot drift from what a run does.

* A node with several predecessors waits for all of them (a LangGraph join), except predecessors on the two arms
  of one branch: only one arm runs, so there is a join per arm (:func:`join_groups`).
* A branch that routes to a node which also waits for predecessors of its own -- ones not only on the branch's other
  arm -- routes through a pass-through of that route (:func:`routes_into_joins`), which is then one more predecessor
  of the join, on that route's arm. Routed straight to the node, the node started the moment the branch chose it,
  without waiting for a predecessor running beside the branch, whose own edge into the node then either started
  it a second time or waited for an arm that never ran.

Both callers name things their own way (the runtime: ``"x__done"``, ``"gate__else"``; the check: tuples), so the
functions take how to name a node's exit (``source``) and a route's pass-through (``via``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from itertools import pairwise
from typing import TYPE_CHECKING, TypeVar

import networkx as nx

from agentmesh.spec.operators import BranchParams, LoopParams

if TYPE_CHECKING:  # (spec.graph imports the checks, which import this)
    from agentmesh.spec.graph import GraphSpec

T = TypeVar("T", bound=Hashable)

ROUTES = ("then", "else")
"""A branch's two routes, by the name its ``via`` pass-through and the messages give them."""


def branch_routes(spec: GraphSpec) -> dict[str, dict[str, str]]:
    """Per branch node, the node each of its routes goes to (``then``, and ``else`` when it has one)."""
    out: dict[str, dict[str, str]] = {}
    for name, node in spec.nodes.items():
        if isinstance(node.params, BranchParams):
            routes = {"then": node.params.then, "else": node.params.otherwise}
            out[name] = {field: target for field, target in routes.items() if target is not None}
    return out


def static_predecessors(spec: GraphSpec) -> dict[str, list[str]]:
    """Per node, the nodes it follows by a declared edge or along a loop's body (not a loop's own check, which its
    body's last node leads back to: that is the loop's next iteration, not its entry)."""
    preds: dict[str, list[str]] = {n: [] for n in spec.nodes}
    for a, b in spec.edges:
        preds[b].append(a)
    for node in spec.nodes.values():
        if isinstance(node.params, LoopParams):
            body = node.params.body
            for prev, nxt in pairwise(body):
                preds[nxt].append(prev)
    return preds


def _reach(structure: nx.DiGraph[str], node: str) -> set[str]:
    return {node} | set(nx.descendants(structure, node))


def routes_into_joins(spec: GraphSpec) -> set[tuple[str, str]]:
    """The routes (branch, ``then``/``else``) whose target also waits for a predecessor that is not only on the
    branch's other arm: they go through a pass-through of their own, which joins the target's other predecessors
    (see the module's docstring). A route to a node whose only predecessors are on the other arm (``then: deep``,
    ``else: final``, ``deep -> final``) needs none: either arm starts the node by itself."""
    structure = spec.structure()
    preds = static_predecessors(spec)
    out: set[tuple[str, str]] = set()
    for branch, routes in branch_routes(spec).items():
        for field, target in routes.items():
            other = routes.get("else" if field == "then" else "then")
            other_only = set() if other is None else _reach(structure, other) - _reach(structure, target)
            if any(p not in other_only for p in preds[target]):
                out.add((branch, field))
    return out


def branch_arms(
    spec: GraphSpec, source: Callable[[str], T], via: Callable[[str, str], T], through: set[tuple[str, str]]
) -> list[tuple[set[T], set[T]]]:
    """Per branch with both routes, what only its ``then`` route leads to and what only its ``else`` route does, as
    the caller names them: each node by ``source(node)`` (its exit, for a node that repeats), and a route in
    ``through`` (:func:`routes_into_joins`) by its pass-through ``via(branch, field)``."""
    structure = spec.structure()
    arms: list[tuple[set[T], set[T]]] = []
    for branch, routes in branch_routes(spec).items():
        if "else" not in routes:
            continue
        then_reach, else_reach = _reach(structure, routes["then"]), _reach(structure, routes["else"])
        then_only = {source(n) for n in then_reach - else_reach}
        else_only = {source(n) for n in else_reach - then_reach}
        then_only |= {via(branch, "then")} if (branch, "then") in through else set()
        else_only |= {via(branch, "else")} if (branch, "else") in through else set()
        arms.append((then_only, else_only))
    return arms


def join_groups(arms: Iterable[tuple[set[T], set[T]]], preds: list[T]) -> list[list[T]]:
    """The sets of predecessors a node with several waits for: all of them, but for each branch with predecessors
    only on its ``then`` arm and others only on its ``else`` arm, a set per arm (a LangGraph join on every
    predecessor waits for the arm that did not run, so "branch, then merge" never ran the merge)."""
    groups = [list(preds)]
    for then_only, else_only in arms:
        only_then, only_else = then_only.intersection(preds), else_only.intersection(preds)
        if only_then and only_else:
            groups = [[q for q in group if q not in drop] for group in groups for drop in (only_else, only_then)]
    return [list(g) for g in dict.fromkeys(tuple(g) for g in groups if g)]
