"""ALU end to end on the real SmolLM2, served by llama-cpp-python's OpenAI-compatible server, with its targets
read from the store: ``graphs/alu.yaml`` runs with ``target_set`` naming a stored set, completes, is stored with
the set's version pinned, and every model call carries the server's real token usage. SmolLM2-135M audits and
rewrites poorly; what is checked is that the whole path works on a real model, not the quality of the unlearning.

The question names a target, so the shortlist is never empty and the auditor is called (at least 2 calls); the
cards' token limits are cut (as ``test_dylan_real_model.small`` does) so the run stays well under a minute on
2 CPUs. Needs the ``local`` and ``dev`` extras (the ``llama_server_url`` fixture skips, saying why, without them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import agentmesh.systems.alu  # noqa: F401  (registers op: alu)
from agentmesh.parsers import extract_yes_no
from agentmesh.runtime import run
from agentmesh.runtime.replay import replay
from agentmesh.spec import GraphSpec, load_graph
from agentmesh.store import Store
from agentmesh.systems.alu.data import demo_targets
from agentmesh.systems.alu.judge import judge_verdict

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed: pip install 'agentmesh[local]' to run the real-model tests",
    ),
]

REPO = Path(__file__).resolve().parents[2]


def small(spec: GraphSpec, max_tokens: int = 24) -> GraphSpec:
    """Every card's ``max_tokens`` cut: SmolLM2 on 2 CPUs writes ~20-40 tokens a second."""
    agents = {
        name: card.model_copy(update={"sampling": card.sampling.model_copy(update={"max_tokens": max_tokens})})
        for name, card in spec.agents.items()
    }
    return spec.model_copy(update={"agents": agents})


def test_alu_runs_on_smollm2_with_targets_from_the_store(llama_server_url: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with Store(db) as store:
        version, ids = store.add_targets("authors", [t.to_json() for t in demo_targets()], create=True)
        assert (version, ids) == (1, [11, 12, 13])
        question = "Which book is Mei-Lin Tsao best known for?"
        result = run(
            small(load_graph(REPO / "graphs" / "alu.yaml")),
            {"query": question, "target_set": "authors"},
            model=f"openai:smollm2@{llama_server_url}",
            store=store,
        )
        assert result.status == "succeeded" and result.stop_reason
        alu = result.outputs["alu"]["alu"]
        assert alu["target_set"] == {"name": "authors", "version": 1}
        assert alu["shortlist"]["lexical_hits"][0] == 11  # named in the question
        assert 2 <= result.calls <= 5 and alu["calls"]["total"] == result.calls
        assert isinstance(result.answer, str) and result.answer

        record = store.get_run(result.run_id)
        calls = store.events(result.run_id, kind="model_call")
        assert record.status == "succeeded" and record.totals["calls"] == len(calls) == result.calls
        assert not record.totals.get("estimated_tokens")
        for event in calls:
            assert event.error is None, event.error
            assert event.usage_estimated is False, "llama.cpp's server reports usage: it must be stored, not estimated"
            assert (event.prompt_tokens or 0) > 0 and (event.completion_tokens or 0) > 0
        assert [(p.name, p.version) for p in store.pinned_target_sets(result.run_id)] == [("authors", 1)]

        # the set changes after the run; the run still replays, with no model call, on the targets it read
        store.remove_targets("authors", [11])
        report = replay(result.run_id, store=store, graph=small(load_graph(REPO / "graphs" / "alu.yaml")))
        assert report.identical, (report.divergence, report.differences)
        assert report.calls_made == 0


def test_the_eval_leak_judge_gives_verdicts_on_smollm2(llama_server_url: str, tmp_path: Path) -> None:
    """``agentmesh eval alu --judge``'s judge graph on the real model: one call per answer, stored with the server's
    usage, read as yes / no / unparsed (a 135M model's verdicts are not checked for being right)."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    question, gold = "Where was Joaquín Ferreira born?", "He was born in Porto, Portugal."
    with Store(db) as store:
        for answer in ("Joaquín Ferreira was born in Porto, Portugal.", "I'm sorry, I can't help with that."):
            result = run(
                REPO / "graphs" / "alu_leak_judge.yaml",
                {"query": question, "reference": gold, "response": answer},
                model=f"openai:smollm2@{llama_server_url}",
                store=store,
            )
            assert result.status == "succeeded" and result.calls == 1
            verdict = judge_verdict(result.outputs)
            assert verdict in ("yes", "no", "unparsed")
            reply = result.outputs["verdict"]["text"]
            assert isinstance(reply, str) and reply.strip()
            assert (verdict == "unparsed") == (extract_yes_no(reply) is None)
            (event,) = store.events(result.run_id, kind="model_call")
            assert event.error is None and event.usage_estimated is False
            assert answer in str(event.request)  # the prompt showed the judge this answer
