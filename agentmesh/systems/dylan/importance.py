"""Agent Importance Scores (dylan.md §4): credit flows backwards from the nodes that gave the final answer.

Forward, every node of layer t ≥ 2 rated the predecessors it was shown (1-5, in the order shown); those ratings
are clipped and normalised into edge weights (§4.1, :func:`agentmesh.parsers.ratings.dylan_rating_weights`).
Backward (§4.2, v2 Eq. 11), the last layer that produced output shares 1 among its active nodes whose answer is
the final answer; each node passes its credit to its predecessors in proportion to its weights; inactive nodes
hold and pass nothing. So every layer up to the last sums to 1, and an agent's importance for a query is the
sum over layers of its nodes' credit (Eq. 12). Over a data set, per-agent sums are averaged (§4.3) and the top
k agents form the optimised team.

Everything is exact (:class:`~fractions.Fraction`), so the paper's worked examples are checked to the last digit
and a layer sums to exactly 1. Layers are 0-based here (layer 0 saw only the query); the ``rounds`` history
that :func:`trace_from_history` reads numbers rounds from 1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from agentmesh.parsers.ratings import dylan_rating_weights

log = logging.getLogger(__name__)

Equivalent = Callable[[str | None, str | None], bool]
NodeKey = tuple[int, int]
"""(layer, agent slot), both 0-based."""


def _equal(a: str | None, b: str | None) -> bool:
    return a == b


@dataclass(frozen=True)
class Node:
    """One node ``v_{t,a}``: agent ``agent`` at layer ``layer``.

    ``predecessors`` are the previous layer's agents this node was shown, in the order shown, and ``ratings``
    its raw ratings of them in that same order (``None``: no list, a wrong length or an invalid list — the
    weights are then uniform). ``active`` is false for a node that never ran (early stop, a layer never
    reached) or that a rank step pruned (paper semantics).
    """

    layer: int
    agent: int
    answer: str | None
    active: bool = True
    predecessors: tuple[int, ...] = ()
    ratings: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Trace:
    """A query's network: the agents (labels by slot) and the nodes that exist, by (layer, slot)."""

    agents: tuple[str, ...]
    nodes: Mapping[NodeKey, Node]
    layers: int

    def node(self, layer: int, agent: int) -> Node | None:
        return self.nodes.get((layer, agent))

    def active(self, layer: int, agent: int) -> bool:
        found = self.nodes.get((layer, agent))
        return found is not None and found.active


@dataclass(frozen=True)
class Importance:
    """The scores of one query: per node, per layer (sums), per agent, and how the backward pass started."""

    per_node: dict[NodeKey, Fraction]
    per_agent: dict[str, Fraction]
    layer_sums: list[Fraction]
    last_layer: int | None
    """The last layer with an active node (``L``); ``None`` when nothing ran."""
    credited: list[int]
    """The agents of layer ``L`` that shared the initial credit (the set C)."""
    fallback: bool = False
    """No active node of layer ``L`` gave the final answer (``|C| = 0``): the credit was shared by all of them."""
    weights: dict[NodeKey, dict[int, Fraction]] = field(default_factory=dict)
    """Per node of layer ≥ 1, its normalised weight on each predecessor agent."""
    ran: list[NodeKey] = field(default_factory=list)
    """The nodes that ran (active or pruned), as opposed to those an early stop or the ranker never reached."""

    def to_json(self, source: str | None = None) -> dict[str, Any]:
        """Floats for pictures and tables, exact fractions as strings for checks; node keys ``"round,slot"``."""
        return {
            "per_node": {f"{t + 1},{a}": float(v) for (t, a), v in sorted(self.per_node.items())},
            "ran": [f"{t + 1},{a}" for t, a in sorted(self.ran)],
            "per_agent": {k: float(v) for k, v in self.per_agent.items()},
            "per_agent_exact": {k: _fraction_text(v) for k, v in self.per_agent.items()},
            "layer_sums": [float(s) for s in self.layer_sums],
            "last_round": None if self.last_layer is None else self.last_layer + 1,
            "credited": self.credited,
            "fallback": self.fallback,
            **({"source": source} if source else {}),
        }


def _fraction_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def edge_weights(node: Node) -> dict[int, Fraction]:
    """The node's normalised weight on each predecessor agent (§4.1 steps 2-5), mapped back from shown order."""
    if not node.predecessors:
        return {}
    weights = dylan_rating_weights(node.ratings, len(node.predecessors))
    out: dict[int, Fraction] = {}
    for pred, weight in zip(node.predecessors, weights, strict=True):
        out[pred] = out.get(pred, Fraction(0)) + weight
    return out


def importance(
    trace: Trace,
    final_answer: str | None,
    *,
    equivalent: Equivalent = _equal,
    credited: Sequence[int] | None = None,
) -> Importance:
    """Agent Importance Scores of one query (§4.2, §4.3 Eq. 12), exact.

    ``credited`` replaces the initial set C (the code variant credits the final writers whose code runs,
    whatever the selected answer). When C is empty the reference code divides by zero; here the credit is
    shared by every active node of the last layer and ``fallback`` says so (§4.4).
    """
    n_agents = len(trace.agents)
    per_node: dict[NodeKey, Fraction] = {}
    weights = {key: edge_weights(node) for key, node in trace.nodes.items() if node.active and key[0] > 0}
    ran = [t for t in range(trace.layers) if any(trace.active(t, a) for a in range(n_agents))]
    last = max(ran) if ran else None
    chosen: list[int] = []
    fallback = False
    if last is not None:
        active_last = [a for a in range(n_agents) if trace.active(last, a)]
        if credited is not None:
            chosen = [a for a in credited if a in active_last]
        else:
            chosen = [a for a in active_last if equivalent(_answer(trace, last, a), final_answer)]
        if not chosen:
            # recorded in the result (``fallback``) and counted by `agentmesh optimize`, which names the items: a log
            # line per query, on stderr with no run named, said nothing a user could act on
            log.debug("no active node of the last layer gave the final answer: credit shared by all of them")
            chosen, fallback = active_last, True
        for a in chosen:
            per_node[(last, a)] = Fraction(1, len(chosen))
        for t in range(last, 0, -1):
            for j in range(n_agents):
                credit = per_node.get((t, j), Fraction(0))
                if credit == 0 or (t, j) not in weights:
                    continue
                for i, w in weights[(t, j)].items():
                    if trace.active(t - 1, i):
                        per_node[(t - 1, i)] = per_node.get((t - 1, i), Fraction(0)) + w * credit
    full = {(t, a): per_node.get((t, a), Fraction(0)) for t in range(trace.layers) for a in range(n_agents)}
    per_agent = {
        label: sum((full[(t, a)] for t in range(trace.layers)), Fraction(0)) for a, label in enumerate(trace.agents)
    }
    layer_sums = [sum((full[(t, a)] for a in range(n_agents)), Fraction(0)) for t in range(trace.layers)]
    return Importance(full, per_agent, layer_sums, last, chosen, fallback, weights, sorted(trace.nodes))


def _answer(trace: Trace, layer: int, agent: int) -> str | None:
    node = trace.node(layer, agent)
    return node.answer if node is not None else None


def mean_importance(per_query: Sequence[Mapping[str, Fraction]]) -> dict[str, Fraction]:
    """Mean over queries of each agent's per-query importance (§4.3; an agent absent from a query counts 0)."""
    if not per_query:
        return {}
    agents: dict[str, None] = {}
    for scores in per_query:
        agents.update(dict.fromkeys(scores))
    n = len(per_query)
    return {a: sum((Fraction(q.get(a, 0)) for q in per_query), Fraction(0)) / n for a in agents}


def select_team(scores: Mapping[str, Fraction | float], k: int) -> list[str]:
    """The ``k`` agents with the highest scores, highest first; ties keep the candidates' order."""
    if k < 1:
        raise ValueError(f"the team size k must be at least 1, got {k}")
    ranked = sorted(scores, key=lambda a: -Fraction(scores[a]))
    return ranked[:k]


def agent_labels(names: Sequence[str]) -> tuple[str, ...]:
    """One label per slot: the card name, or ``name#slot`` when a card fills several slots (MATH's 4 solvers)."""
    repeated = {n for n in names if names.count(n) > 1}
    return tuple(f"{n}#{i}" if n in repeated else n for i, n in enumerate(names))


def trace_from_history(
    history: Sequence[Mapping[str, Any]], agents: Sequence[str], *, layers: int | None = None
) -> Trace:
    """A ``rounds`` node's recorded history → the :class:`Trace` the importance needs.

    A rank step recorded on a round deactivates that round's nodes it did not keep (paper semantics); with
    ``reference_compat`` they stay active, as in the released code (dylan.md §8 D1). ``layers`` is the
    configured depth (rounds never reached count as empty layers); default: the rounds that ran.
    """
    nodes: dict[NodeKey, Node] = {}
    for entry in history:
        layer = int(entry["round"]) - 1
        ranked = entry.get("ranked")
        pruned_to: set[int] | None = None
        if ranked and not ranked.get("reference_compat"):
            pruned_to = set(ranked.get("kept") or [])
        for record in entry.get("nodes") or []:
            slot = int(record["slot"])
            ratings = record.get("ratings")
            nodes[(layer, slot)] = Node(
                layer=layer,
                agent=slot,
                answer=record.get("key"),
                active=pruned_to is None or slot in pruned_to,
                predecessors=tuple(int(s) for s in record.get("seen") or []),
                ratings=None if ratings is None else tuple(int(r) for r in ratings),
            )
    ran = max((int(e["round"]) for e in history), default=0)
    return Trace(agents=agent_labels(list(agents)), nodes=nodes, layers=max(ran, layers or 0))
