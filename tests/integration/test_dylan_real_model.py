"""DyLAN end to end on the real SmolLM2, served by llama-cpp-python's OpenAI-compatible server: ``dylan_mmlu``
(a 4-role team, ratings, the ranker, importance scores) and ``dylan_math`` run to completion, are stored, and
``agentmesh optimize`` ranks a team over two questions. SmolLM2-135M answers poorly and rarely follows the
rating format; what is checked is that the whole method runs on a real model and its bookkeeping holds (every
layer's importance sums to 1 up to the last layer that ran, every call stored with real usage).

The cards' token limits are cut so that a layer of answers fits the server's 2048-token context.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from agentmesh.datasets import read_items
from agentmesh.optimize import optimize
from agentmesh.runtime import run
from agentmesh.spec import GraphSpec, load_graph
from agentmesh.spec.operators import RoundsParams
from agentmesh.store import Store

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed: pip install 'agentmesh[local]' to run the real-model tests",
    ),
]

REPO = Path(__file__).resolve().parents[2]
TEAM = ["economist", "doctor", "mathematician", "historian"]


def small(spec: GraphSpec, *, team: list[str] | None = None, max_tokens: int = 48) -> GraphSpec:
    agents = {
        name: card.model_copy(update={"sampling": card.sampling.model_copy(update={"max_tokens": max_tokens})})
        for name, card in spec.agents.items()
    }
    nodes = dict(spec.nodes)
    if team is not None:
        params = nodes["dylan"].params
        assert isinstance(params, RoundsParams)
        nodes["dylan"] = nodes["dylan"].model_copy(update={"params": params.model_copy(update={"agents": team})})
        agents = {k: v for k, v in agents.items() if k in {*team, "ranker"}}
    return spec.model_copy(update={"agents": agents, "nodes": nodes})


def test_dylan_mmlu_runs_on_smollm2(llama_server_url: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    spec = small(load_graph(REPO / "graphs" / "dylan_mmlu.yaml"), team=TEAM)
    inputs = {"question": "What is 17*3?", "choices": ["41", "51", "61", "71"]}
    result = run(spec, inputs, model=f"openai:smollm2@{llama_server_url}", store=db)
    assert result.status == "succeeded" and result.stop_reason
    history = result.outputs["dylan"]["history"]
    assert 1 <= len(history) <= 3 and len(history[0]["nodes"]) == 4
    scores = result.outputs["importance"]["importance"]
    last = scores["last_round"]
    assert scores["layer_sums"][:last] == pytest.approx([1.0] * last)
    assert set(scores["per_agent"]) == set(TEAM)
    with Store(db) as store:
        calls = store.events(result.run_id, kind="model_call")
    assert len(calls) == result.calls >= 4
    assert all(e.error is None and (e.completion_tokens or 0) > 0 for e in calls)


def test_dylan_math_runs_on_smollm2(llama_server_url: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    spec = small(load_graph(REPO / "graphs" / "dylan_math.yaml"), max_tokens=64)
    result = run(spec, {"problem": "What is 17*3?", "shots": 1}, model=f"openai:smollm2@{llama_server_url}", store=db)
    assert result.status == "succeeded" and result.stop_reason
    assert 4 <= result.calls <= 4 + 4 + 1 + 2
    with Store(db) as store:
        assert store.get_run(result.run_id).totals["calls"] == result.calls


def test_optimize_ranks_a_team_on_smollm2(llama_server_url: str, tmp_path: Path) -> None:
    data = tmp_path / "items.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(item)
            for item in (
                {"question": "What is 2+2?", "choices": ["3", "4", "5", "6"], "answer": "B"},
                {"question": "Which is a planet?", "choices": ["Moon", "Sun", "Mars", "Comet"], "answer": "C"},
            )
        )
    )
    spec = small(load_graph(REPO / "graphs" / "dylan_mmlu.yaml"), team=TEAM, max_tokens=32)
    result = optimize(
        spec,
        read_items(data, spec),
        top_k=2,
        model=f"openai:smollm2@{llama_server_url}",
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        concurrency=2,
    )
    assert not result.failed
    assert sorted(result.ranking) == sorted(TEAM) and len(result.team) == 2
    assert sum(result.scores.values()) > 0


def test_dylan_code_runs_on_smollm2(llama_server_url: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    spec = small(load_graph(REPO / "graphs" / "dylan_code.yaml"), max_tokens=64)
    inputs = {"prompt": 'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n', "entry_point": "add"}
    result = run(spec, inputs, model=f"openai:smollm2@{llama_server_url}", store=db)
    assert result.status == "succeeded" and result.stop_reason
    out = result.outputs["dylan"]
    assert out["history"][0]["kind"] == "writers" and len(out["history"][0]["nodes"]) == 4
    scores = result.outputs["importance"]["importance"]
    last = scores["last_round"]
    assert scores["layer_sums"][:last] == pytest.approx([1.0] * last)
    with Store(db) as store:
        assert len(store.events(result.run_id, kind="model_call")) == result.calls >= 4
