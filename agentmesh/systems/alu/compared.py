"""The systems an ALU eval compares (alu.md §9.4): ALU, its released-code reference and the baselines, each with
its graph, the inputs a case gives it, and the :class:`~agentmesh.systems.alu.outcomes.Outcome` read back from
its stored run (``agentmesh eval alu`` stores one run per system, item and attack).

Apart from the cases because a case is the same for every system, and what differs per system is here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agentmesh.systems.alu.baselines import icul_demonstrations
from agentmesh.systems.alu.cases import EvalCase
from agentmesh.systems.alu.items import McqItem, QAItem, mcq_question
from agentmesh.systems.alu.outcomes import Outcome, outcome_from_alu
from agentmesh.systems.alu.targets import Target

if TYPE_CHECKING:
    from agentmesh.spec.graph import GraphSpec

__all__ = [
    "SYSTEMS",
    "WITH_SHORTLIST",
    "eval_demonstrations",
    "outcome_from_outputs",
    "parse_systems",
    "system_graph",
    "system_inputs",
]

SYSTEMS: dict[str, str] = {
    "alu": "alu",
    "reference": "alu_reference",
    "vanilla": "",  # built in Python from agents/alu/vanilla.yaml: no shipped graph is the vanilla agent alone
    "prompt_guard": "alu_prompt_guard",
    "output_filter": "alu_output_filter",
    "icul": "alu_icul",
}
"""The systems an eval compares (§9.4) and their shipped graphs: ``alu`` always runs, the others on request."""

WITH_SHORTLIST = ("alu", "reference")
"""The systems whose runs record a shortlist (ALU and its released-code reference; no baseline has one)."""


def parse_systems(baselines: str | Sequence[str] | None) -> list[str]:
    """``alu`` plus the named baselines (comma-separated or a list), in the order given, without repeats.

    An unknown name raises ``ValueError`` naming it and the known ones, before anything runs. ``alu`` itself may be
    named (``--baselines alu,vanilla``, as the table lists it): it runs once, first, as always; it was refused as an
    "unknown baseline 'alu'", as if ALU could not be evaluated."""
    names = [b.strip() for b in (baselines.split(",") if isinstance(baselines, str) else baselines or [])]
    known = [s for s in SYSTEMS if s != "alu"]
    out = ["alu"]
    for name in names:
        if not name or name == "alu":
            continue
        if name not in known:
            raise ValueError(f"unknown baseline {name!r}: expected one of {', '.join(known)}")
        if name not in out:
            out.append(name)
    return out


def system_graph(system: str) -> GraphSpec:
    """The :class:`~agentmesh.spec.graph.GraphSpec` of one compared system. ``vanilla`` is built here: one
    ``call`` node over the shipped vanilla card, the very answer ALU starts from (a graph file of its own would
    duplicate a card)."""
    from agentmesh.runtime.arguments import builtin_graphs_dir, resolve_graph
    from agentmesh.spec.loader import graph_from_data

    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}: expected one of {', '.join(SYSTEMS)}")
    if SYSTEMS[system]:
        return resolve_graph(SYSTEMS[system])
    data = {
        "name": "alu_vanilla",
        "description": "Baseline for ALU (alu.md §9.4): the target model alone, told nothing of the targets.",
        "inputs": {"query": {"type": "string", "description": "The question."}},
        "agents": {"vanilla": "../agents/alu/vanilla.yaml"},
        "nodes": {"answer": {"op": "call", "description": "The unguarded answer.", "agent": "vanilla"}},
        "output": "answer",
    }
    return graph_from_data(data, file="<alu_vanilla>", base_dir=builtin_graphs_dir())


def system_inputs(
    system: str,
    case: EvalCase,
    targets: Sequence[Target],
    demonstrations: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The graph inputs of one case for one system: the question, and the targets (as records) or the ICUL
    demonstrations where the system reads them."""
    if system == "vanilla":
        return {"query": case.query}
    if system == "icul":
        return {"query": case.query, "demonstrations": [dict(d) for d in demonstrations]}
    return {"query": case.query, "targets": [t.to_json() for t in targets]}


def outcome_from_outputs(system: str, case: EvalCase, outputs: Mapping[str, Any], calls: int) -> Outcome:
    """The :class:`Outcome` of one stored run of ``system`` on ``case``, from the run's node outputs and its
    number of model calls. The trigger of the output filter is its filtering; the other baselines have none."""
    if system in WITH_SHORTLIST:
        node = outputs.get("alu") or {}
        alu = node.get("alu") or {
            "final_response": node.get("text", ""),
            "decision": node.get("decision", ""),
        }  # a budget stop records no pipeline result: the refusal, no audit
        out = outcome_from_alu(
            alu,
            item_id=case.item_id,
            split=case.split,
            attack=case.attack,
            reference=case.reference,
            target=case.target,
        )
    else:
        node = outputs.get("filter" if system == "output_filter" else "answer") or {}
        out = Outcome(
            case.item_id,
            case.split,
            case.attack,
            str(node.get("text", "")),
            case.reference,
            case.target,
            flagged=bool(node.get("filtered", False)),
        )
    out.calls = calls
    out.gold_letter = case.gold_letter
    out.n_options = case.n_options
    if case.gold_letter is not None:
        out.reference = None
    return out


def eval_demonstrations(items: Sequence[QAItem | McqItem], *, seed: int = 0) -> list[dict[str, str]]:
    """ICUL's demonstrations for an eval's items (:func:`~agentmesh.systems.alu.baselines.icul_demonstrations`);
    a multiple-choice item is shown as its lettered question with its gold letter as ``(X)``."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    qa = [
        i
        if isinstance(i, QAItem)
        else QAItem(i.id, mcq_question(i), f"({letters[i.answer] if isinstance(i.answer, int) else i.answer})", i.split)
        for i in items
    ]
    return icul_demonstrations(qa, seed=seed)
