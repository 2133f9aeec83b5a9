"""Counts in messages said "1 runs were cut short", "budget: 1 model calls", "(1 recorded calls)", "its 1 recorded
calls": ``agentmesh._text.counted`` says "1 run", "2 runs" wherever the CLI and the runtime word a count."""

from __future__ import annotations

from pathlib import Path

from agentmesh._text import counted
from agentmesh.models import ScriptedModel
from agentmesh.runtime import run
from agentmesh.spec.stop import Budget


def test_counted_is_singular_only_for_one() -> None:
    assert [counted(n, "run") for n in (0, 1, 2)] == ["0 runs", "1 run", "2 runs"]
    assert counted(1, "model call") == "1 model call" and counted(3, "batch", "batches") == "3 batches"
    assert counted(1234, "row", spec=",") == "1,234 rows" and counted(1, "row", spec=",") == "1 row"


def test_a_budget_of_one_call_says_one_model_call(tmp_path: Path) -> None:
    result = run(
        "debate",
        {"question": "What is 2+2?"},
        model=ScriptedModel(default="\\boxed{4}"),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        budget=Budget(calls=1),
    )
    assert (result.stop_reason or "").startswith("budget: 1 model call"), result.stop_reason
    assert "1 model calls" not in (result.stop_reason or "")
