"""``agentmesh optimize`` averages the agents' importance exactly (dylan.md §4.3): two agents whose mean Agent
Importance Score is the same number tie, and the tie keeps the candidates' order, however the per-item floats round.

Regression: the means were taken over the per-item floats, so 1/10 + 2/10 (0.30000000000000004 in floats) beat 3/10
and decided the team by rounding error.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import agentmesh.optimize.job as job
from agentmesh.datasets import read_items
from agentmesh.models import ScriptedModel
from agentmesh.optimize import optimize
from tests._dylan_team import Team
from tests.unit.test_optimize import four_agent_graph, write_items

# per item: economist, doctor, mathematician, historian. Means: doctor 3/20 = economist 3/20 (exact tie, economist
# first among the candidates), mathematician 1, historian 1/2.
_PER_ITEM = [
    {"economist": Fraction(3, 10), "doctor": Fraction(1, 10), "mathematician": Fraction(1), "historian": Fraction(0)},
    {"economist": Fraction(0), "doctor": Fraction(2, 10), "mathematician": Fraction(1), "historian": Fraction(1)},
]


def test_tied_means_are_exact_and_keep_candidate_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert float(Fraction(0.1) + Fraction(0.2)) > float(Fraction(0.3))  # what the floats would have decided
    real = job._importance_of
    seen: list[int] = []

    def scripted(spec: Any, score_node: str, run: Any, item: Any) -> job.ItemResult:
        out = real(spec, score_node, run, item)
        exact = _PER_ITEM[len(seen)]
        seen.append(1)
        out.per_agent = {a: float(v) for a, v in exact.items()}
        out.per_agent_exact = dict(exact)
        return out

    monkeypatch.setattr(job, "_importance_of", scripted)
    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 2), spec)
    result = optimize(spec, items, top_k=3, model=ScriptedModel(respond=Team()), store=f"sqlite:///{tmp_path / 'r.db'}")
    assert result.ranking == ["mathematician", "historian", "economist", "doctor"]
    assert result.team == ["economist", "mathematician", "historian"]


def test_per_item_exact_scores_are_read_from_the_importance_node(tmp_path: Path) -> None:
    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 1), spec)
    result = optimize(spec, items, top_k=2, model=ScriptedModel(respond=Team()), store=f"sqlite:///{tmp_path / 'r.db'}")
    (item,) = result.items
    assert item.per_agent_exact and set(item.per_agent_exact) == set(item.per_agent)
    assert sum(item.per_agent_exact.values()) == round(sum(item.per_agent.values()))
    for agent, value in item.per_agent_exact.items():
        assert float(value) == item.per_agent[agent]
