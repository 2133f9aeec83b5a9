"""``graphs/magicore.yaml`` on a scripted model: the ``magicore`` operator builds the Solver, Reviewer, Refiner and
the LLM-judge stand-ins for the reward models from the graph's cards, and the controller decides.

The scripted problem is vector B's shape (magicore.md §6): five samples, majority "12" with below-average reward,
four answers -> hard; every sample is reviewed and refined into "15" with high scores -> the majority has no
backing any more (Q is NaN) -> stop after one round with the answer 15: 5 Solver calls, 5 Reviewer and 5 Refiner
calls, and 10 calls of each judge (the Solver's samples and the refinements).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import agentmesh.systems.magicore  # noqa: F401  (registers the magicore operator)
from agentmesh.datasets import read_items
from agentmesh.errors import ConfigError
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.runtime import resume, run
from agentmesh.runtime.operators import register_function
from agentmesh.runtime.replay import areplay
from agentmesh.spec import GraphSpec, load_graph
from agentmesh.spec.stop import Budget
from agentmesh.store import Store
from agentmesh.systems.magicore.graph import MagicoreParams, inline_choices

REPO = Path(__file__).resolve().parents[2]
ITER0 = ["12", "12", "15", "9", "7"]
ORM0 = {"12": 25, "15": 50, "9": 25, "7": 30}
_BOXED = re.compile(r"\\boxed\{([^}]*)\}")


def spec(**params: Any) -> GraphSpec:
    graph = load_graph(REPO / "graphs" / "magicore.yaml")
    node = graph.nodes["magicore"]
    assert isinstance(node.params, MagicoreParams)
    new = node.params.model_copy(update={"k": 5, **params})
    return graph.model_copy(update={"nodes": {"magicore": node.model_copy(update={"params": new})}})


class Script:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.prompts: dict[tuple[str, int, int], str] = {}

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        agent, rnd, slot = str(context.agent), int(context.round or 0), int(context.call_index or 0)
        prompt = request.messages[-1].content
        self.calls.append((agent, rnd, slot))
        self.prompts[(agent, rnd, slot)] = prompt
        revised = "revised" in prompt.split("### Solution:")[-1] or "revised" in prompt.split("### Steps:")[-1]
        if agent == "solver":
            return f"Step 1: think about sample {slot}.\nStep 2: so the answer is \\boxed{{{ITER0[slot]}}}."
        if agent == "reviewer":
            return "Let's review the steps with lower scores and identify the errors. Step 2 is wrong."
        if agent == "refiner":
            return "Step 1: revised reasoning.\nStep 2: so the answer is \\boxed{15}."
        if agent == "orm_judge":
            answer = _BOXED.findall(prompt)[-1]
            return "90 [END]" if revised else f"{ORM0[answer]} [END]"
        if agent == "prm_judge":
            return "[0.9, 0.9]" if revised else "[0.5, 0.5]"
        raise AssertionError(f"unexpected agent {agent}")


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_hard_problem_is_refined_once_then_stops_with_the_refined_answer(tmp_path: Path) -> None:
    script = Script()
    result = run(spec(), {"question": "A shop had 9 toys ..."}, model=ScriptedModel(respond=script), store=db(tmp_path))
    assert result.status == "succeeded", result.stop_reason
    assert result.answer == "15"
    assert result.stop_reason == "magicore: easy after 1 refinement round(s); answer '15' in node 'magicore'"
    out = result.outputs["magicore"]["magicore"]
    assert out["majority"] == "12" and out["stop_reason"] == "easy" and out["n_refinement_rounds"] == 1
    assert [r["hard"] for r in out["rounds"]] == [True, False]
    assert out["rounds"][0]["orm_conf"] < 0.5 and out["rounds"][1]["mean_z_of_majority_matches"] is None
    counts = Counter(agent for agent, _, _ in script.calls)
    assert counts == {"solver": 5, "reviewer": 5, "refiner": 5, "orm_judge": 10, "prm_judge": 10}
    # record keys: round = the iteration the call belongs to, slot = the sample's index -- all distinct
    assert len(set(script.calls)) == len(script.calls)
    assert {(r, s) for a, r, s in script.calls if a == "reviewer"} == {(1, i) for i in range(5)}
    # the Reviewer sees the solution with per-step scores (PRM judge 0.5 -> 5/10), the Refiner also the feedback
    shown = script.prompts[("reviewer", 1, 0)]
    assert "Step 1: think about sample 0.  (Score: 5/10)\n\nStep 2: so the answer is \\boxed{12}.  (Score: 5/10)" in (
        shown
    )
    assert "Step 2 is wrong." in script.prompts[("refiner", 1, 0)]
    assert "[1] Step 1: think about sample 0." in script.prompts[("prm_judge", 0, 0)]


def test_reward_functions_replace_the_judges_and_reference_compat_runs_every_round(tmp_path: Path) -> None:
    @register_function("test_magicore_orm")
    def orm(question: str, solutions: Sequence[str]) -> list[float]:
        return [0.9 if "revised" in s else ORM0[_BOXED.findall(s)[-1]] / 100 for s in solutions]

    @register_function("test_magicore_prm")
    async def prm(question: str, steps: Sequence[str]) -> list[float]:
        return [0.9 if "revised" in " ".join(steps) else 0.5 for _ in steps]

    base = load_graph(REPO / "graphs" / "magicore.yaml")
    graph = spec(
        orm_judge=None,
        prm_judge=None,
        orm_function="test_magicore_orm",
        prm_function="test_magicore_prm",
        reference_compat=True,
    )
    compat = graph.model_copy(update={"agents": {k: v for k, v in base.agents.items() if "judge" not in k}})
    script = Script()
    result = run(compat, {"question": "q"}, model=ScriptedModel(respond=script), store=db(tmp_path))
    assert result.status == "succeeded", result.stop_reason
    out = result.outputs["magicore"]["magicore"]
    # refine.py's loop: hard, easy (copies iteration 0 forward), hard again -> refined twice, three rounds
    assert [r["hard"] for r in out["rounds"]] == [True, False, True]
    assert out["stop_reason"] == "max_rounds" and result.answer == "15"
    counts = Counter(agent for agent, _, _ in script.calls)
    assert counts == {"solver": 5, "reviewer": 10, "refiner": 10}
    assert {r for a, r, _ in script.calls if a == "refiner"} == {1, 3}


def test_params_need_exactly_one_source_per_reward_model() -> None:
    with pytest.raises(ValueError, match="exactly one of orm_judge"):
        MagicoreParams(solver="s", reviewer="r", refiner="f", prm_judge="p", mu=1.0, sigma=0.5)
    with pytest.raises(ValueError, match="different agents"):
        MagicoreParams(solver="s", reviewer="s", refiner="f", orm_judge="o", prm_judge="p", mu=1.0, sigma=0.5)


def test_missing_question_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="graph input 'problem'"):
        run(
            spec(question_input="problem"), {"question": "q"}, model=ScriptedModel(respond=Script()), store=db(tmp_path)
        )


def test_a_spent_budget_stops_the_run_with_its_reason(tmp_path: Path) -> None:
    script = Script()
    result = run(
        spec(), {"question": "q"}, model=ScriptedModel(respond=script), store=db(tmp_path), budget=Budget(calls=7)
    )
    assert result.answer is None
    assert result.stop_reason == "budget: 7 model calls in node 'magicore'"
    assert len(script.calls) == 7


def test_a_run_replays_with_no_model_call(tmp_path: Path) -> None:
    """Every component call has its own record key (round = iteration, slot = sample), whatever order the
    concurrent Reviewer -> Refiner chains finish in, so the stored run replays call for call."""
    store = db(tmp_path)
    result = run(spec(), {"question": "q"}, model=ScriptedModel(respond=Script()), store=store)
    # areplay takes a GraphSpec (the blocking replay() is typed for a name or path only)
    report = asyncio.run(areplay(result.run_id, store=store, graph=spec()))
    assert report.identical, (report.differences, report.unused, report.divergence)
    assert report.calls_made == 0 and report.served == 35 and report.answer == "15"


def test_multiple_choice_graph_votes_on_letters_and_counts_n_a_as_an_answer(tmp_path: Path) -> None:
    def respond(request: ModelRequest, context: CallContext) -> str:
        prompt = request.messages[-1].content
        if context.agent == "solver":
            return "Step 1: hmm.\nStep 2: 42" if context.call_index == 3 else "Step 1: add.\nStep 2: \\boxed{B)3}"
        if context.agent == "orm_judge":
            return "80 [END]" if "B)3" in prompt.split("### Solution:")[-1] else "20 [END]"
        if context.agent == "prm_judge":
            return "[0.9, 0.9]"
        raise AssertionError(f"an easy problem calls no {context.agent}")

    graph = load_graph(REPO / "graphs" / "magicore_mmlu.yaml")
    node = graph.nodes["magicore"]
    assert isinstance(node.params, MagicoreParams)
    graph = graph.model_copy(
        update={"nodes": {"magicore": node.model_copy(update={"params": node.params.model_copy(update={"k": 4})})}}
    )
    question = "What is 1+2? The options are: A)2 B)3 C)4 D)5\nYour final answer should be chosen from A, B, C or D."
    result = run(graph, {"question": question}, model=ScriptedModel(respond=respond), store=db(tmp_path))
    assert result.status == "succeeded", result.stop_reason
    out = result.outputs["magicore"]["magicore"]
    assert result.answer == "B" and out["stop_reason"] == "easy"
    assert out["rounds"][0]["weighted_votes"] == pytest.approx({"B": 3 * (0.8 + 0.81), "N/A": 0.2 + 0.81})


def test_an_unreadable_judge_reply_is_no_evidence_not_a_zero(tmp_path: Path) -> None:
    """The ORM judge card's parser has no fallback score: a reply without ``NN [END]`` (what small models
    write) counts as 0.5, as the PRM judge's unreadable list does -- not as a confident "certainly wrong"."""

    def respond(request: ModelRequest, context: CallContext) -> str:
        if context.agent == "solver":
            return "Step 1: add.\nStep 2: so \\boxed{51}."
        if context.agent == "orm_judge":
            return "17*3 = 54" if context.call_index == 0 else "80 [END]"
        return "no list here"

    result = run(spec(k=2), {"question": "q"}, model=ScriptedModel(respond=respond), store=db(tmp_path))
    samples = result.outputs["magicore"]["magicore"]["rounds"][0]["samples"]
    assert [s["orm"] for s in samples] == [0.5, 0.8]
    assert [s["prm_steps"] for s in samples] == [[0.5, 0.5], [0.5, 0.5]]


def test_a_run_cut_short_mid_refinement_resumes_without_repeating_a_call(tmp_path: Path) -> None:
    """The whole loop is one graph step, so a failure inside round 1 loses the step; the calls it had finished are
    in the store and a resumed run is served them back: only the calls that never finished are made again."""
    store = db(tmp_path)
    broken = Script()

    def fails_at_the_third_refiner(request: ModelRequest, context: CallContext) -> str:
        if context.agent == "refiner" and sum(1 for a, _, _ in broken.calls if a == "refiner") == 2:
            raise ConnectionError("the server went away")
        return broken(request, context)

    with pytest.raises(Exception, match="the server went away"):
        run(spec(), {"question": "q"}, model=ScriptedModel(respond=fails_at_the_third_refiner), store=store)
    with Store(store) as db_:
        (record,) = db_.list_runs()
        done_before = len(db_.events(record.id, kind="model_call"))
    assert record.status != "succeeded" and done_before >= 5 + 10 + 5 + 2  # Solver, judges, Reviewers, 2 Refiners

    again = Script()
    result = resume(record.id, store=store, model=ScriptedModel(respond=again))
    assert result.status == "succeeded" and result.answer == "15"
    assert len(again.calls) == 35 - done_before  # only what had not finished
    assert {a for a, _, _ in again.calls} <= {"reviewer", "refiner", "orm_judge", "prm_judge"}


def test_mmlu_options_given_apart_are_written_into_the_question(tmp_path: Path) -> None:
    """MMLU-style data keeps the options in ``choices``; every card reads the question with them inline, in the
    reference's form, and an MMLU-style JSONL line fills both inputs."""
    seen: dict[str, str] = {}

    def respond(request: ModelRequest, context: CallContext) -> str:
        seen.setdefault(str(context.agent), request.messages[-1].content)
        if context.agent == "solver":
            return "Step 1: 17*3 = 51.\nStep 2: so B)"
        return "90 [END]" if context.agent == "orm_judge" else "[0.9, 0.9]"

    graph = load_graph(REPO / "graphs" / "magicore_mmlu.yaml")
    data = tmp_path / "mmlu.jsonl"
    data.write_text('{"question": "What is 17*3?", "choices": ["41", "51", "61", "71"], "answer": 1}\n')
    (item,) = read_items(data, graph)
    assert item.inputs["choices"] == ["41", "51", "61", "71"] and item.extra == {"answer": 1}
    result = run(graph, item.inputs, model=ScriptedModel(respond=respond), store=db(tmp_path))
    assert result.status == "succeeded" and result.answer == "B"
    inline = "What is 17*3? The options are: A)41 B)51 C)61 D)71\nYour final answer should be chosen from A, B, C or D."
    assert set(seen) == {"solver", "orm_judge", "prm_judge"} and all(inline in prompt for prompt in seen.values())
    assert inline_choices("Pick one.", ["x", "y"]).endswith("A)x B)y\nYour final answer should be chosen from A or B.")
    with pytest.raises(ConfigError, match="at most 5 options"):
        run(
            graph,
            {"question": "q", "choices": list("abcdef")},
            model=ScriptedModel(respond=respond),
            store=db(tmp_path),
        )
