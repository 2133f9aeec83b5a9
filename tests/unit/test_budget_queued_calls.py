"""A run's token, cost and wall-time budgets hold for calls that waited for their endpoint.

Found running ``agentmesh run debate --max-seconds 3`` on the embedded model: a parallel team reserves its calls at
once, and they then queue behind the model's single slot; each ran when its turn came, long after the budget was
spent (6 calls, the last started ~4 s in; ``--max-tokens 150`` made round 1's three calls, 338 tokens). A call is
now checked again when it gets the endpoint's slot, and one whose budget was spent meanwhile is not sent.
"""

from __future__ import annotations

from pathlib import Path

from agentmesh.models import EndpointLimits, ModelClient, ScriptedModel
from agentmesh.runtime import run
from agentmesh.runtime.replay import replay
from agentmesh.spec.stop import Budget


def _one_slot(label: str, delay_s: float = 0.0, *, disagree: bool = False) -> ModelClient:
    if disagree:  # each slot its own answer: no consensus ends a debate early
        model = ScriptedModel(
            respond=lambda request, context: f"\\boxed{{{context.call_index}}}", delay_s=delay_s, label=label
        )
    else:
        model = ScriptedModel(default="The answer is \\boxed{4}.", delay_s=delay_s, label=label)
    return ModelClient(model, reference=label, limits=EndpointLimits(max_concurrency=1, max_retries=0))


def test_a_token_budget_spent_while_a_team_waits_for_the_endpoint_stops_its_other_calls(tmp_path: Path) -> None:
    result = run(
        "self_consistency",  # a team of five samples, asked at once
        {"question": "What is 2+2?"},
        model=_one_slot("qa-one-slot-tokens", delay_s=0.05),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        budget=Budget(tokens=1),
    )
    assert result.status == "succeeded" and result.answer == "4"
    assert result.calls == 1, result.calls  # the first call spent the budget; the four queued behind it never went
    assert result.stop_reason is not None and "budget: 1 token " in result.stop_reason


def test_a_wall_time_budget_spent_while_a_team_waits_for_the_endpoint_stops_its_other_calls(tmp_path: Path) -> None:
    result = run(
        "self_consistency",
        {"question": "What is 2+2?"},
        model=_one_slot("qa-one-slot-wall", delay_s=0.3),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        budget=Budget(wall_s=0.45),
    )
    assert result.status == "succeeded" and result.answer == "4"
    assert 1 <= result.calls <= 2, result.calls  # (five queued calls of 0.3 s each: all five ran, 1.5 s)
    assert result.stop_reason is not None and "wall time" in result.stop_reason


def test_a_run_its_wall_time_budget_stopped_replays_identical(tmp_path: Path) -> None:
    """A replay takes no time, so the wall-time budget that stopped the run was not met again: the first call the
    run never made was reported as a divergence ("the graph or its inputs changed since the run", exit 1)."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run(
        "debate",  # three rounds of three; a round takes 0.3 s here
        {"question": "What is 2+2?"},
        model=_one_slot("qa-one-slot-replay", delay_s=0.1, disagree=True),
        store=db,
        budget=Budget(wall_s=0.45),
    )
    assert result.stop_reason is not None and "wall time" in result.stop_reason
    assert 0 < result.calls < 9, result.calls
    report = replay(result.run_id, store=db)
    assert report.divergence is None, report.divergence
    assert report.identical and report.served == result.calls and report.answer == result.answer
