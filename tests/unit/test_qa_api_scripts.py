"""What a script author meets composing graphs in Python: results checked against what the README promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentmesh import ScriptedModel, run
from agentmesh.spec import graph_from_data


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def _debate_then_check(activation: str = "parallel") -> Any:
    """Three debaters for up to three rounds, a vote, then a checker's call: the output node."""
    return graph_from_data(
        {
            "name": "debate_checked",
            "inputs": {"question": {"type": "string"}},
            "agents": {
                "debater": {"prompt": "{{ question }}", "parser": "boxed_math"},
                "checker": {
                    "prompt": "{{ question }} The debate says {{ nodes.vote.answer }}.",
                    "parser": "boxed_math",
                },
            },
            "nodes": {
                "debate": {"op": "rounds", "agents": ["debater"] * 3, "rounds": 3, "activation": activation},
                "vote": {"op": "vote", "from": "debate"},
                "check": {"op": "call", "agent": "checker"},
            },
            "edges": [["debate", "vote"], ["vote", "check"]],
        }
    )


def _debaters() -> ScriptedModel:
    return ScriptedModel(
        [
            {"agent": "debater", "round": 1, "responses": ["\\boxed{51}", "\\boxed{50}", "\\boxed{51}"]},
            {"agent": "debater", "template": "\\boxed{51}"},
            {"agent": "checker", "template": "\\boxed{51}", "optional": True},
        ]
    )


def test_a_budget_spent_before_the_output_nodes_call_ends_with_the_vote_already_reached(db: str) -> None:
    """README: once a budget is spent no further call starts, "and the run ends with its best answer so far". The
    checker's call was refused, its node output ``answer: None``, and that was the run's answer."""
    result = run(_debate_then_check(), {"question": "What is 17*3?"}, model=_debaters(), store=db, budget={"calls": 5})
    assert result.calls == 5
    assert result.outputs["check"]["answers"] == [] and result.outputs["check"]["stopped"]
    assert result.outputs["vote"]["answer"] == "51"
    assert (result.answer, result.text) == ("51", "\\boxed{51}")
    assert (result.stop_reason or "").startswith("budget: 5 model calls")


def test_a_round_the_budget_cut_before_any_call_keeps_the_previous_rounds_answers(db: str) -> None:
    """A budget spent exactly at the end of round 1: round 2 got no call, and the node's output held no answers, so
    the vote after it, and the run's answer, were None although round 1 had voted 51."""
    model = _debaters()
    result = run(_debate_then_check(), {"question": "What is 17*3?"}, model=model, store=db, budget={"calls": 3})
    assert len(model.calls) == 3 and result.calls == 3
    debate = result.outputs["debate"]
    assert debate["round"] == 2 and debate["done"] and (debate["stop"] or "").startswith("budget: 3 model calls")
    assert [a["key"] for a in debate["answers"]] == ["51", "50", "51"]  # round 1's, still the best the node has
    assert debate["network"]["nodes"] == []  # nobody answered in round 2
    assert result.outputs["vote"]["answer"] == "51" and result.answer == "51"


def test_a_sequential_round_cut_before_any_call_keeps_the_previous_rounds_answers_and_members(db: str) -> None:
    spec = _debate_then_check(activation="sequential")
    result = run(spec, {"question": "What is 17*3?"}, model=_debaters(), store=db, budget={"calls": 3})
    debate = result.outputs["debate"]
    assert sorted(a["slot"] for a in debate["answers"]) == [0, 1, 2] and sorted(debate["active"]) == [0, 1, 2]
    assert result.answer == "51"
