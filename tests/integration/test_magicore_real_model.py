"""MAgICoRe end to end on the real SmolLM2, served by llama-cpp-python's OpenAI-compatible server: the shipped
``magicore`` and ``magicore_mmlu`` graphs run to completion, every call (Solver, the two LLM judges standing in for
the reward models, Reviewer, Refiner) is stored with the server's real usage, ``agentmesh show`` prints the run
and ``agentmesh replay`` reproduces it without a model call; a mu/sigma calibration runs and is stored. SmolLM2-135M
answers poorly and rarely follows the judges' formats; what is checked is that the whole method runs on a real
model, not its answers.

To stay short on two CPUs the graphs are cut down: k = 2 samples, one round, the cards' token limits cut. With
fewer than four distinct answers no problem is ever hard at the paper's threshold (magicore.md §2.5), and what a
real model answers is not up to the test anyway, so the math run is *made* hard, to go through the Reviewer ->
Refiner path: ``mu`` far above any reachable reward (given as a graph input, which overrides the node's) puts the
majority's quality below average, and a confidence threshold above 1 (confidences are at most 1) makes the answers
count as scattered.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agentmesh.datasets import read_items
from agentmesh.errors import AgentmeshError
from agentmesh.runtime import run
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.spec import GraphSpec
from agentmesh.store import Store
from agentmesh.systems.magicore import calibrate
from agentmesh.systems.magicore.graph import MagicoreParams
from tests._cli import run_cli

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed: pip install 'agentmesh[local]' to run the real-model tests",
    ),
]

QUESTION = "What is 17*3?"
MMLU_QUESTION = (
    "What is 17*3? The options are: A)41 B)51 C)61 D)71\nYour final answer should be chosen from A, B, C or D."
)


def small(spec: GraphSpec, *, max_tokens: int = 48, **params: Any) -> GraphSpec:
    """``spec`` with k = 2, one round and every card's token limit cut (``params`` override more node params)."""
    agents = {
        name: card.model_copy(update={"sampling": card.sampling.model_copy(update={"max_tokens": max_tokens})})
        for name, card in spec.agents.items()
    }
    node = spec.nodes["magicore"]
    assert isinstance(node.params, MagicoreParams)
    new = node.params.model_copy(update={"k": 2, "max_rounds": 1, **params})
    nodes = {**spec.nodes, "magicore": node.model_copy(update={"params": new})}
    return spec.model_copy(update={"agents": agents, "nodes": nodes})


def check_stored(db: str, run_id: str, calls: int) -> Counter[str]:
    """Every model call is stored without error and with the server's real usage; the calls per agent."""
    with Store(db) as store:
        record = store.get_run(run_id)
        events = store.events(run_id, kind="model_call")
    assert record.status == "succeeded" and record.stop_reason
    assert len(events) == calls == record.totals["calls"]
    for event in events:
        assert event.error is None, event.error
        assert event.usage_estimated is False, "llama.cpp's server reports usage: it must be stored, not estimated"
        assert (event.prompt_tokens or 0) > 0 and (event.completion_tokens or 0) > 0
    return Counter(str(e.agent) for e in events)


def show_and_replay(db: str, run_id: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(["show", run_id, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    for expected in (run_id, "magicore", "succeeded", "stop reason", ". magicore ("):
        assert expected in out
    code, replayed, err = run_cli(["replay", run_id, "--db", db], capsys, monkeypatch)
    assert code == 0, err
    return " ".join(replayed.split())


def test_magicore_refines_a_hard_problem_on_smollm2(
    llama_server_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    spec = small(resolve_graph("magicore"), confidence_threshold=1.01)
    inputs = {"question": QUESTION, "mu": 100.0, "sigma": 1.0}
    result = run(spec, inputs, model=f"openai:smollm2@{llama_server_url}", store=db)
    assert result.status == "succeeded", result.stop_reason
    out = result.outputs["magicore"]["magicore"]
    (round0,) = out["rounds"]
    assert round0["hard"] and round0["refined_this_round"] and len(round0["refined"]) == 2
    assert out["stop_reason"] == "max_rounds" and out["n_refinement_rounds"] == 1
    assert round0["mean_z_of_majority_matches"] < -90  # mu = 100 reached the controller
    assert all(0.0 <= s["orm"] <= 1.0 and all(0.0 <= p <= 1.0 for p in s["prm_steps"]) for s in round0["samples"])
    assert len(round0["top_k_used_for_vote"]) == 2  # the vote keeps the best k of the 4 samples
    # 2 Solver samples, 2 Reviewer -> Refiner chains, and each judge scores the 2 samples and the 2 refinements
    agents = check_stored(db, result.run_id, result.calls)
    assert agents == {"solver": 2, "reviewer": 2, "refiner": 2, "orm_judge": 4, "prm_judge": 4}
    replayed = show_and_replay(db, result.run_id, capsys, monkeypatch)
    assert f"identical: {result.calls} calls served, 0 made" in replayed


def test_magicore_mmlu_runs_on_smollm2(
    llama_server_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    spec = small(resolve_graph("magicore_mmlu"))
    result = run(spec, {"question": MMLU_QUESTION}, model=f"openai:smollm2@{llama_server_url}", store=db)
    assert result.status == "succeeded", result.stop_reason
    out = result.outputs["magicore"]["magicore"]
    assert len(out["rounds"]) == 1 and out["stop_reason"] in {"easy", "max_rounds"}
    # the reference's letter rule always yields an answer: a letter A-E, else "N/A" (counted as an answer)
    assert all(s["pred"] in {"A", "B", "C", "D", "E", "N/A"} for s in out["rounds"][0]["samples"])
    assert result.answer in {"A", "B", "C", "D", "E", "N/A"}
    agents = check_stored(db, result.run_id, result.calls)
    refined = 2 if out["rounds"][0]["hard"] else 0
    expected = {"solver": 2, "orm_judge": 2 + refined, "prm_judge": 2 + refined, "reviewer": refined}
    assert agents == {a: n for a, n in {**expected, "refiner": refined}.items() if n}
    replayed = show_and_replay(db, result.run_id, capsys, monkeypatch)
    assert f"identical: {result.calls} calls served, 0 made" in replayed

    # the other way in: the replay model re-runs the stored run from the store, with no model call either
    again = run(spec, {"question": MMLU_QUESTION}, model=f"replay:{result.run_id}", store=db)
    assert again.status == "succeeded" and again.answer == result.answer and again.cost_usd == 0.0
    with Store(db) as store:
        assert store.get_run(again.run_id).totals["calls"] == result.calls


def test_calibration_runs_first_samples_on_smollm2(llama_server_url: str, tmp_path: Path) -> None:
    """Three problems, each the Solver's first sample scored by the two judges: three stored runs of three calls.
    SmolLM2 rarely boxes an answer or writes ``NN [END]``, so its rewards may all be equal (every judge reply
    unreadable: R = 0.5); then sigma is 0 and the calibration says so rather than return it."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    data = tmp_path / "problems.jsonl"
    data.write_text(
        "".join(
            json.dumps(line) + "\n"
            for line in (
                {"question": "What is 17*3?"},
                {"problem": "What is 2+5?", "solution": "\\boxed{7}"},  # MATH-style records are read too
                {"question": "Tom has 3 apples and buys 4 more. How many apples does he have?", "answer": "#### 7"},
            )
        ),
        encoding="utf-8",
    )
    spec = small(resolve_graph("magicore"))
    items = read_items(data, spec)
    model = f"openai:smollm2@{llama_server_url}"

    def calibrated() -> tuple[float, float] | str:
        try:
            found = calibrate(spec, items, model=model, store=db)
        except AgentmeshError as exc:
            assert "so sigma is 0" in str(exc), exc
            return str(exc)
        assert not found.failed and len(found.rewards) == 3 and found.sigma > 0
        assert all(0.0 <= r <= 2.0 for r in found.rewards)
        return found.mu, found.sigma

    first = calibrated()
    with Store(db) as store:
        runs = store.list_runs(graph="magicore_calibration")
        assert len(runs) == 3 and all(r.status == "succeeded" for r in runs)
        calls = [e for r in runs for e in store.events(r.id, kind="model_call")]
    assert Counter(str(e.agent) for e in calls) == {"solver": 3, "orm_judge": 3, "prm_judge": 3}
    assert all(e.error is None and (e.completion_tokens or 0) > 0 and e.usage_estimated is False for e in calls)
    assert calibrated() == first  # the same job again: every run reused, no new call
    with Store(db) as store:
        assert len(store.list_runs(graph="magicore_calibration")) == 3
