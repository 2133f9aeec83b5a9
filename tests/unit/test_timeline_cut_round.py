"""A ``rounds`` run interrupted part-way through a round: the round's calls are in the timeline, and the agent
network (``agentmesh show``, the report's picture) shows the round too, with the agents that answered in it, said to
be cut short. A rounds node records a round's network entry when the round ends, so the network left it out."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.runtime import run
from agentmesh.spec import graph_from_data
from agentmesh.store import Store
from agentmesh.timeline import load_timeline
from agentmesh.viz.report import report_html
from tests._cli import run_cli

SPEC = {
    "name": "talk",
    "inputs": {"question": {"type": "string"}},
    "agents": {name: {"prompt": "{{ question }}", "parser": "boxed_math"} for name in ("a", "b", "c")},
    "nodes": {
        "debate": {
            "op": "rounds",
            "agents": ["a", "b", "c"],
            "rounds": 3,
            "activation": "sequential",
            "activation_order": "fixed",
        }
    },
}


def _interrupted_in_round_two(db: str) -> str:
    """A run whose third agent is interrupted (Ctrl-C) in round 2, after a and b answered it."""

    def respond(request: ModelRequest, context: CallContext) -> str:
        if context.round == 2 and context.agent == "c":
            raise KeyboardInterrupt
        return f"\\boxed{{{context.round}{context.agent}}}"

    with pytest.raises(KeyboardInterrupt):
        run(graph_from_data(SPEC), {"question": "Q"}, model=ScriptedModel(respond=respond), store=db)
    with Store(db) as store:
        (record,) = store.list_runs()
    assert record.status == "interrupted"
    return record.id


def test_the_network_shows_the_round_a_run_stopped_in_with_the_agents_that_answered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    run_id = _interrupted_in_round_two(db)
    with Store(db) as store:
        story = load_timeline(store, run_id)
    assert [(c.round, c.agent) for c in story.calls][-2:] == [(2, "a"), (2, "b")]
    (network,) = story.networks
    assert [h["round"] for h in network.history] == [1, 2]
    cut = network.history[-1]
    assert cut["cut_short"] is True and not network.history[0].get("cut_short")
    assert [(n["slot"], n["agent"], n["key"]) for n in cut["nodes"]] == [(0, "a", "2a"), (1, "b", "2b")]

    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(["show", run_id, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    assert "round 1: a: 1a; b: 1b; c: 1c" in out, out
    assert "round 2 (cut short: the run stopped in it): a: 2a; b: 2b; c: -" in out, out

    page = report_html(story)
    assert ">round 2 (cut short)</text>" in page and ">round 1</text>" in page
    assert "c, round 2: had not answered when the run stopped" in page
