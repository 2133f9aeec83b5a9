"""ALU's evaluation protocol (alu.md §9) in one import: the names of the modules that hold its parts.

The protocol is split by what each part does; this module keeps their public names under the path that
``agentmesh.cli.eval``, scripts and notebooks import them from:

* :mod:`~agentmesh.systems.alu.items` — the data: QA and multiple-choice JSONL (§9.1), the targets the forget
  items name, a multiple-choice item's prompt;
* :mod:`~agentmesh.systems.alu.cases` — the questions asked: one :class:`EvalCase` per (item, attack) (§7);
* :mod:`~agentmesh.systems.alu.compared` — the systems compared (§9.4): each one's graph and inputs, and the
  outcome read back from its stored run;
* :mod:`~agentmesh.systems.alu.outcomes` — what a question produced (:class:`Outcome`), and :func:`run_items`,
  which asks items through :func:`~agentmesh.systems.alu.pipeline.run_alu` directly;
* :mod:`~agentmesh.systems.alu.summary` — the summary table per split and attack and the KS forget quality (§9.2);
* :mod:`~agentmesh.systems.alu.judge` — the optional LLM leak judge (``--judge``).
"""

from __future__ import annotations

from agentmesh.systems.alu.cases import EvalCase, eval_cases
from agentmesh.systems.alu.compared import (
    SYSTEMS,
    eval_demonstrations,
    outcome_from_outputs,
    parse_systems,
    system_graph,
    system_inputs,
)
from agentmesh.systems.alu.items import (
    McqItem,
    QAItem,
    Split,
    load_mcq_jsonl,
    load_qa_jsonl,
    mcq_question,
    targets_from_items,
)
from agentmesh.systems.alu.judge import JudgeVerdict, judge_graph, judge_inputs, judge_verdict, judged_case
from agentmesh.systems.alu.outcomes import AgentsFactory, Outcome, outcome_from_alu, run_items
from agentmesh.systems.alu.summary import forget_qualities, forget_quality, summarize, summarize_system

__all__ = [
    "SYSTEMS",
    "AgentsFactory",
    "EvalCase",
    "JudgeVerdict",
    "McqItem",
    "Outcome",
    "QAItem",
    "Split",
    "eval_cases",
    "eval_demonstrations",
    "forget_qualities",
    "forget_quality",
    "judge_graph",
    "judge_inputs",
    "judge_verdict",
    "judged_case",
    "load_mcq_jsonl",
    "load_qa_jsonl",
    "mcq_question",
    "outcome_from_alu",
    "outcome_from_outputs",
    "parse_systems",
    "run_items",
    "summarize",
    "summarize_system",
    "system_graph",
    "system_inputs",
    "targets_from_items",
]
