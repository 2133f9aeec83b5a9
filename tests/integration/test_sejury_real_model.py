"""SE-Jury end to end on the real SmolLM2, served by llama-cpp-python's OpenAI-compatible server: the shipped jury
graph scores an artifact with all six judges, and a calibration chooses a team on labelled items and checks it on
a held-out one. SmolLM2-135M rarely writes ``NN [END]``; what is checked is that the method runs on a real model
and its bookkeeping holds (every judge's call stored with real usage, unparsed replies counted 0 and named).

The cards' token limits are cut to keep the test short.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from agentmesh.datasets import read_items
from agentmesh.runtime import run
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.spec import GraphSpec
from agentmesh.store import Store
from agentmesh.systems.sejury import JuryConfig
from agentmesh.systems.sejury.jury import calibrate

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed: pip install 'agentmesh[local]' to run the real-model tests",
    ),
]

INPUTS = {
    "query": "Return the sum of a list of numbers.",
    "artifact": "def total(xs):\n    return sum(xs)",
    "reference": "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s",
}


def small(spec: GraphSpec, max_tokens: int = 32) -> GraphSpec:
    agents = {
        name: card.model_copy(update={"sampling": card.sampling.model_copy(update={"max_tokens": max_tokens})})
        for name, card in spec.agents.items()
    }
    return spec.model_copy(update={"agents": agents})


def test_the_jury_scores_an_artifact_on_smollm2(llama_server_url: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run(small(resolve_graph("sejury")), INPUTS, model=f"openai:smollm2@{llama_server_url}", store=db)
    assert result.status == "succeeded" and result.calls == 8
    verdict = result.outputs["jury"]
    assert set(verdict["raw"]) == {"S1_1", "S1_2", "S2", "S3", "S4", "S5"}
    assert all(0 <= v <= 100 for v in verdict["raw"].values())
    assert all(1 <= v <= 5 for v in verdict["scaled"].values()) and 1 <= result.answer <= 5
    with Store(db) as store:
        calls = store.events(result.run_id, kind="model_call")
    assert len(calls) == 8 and all(e.error is None and (e.completion_tokens or 0) > 0 for e in calls)


def test_calibration_runs_on_smollm2(llama_server_url: str, tmp_path: Path) -> None:
    data = tmp_path / "labelled.jsonl"
    rows = [
        {**INPUTS, "human": 5},
        {**INPUTS, "artifact": "def total(xs):\n    return 0", "human": 1},
        {**INPUTS, "artifact": "def total(xs):\n    return sum(xs[1:])", "human": 2},
        {**INPUTS, "artifact": "def total(xs):\n    return sum(x for x in xs)", "human": 5},
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    spec = small(resolve_graph("sejury"))
    items = read_items(data, spec, keep={"human"})
    config = JuryConfig(judges=("S1_1", "S3"), team_must_contain_any_of=("S1_1",), n_calibration=3)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    found = calibrate(spec, items, config=config, model=f"openai:smollm2@{llama_server_url}", store=db)
    assert found.team == ("S1_1", "S3")  # the only team of two
    assert len(found.calibration) == 3 and len(found.held_out) == 1 and not found.failed
    assert all(set(i.raw) == {"S1_1", "S3"} for i in found.calibration)
    assert sum(i.calls for i in found.calibration) == 6 and found.held_out[0].calls == 2
    assert found.held_out[0].score is not None and 1 <= found.held_out[0].score <= 5
