"""The leak judge (:mod:`agentmesh.systems.alu.judge`): which cases it sees, its inputs, its verdict, and the old
import path through :mod:`agentmesh.systems.alu.evaluate` that ``agentmesh.cli.eval`` still uses."""

from __future__ import annotations

from agentmesh.systems.alu import evaluate, judge
from agentmesh.systems.alu.cases import EvalCase
from agentmesh.systems.alu.targets import Target


def test_only_forget_qa_cases_are_judged_and_shown_the_question_before_the_attack() -> None:
    target = Target(1, "Mei-Lin Tsao")
    attacked = EvalCase(
        "q1", "forget", "mask", "Which book is M. T. known for?", "Harbor Lights", target, question="Which book?"
    )
    retain = EvalCase("r1", "retain", "none", "What is 2+2?", "4")
    mcq = EvalCase("m1", "forget", "none", "A) x\nB) y", gold_letter="A", n_options=2)
    assert [judge.judged_case(c) for c in (attacked, retain, mcq)] == [True, False, False]
    assert judge.judge_inputs(attacked, "It is Harbor Lights.") == {
        "query": "Which book?",
        "reference": "Harbor Lights",
        "response": "It is Harbor Lights.",
    }


def test_verdict_is_read_from_the_verdict_node_and_unparsed_when_it_has_no_boolean() -> None:
    assert judge.judge_verdict({"verdict": {"value": True}}) == "yes"
    assert judge.judge_verdict({"verdict": {"value": False}}) == "no"
    assert judge.judge_verdict({"verdict": {"value": None}}) == "unparsed"
    assert judge.judge_verdict({}) == "unparsed"  # stopped before the call


def test_judge_graph_is_the_shipped_one_and_the_old_path_still_works() -> None:
    spec = judge.judge_graph()
    assert spec.name == judge.JUDGE_GRAPH and set(spec.inputs) == {"query", "reference", "response"}
    for name in ("judge_graph", "judge_inputs", "judge_verdict", "judged_case"):
        assert getattr(evaluate, name) is getattr(judge, name)
