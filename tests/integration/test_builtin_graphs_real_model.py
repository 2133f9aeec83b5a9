"""Every shipped generic graph, end to end on the real SmolLM2 served by llama-cpp-python's OpenAI-compatible
server: the run completes, every model call is stored with the server's real token usage, and ``agentmesh show``
prints the run. SmolLM2-135M answers poorly; what is checked is that the whole path works, not the answers.

Needs the ``local`` and ``dev`` extras (the ``llama_server_url`` fixture skips, saying why, without them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from agentmesh.runtime import run
from agentmesh.runtime.arguments import builtin_graphs
from agentmesh.store import Store
from tests._cli import run_cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed: pip install 'agentmesh[local]' to run the real-model tests",
    ),
]

GENERIC = ["debate", "self_consistency", "mixture_of_agents", "self_moa", "persona_ensemble"]
QUESTION = "What is 17*3?"


def test_every_generic_graph_is_shipped() -> None:
    assert set(GENERIC) <= set(builtin_graphs())


@pytest.mark.parametrize("graph", GENERIC)
def test_shipped_graph_runs_on_smollm2_is_stored_and_shown(
    graph: str, llama_server_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run(graph, {"question": QUESTION}, model=f"openai:smollm2@{llama_server_url}", store=db)
    assert result.status == "succeeded" and result.graph == graph
    assert result.stop_reason

    with Store(db) as store:
        record = store.get_run(result.run_id)
        calls = store.events(result.run_id, kind="model_call")
        nodes = store.events(result.run_id, kind="node_result")
    assert record.status == "succeeded" and record.stop_reason == result.stop_reason
    assert len(calls) == result.calls > 0
    for event in calls:
        assert event.error is None, event.error
        assert event.usage_estimated is False, "llama.cpp's server reports usage: it must be stored, not estimated"
        assert (event.prompt_tokens or 0) > 0 and (event.completion_tokens or 0) > 0
        assert event.response is not None and event.response["choices"][0]["text"] is not None
    assert {n.node for n in nodes} == set(record.meta["spec"]["nodes"]), "every node ran and recorded its result"
    assert record.totals["calls"] == len(calls) and not record.totals.get("estimated_tokens")

    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(["show", result.run_id, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    for expected in (result.run_id, graph, "succeeded", "calls", "stop reason"):
        assert expected in out
    for node in record.meta["spec"]["nodes"]:  # the timeline has a step for every node
        assert f". {node} (" in out
