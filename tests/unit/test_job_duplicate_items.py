"""A job's data with the same item twice (the same inputs on two lines: duplicated questions are common in real
data sets), run again after its runs were cut short or failed.

Each item's earlier run was found by its inputs alone, the newest run of those inputs winning: both lines were
given the same run, so both resumed it at once -- one failed with "process N resumed it first (it is running
now)", naming the job's own process, the job exited 1, and the other line's run was left cut short for good. Each
line now takes a run of its own (the one stored for its line first)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.datasets import read_items
from agentmesh.errors import AgentmeshError
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.optimize import optimize
from agentmesh.store import RunStatus, Store
from tests._dylan_team import Team
from tests.unit.test_optimize import four_agent_graph, write_items


class _DownInLayer2:
    """The team, with its server gone from layer 2 on: every item's run fails after its 4 layer-1 calls."""

    def __init__(self) -> None:
        self.team = Team()

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        if context.round == 2:
            raise RuntimeError("the model server went away")
        return self.team(request, context)


def test_the_same_item_twice_resumes_two_runs_not_one_run_twice(tmp_path: Path) -> None:
    spec = four_agent_graph()
    data = write_items(tmp_path / "items.jsonl", 2)
    data.write_text(data.read_text() * 2)  # lines 3 and 4 repeat lines 1 and 2
    items = read_items(data, spec)
    db = f"sqlite:///{tmp_path / 'runs.db'}"

    with pytest.raises(AgentmeshError, match="every item failed"):  # the four runs are stored, failed
        optimize(spec, items, top_k=2, model=ScriptedModel(respond=_DownInLayer2()), store=db, concurrency=4)
    with Store(db) as store:
        failed = store.list_runs(graph=spec.name)
    assert len(failed) == 4 and {r.status for r in failed} == {RunStatus.FAILED}

    again = ScriptedModel(respond=Team())
    second = optimize(spec, items, top_k=2, model=again, store=db, concurrency=4)
    assert [(i.line, i.error) for i in second.failed] == []
    assert len({i.run_id for i in second.items}) == 4  # each line its own run, the one stored for its line
    assert {i.run_id for i in second.items} == {r.id for r in failed}
    assert len(again.calls) == 4 * 7  # each resumed run serves its 4 layer-1 calls from the store
    with Store(db) as store:
        assert {r.status for r in store.list_runs(graph=spec.name)} == {RunStatus.SUCCEEDED}

    third = ScriptedModel(respond=Team())
    reused = optimize(spec, items, top_k=2, model=third, store=db, concurrency=4)
    assert third.calls == [] and [i.run_id for i in reused.items] == [i.run_id for i in second.items]
