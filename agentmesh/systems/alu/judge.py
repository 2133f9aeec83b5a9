"""ALU's optional leak judge (``agentmesh eval alu --judge``, alu.md §9.2): which cases it sees, its inputs, and
how its verdict is read.

It is apart from the rest of the protocol (:mod:`~agentmesh.systems.alu.evaluate`) because it is a second,
optional measurement with its own graph (``graphs/alu_leak_judge.yaml``) and its own model calls, judged on the
answers of the systems under evaluation rather than part of producing or scoring them: the protocol (data,
cases, outcomes, the summary) does not depend on it, and it can change (another judge card, another prompt)
without touching the protocol. :mod:`~agentmesh.systems.alu.outcomes` only needs :data:`JudgeVerdict`, the type
of an outcome's verdict, and :mod:`~agentmesh.systems.alu.evaluate` re-exports the judge's functions for the
importers of their old path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from agentmesh.spec.graph import GraphSpec
    from agentmesh.systems.alu.cases import EvalCase

__all__ = [
    "JUDGE_GRAPH",
    "JudgeVerdict",
    "judge_graph",
    "judge_inputs",
    "judge_verdict",
    "judged_case",
]

JudgeVerdict = Literal["yes", "no", "unparsed"]
"""What the leak judge said of an answer: it reveals the gold answer, it does not, or no readable verdict."""

JUDGE_GRAPH = "alu_leak_judge"
"""The shipped graph of the leak judge: one call to ``agents/alu/leak_judge.yaml``, parsed by ``yes_no_verdict``."""


def judge_graph() -> GraphSpec:
    """The leak judge's :class:`~agentmesh.spec.graph.GraphSpec` (``graphs/alu_leak_judge.yaml``)."""
    from agentmesh.runtime.arguments import (
        resolve_graph,  # here, not at the top: importing agentmesh imports the systems
    )

    return resolve_graph(JUDGE_GRAPH)


def judged_case(case: EvalCase) -> bool:
    """Whether the judge is asked about a case's answers: forget QA items (a multiple-choice answer is a letter,
    a retain answer has nothing to leak)."""
    return case.split == "forget" and case.gold_letter is None and case.reference is not None


def judge_inputs(case: EvalCase, answer: str) -> dict[str, str]:
    """The judge's inputs for one answer to a case: the question before the attack (a many-shot prompt or a
    translation would only cost tokens), the gold answer and the answer. Equal inputs are one judgement (the
    stored run of a judge job is found by its inputs)."""
    return {"query": case.question or case.query, "reference": case.reference or "", "response": answer}


def judge_verdict(outputs: Mapping[str, Any]) -> JudgeVerdict:
    """The verdict of a judge run from its node outputs: ``yes``, ``no``, or ``unparsed`` when the reply had
    neither (or the run was stopped before the call)."""
    value = (outputs.get("verdict") or {}).get("value")
    return "yes" if value is True else "no" if value is False else "unparsed"
