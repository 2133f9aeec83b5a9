"""The runtime on scripted models: operators, stop policies, budgets, recording, resume."""

from __future__ import annotations

import asyncio
import importlib
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import ConfigError, ScriptExhaustedError, SpecError, StoreError
from agentmesh.models import ScriptedModel
from agentmesh.runtime import RunError, aresume, arun, register_function, resume, run
from agentmesh.runtime import context as context_module
from agentmesh.runtime.voting import consensus_reached, majority
from agentmesh.spec import Consensus, graph_from_data
from agentmesh.spec.loader import stored_graph
from agentmesh.spec.stop import Budget
from agentmesh.store import Store

DEBATER = {
    "prompt": "{{ question }}{% for p in previous %}\nPeer: {{ p.text }}{% endfor %}"
    "{% if own_previous %}\nYou said: {{ own_previous }}{% endif %}",
    "parser": "boxed_math",
}


def debate(rounds: int = 4, n: int = 3, **extra: Any) -> Any:
    return graph_from_data(
        {
            "name": "debate",
            "inputs": {"question": {}},
            "agents": {"debater": DEBATER},
            "nodes": {
                "debate": {
                    "op": "rounds",
                    "agents": ["debater"] * n,
                    "rounds": rounds,
                    "stop": {"consensus": {}},
                    **extra,
                },
                "vote": {"op": "vote", "from": "debate"},
            },
            "edges": [["debate", "vote"]],
        }
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_consensus_in_round_2_of_4_stops_after_round_2_with_exactly_the_expected_calls(db: str) -> None:
    model = ScriptedModel(
        [
            {"agent": "debater", "round": 1, "responses": ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"]},
            {"agent": "debater", "round": 2, "responses": ["\\boxed{7}", "\\boxed{7}", "\\boxed{7}"]},
        ]
    )
    result = run(debate(rounds=4), {"question": "q?"}, model=model, store=db)
    model.assert_complete()  # exactly 6 calls: 3 in round 1, 3 in round 2, none in rounds 3-4
    assert result.answer == "7" and result.calls == 6
    assert result.stop_reason == "consensus (> 0.667 of active agents agree) at round 2 in node 'debate'"
    with Store(db) as store:
        events = store.events(result.run_id, kind="model_call")
        run_record = store.get_run(result.run_id)
    assert sorted((e.round, e.call_index) for e in events) == [(r, s) for r in (1, 2) for s in range(3)]
    assert run_record.status == "succeeded" and run_record.stop_reason == result.stop_reason


def test_no_consensus_runs_all_rounds_then_votes(db: str) -> None:
    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{ {{- call_index if round < 3 else 9 -}} }"}])
    result = run(debate(rounds=3), {"question": "q"}, model=model, store=db)
    assert result.calls == 9
    assert result.answer == "9"  # round 3 all agree: consensus at the last round
    model2 = ScriptedModel([{"agent": "debater", "template": "\\boxed{ {{- call_index -}} }"}])
    result2 = run(debate(rounds=2), {"question": "q"}, model=model2, store=db)
    assert result2.calls == 6 and result2.stop_reason == "completed: every node ran"
    assert result2.answer == "0"  # no majority: the first answer seen wins the tie


def test_previous_answers_are_shown_shuffled_anonymously_with_own_previous(db: str) -> None:
    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{ {{- call_index -}} } from {{ call_index }}"}])
    run(debate(rounds=2, shuffle=True, seed=3), {"question": "Q"}, model=model, store=db)
    round2 = [c for c in model.calls if c.context.round == 2]
    assert len(round2) == 3
    for call in round2:
        peers = [line for line in call.prompt.splitlines() if line.startswith("Peer: ")]
        assert sorted(peers) == [f"Peer: \\boxed{{{i}}} from {i}" for i in range(3)]  # include_self: all three
        assert f"You said: \\boxed{{{call.context.call_index}}}" in call.prompt
    orders = {tuple(line for line in c.prompt.splitlines() if line.startswith("Peer")) for c in round2}
    assert len(orders) > 1, "seeded shuffle gives agents different orders"


def test_include_self_false_hides_own_answer(db: str) -> None:
    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{ {{- call_index -}} }"}])
    run(debate(rounds=2, include_self=False), {"question": "Q"}, model=model, store=db)
    for call in (c for c in model.calls if c.context.round == 2):
        peers = [line for line in call.prompt.splitlines() if line.startswith("Peer: ")]
        assert len(peers) == 2 and f"Peer: \\boxed{{{call.context.call_index}}}" not in peers


def test_sequential_activation_stops_mid_layer(db: str) -> None:
    # 3 agents; every answer is 5: after 3 answers... strict 2/3 needs > 2 agreeing, i.e. all 3.
    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{5}"}])
    result = run(debate(rounds=4, activation="sequential"), {"question": "q"}, model=model, store=db)
    assert result.calls == 3 and result.answer == "5"
    # 4 agents: > floor(8/3)=2 agreeing means 3 — the 4th agent of round 1 is never called.
    model4 = ScriptedModel([{"agent": "debater", "template": "\\boxed{5}"}])
    result4 = run(debate(rounds=4, n=4, activation="sequential"), {"question": "q"}, model=model4, store=db)
    assert result4.calls == 3
    parallel = ScriptedModel([{"agent": "debater", "template": "\\boxed{5}"}])
    assert run(debate(rounds=4, n=4), {"question": "q"}, model=parallel, store=db).calls == 4


def test_call_budget_is_never_exceeded_by_a_parallel_team(db: str) -> None:
    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{ {{- call_index -}} }", "delay_s": 0.01}])
    result = run(debate(rounds=4, n=7), {"question": "q"}, model=model, store=db, budget=Budget(calls=10))
    assert result.calls == 10
    assert result.stop_reason.startswith("budget: 10 model calls")
    assert result.answer is not None  # best answer so far: the last layer's majority
    with Store(db) as store:
        assert len(store.events(result.run_id, kind="model_call")) == 10


def test_a_token_budget_overshot_by_calls_in_flight_is_said_in_the_stop_reason(db: str) -> None:
    """Tokens are known only after a call: a parallel team's calls all start under the budget and finish past it.
    With no call after them to refuse, the run reaches its end; its stop reason said "every node ran", as if the
    budget had been kept."""
    spec = graph_from_data(
        {
            "name": "sampled",
            "inputs": {"question": {}},
            "agents": {"solver": {"prompt": "{{ question }}", "parser": "boxed_math"}},
            "nodes": {"team": {"op": "team", "agents": ["solver"] * 3}, "vote": {"op": "vote", "from": "team"}},
            "edges": [["team", "vote"]],
        }
    )
    model = ScriptedModel([{"agent": "solver", "template": "The answer is \\boxed{4}", "delay_s": 0.01}])
    result = run(spec, {"question": "What is 2+2?"}, model=model, store=db, budget={"tokens": 5})
    spent = result.prompt_tokens + result.completion_tokens
    assert result.calls == 3 and spent > 5 and result.answer == "4"
    assert result.stop_reason == (
        f"completed: every node ran; over budget: {spent} tokens spent of 5 (calls in flight when it was reached)"
    )
    with Store(db) as store:
        assert store.get_run(result.run_id).stop_reason == result.stop_reason
    kept = run(spec, {"question": "What is 2+2?"}, model=model, store=db, budget={"tokens": 10_000})
    assert kept.stop_reason == "completed: every node ran"


def test_graph_level_budget_from_spec(db: str) -> None:
    spec = debate(rounds=4, n=3).model_copy(update={"stop": Budget(calls=4)})
    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{ {{- call_index -}} }"}])
    result = run(spec, {"question": "q"}, model=model, store=db)
    assert result.calls == 4 and "budget" in (result.stop_reason or "")


def test_inputs_are_checked_before_anything_is_stored(db: str) -> None:
    model = ScriptedModel([])
    with pytest.raises(ConfigError, match="missing input 'question'"):
        run(debate(), {}, model=model, store=db)
    with pytest.raises(ConfigError, match=r"unknown input\(s\) questoin"):
        run(debate(), {"question": "a", "questoin": "b"}, model=model, store=db)
    with pytest.raises(ConfigError, match="input 'question' should be string, got int"):
        run(debate(), {"question": 3}, model=model, store=db)
    with Store(db) as store:
        assert store.list_runs() == []


def test_resume_serves_finished_calls_and_never_repeats_them(db: str) -> None:
    failing = ScriptedModel(
        [
            {"agent": "debater", "round": 1, "responses": ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"]},
            {"agent": "debater", "round": 2, "responses": ["\\boxed{4}"]},  # 2 calls of round 2 find no rule
        ]
    )
    with pytest.raises(ScriptExhaustedError):
        run(debate(rounds=3), {"question": "q"}, model=failing, store=db)
    with Store(db) as store:
        (failed,) = store.list_runs()
        made = store.events(failed.id, kind="model_call")
    assert failed.status == "failed"
    done_keys = {(e.round, e.call_index) for e in made if e.response is not None}
    assert {(1, 0), (1, 1), (1, 2)} <= done_keys

    fresh = ScriptedModel([{"agent": "debater", "template": "\\boxed{8}"}])
    told: list[dict[str, Any]] = []
    result = resume(  # the blocking form of aresume
        failed.id, store=db, model=fresh, listeners=[lambda kind, data: told.append(data) if kind == "call" else None]
    )
    # listeners are told which answers were served from the record (a batch's progress counts calls made only)
    assert sum(1 for d in told if d["served"]) == 1 and sum(1 for d in told if not d["served"]) == 5
    assert result.status == "succeeded" and result.answer == "8"
    # Round 1 resumes from its checkpoint; in round 2 the one finished call is served from the record.
    assert result.served_from_record == 1
    assert len(fresh.calls) == 5  # round 2: two calls; round 3: three
    # The resumed run asked the new model only for calls that had not completed before.
    asked = {(c.context.round, c.context.call_index) for c in fresh.calls}
    assert asked.isdisjoint(done_keys)
    with Store(db) as store:
        events = [e for e in store.events(failed.id, kind="model_call") if e.response is not None]
    keys = [(e.round, e.call_index) for e in events]
    assert len(keys) == len(set(keys)), "no call was made twice"


def test_resume_refuses_a_run_its_live_process_is_running_unless_forced(db: str) -> None:
    """Resumed beside the process still running it, a run would make its calls twice; the Python API refuses as
    the command line does (a run left running by a dead process resumes: tests/unit/test_store_owner.py)."""
    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{8}"}])
    first = run(debate(rounds=2), {"question": "q"}, model=model, store=db)
    with Store(db) as store:
        store.mark_running(first.run_id)  # as while this process runs it
    with pytest.raises(ConfigError, match=rf"run {first.run_id} is still being run by process {os.getpid()} on "):
        resume(first.run_id, store=db, model=model)
    calls = len(model.calls)
    result = resume(first.run_id, store=db, model=model, force=True)
    assert result.status == "succeeded" and result.answer == "8" and len(model.calls) == calls  # all recorded


def test_two_resumes_of_one_run_at_once_resume_it_once(db: str) -> None:
    """Both read the failed run as failed and both resumed it, making its remaining calls twice into one record;
    now the run is claimed, and the second resume changes nothing."""
    failing = ScriptedModel([{"agent": "debater", "round": 1, "responses": ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"]}])
    with pytest.raises(ScriptExhaustedError):
        run(debate(rounds=2), {"question": "q"}, model=failing, store=db)
    with Store(db) as store:
        (failed,) = store.list_runs()
    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{5}", "delay_s": 0.02}])

    async def both() -> list[Any]:
        with Store(db) as store:
            return await asyncio.gather(
                aresume(failed.id, store=store, model=model),
                aresume(failed.id, store=store, model=model),
                return_exceptions=True,
            )

    outcomes = asyncio.run(both())
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(done) == 1 and done[0].status == "succeeded", outcomes
    assert len(refused) == 1 and isinstance(refused[0], ConfigError)
    assert f"run {failed.id}: process {os.getpid()} on " in str(refused[0]) and "resumed it first" in str(refused[0])
    assert len(model.calls) == 3  # round 2's three calls, once (round 1's were recorded)
    with Store(db) as store:
        events = [e for e in store.events(failed.id, kind="model_call") if e.response is not None]
    keys = [(e.round, e.call_index) for e in events]
    assert len(keys) == len(set(keys)) == 6, "no call was made twice"


def test_resume_detects_a_changed_prompt(db: str, tmp_path: Path) -> None:
    failing = ScriptedModel([{"agent": "debater", "round": 1, "responses": ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"]}])
    with pytest.raises(ScriptExhaustedError):
        run(debate(rounds=2), {"question": "q"}, model=failing, store=db)
    with Store(db) as store:
        (failed,) = store.list_runs()
        spec = dict(failed.meta["spec"])
        spec["agents"]["debater"]["prompt"] = "changed {{ question }}"
        with store.engine.begin() as conn:
            from agentmesh.store.schema import runs

            conn.execute(runs.update().where(runs.c.id == failed.id).values(meta={**failed.meta, "spec": spec}))
    # Without checkpoints the resumed run re-executes round 1 against its recorded calls, whose prompts differ.
    with Store(db) as store:
        store.checkpointer().delete_thread(failed.id)
    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{1}"}])
    with pytest.raises(RunError, match=r"recorded call differs .* node 'debate', agent 'debater', round 1, call 0"):
        asyncio.run(aresume(failed.id, store=db, model=model))
    assert model.calls == []


def test_team_score_rank_and_weighted_vote(db: str) -> None:
    @register_function("length_reward")
    def length_reward(answer: dict[str, Any], inputs: dict[str, Any]) -> float:
        return float(len(answer["text"]))

    @register_function("keep_longest")
    def keep_longest(answers: list[dict[str, Any]], keep: int) -> list[int]:
        order = sorted(range(len(answers)), key=lambda i: -len(answers[i]["text"]))
        return order[:keep]

    spec = graph_from_data(
        {
            "name": "pipeline",
            "inputs": {"question": {}},
            "agents": {
                "solver": {"prompt": "{{ question }} #{{ index }}", "parser": "boxed_math"},
                "judge": {"prompt": "Rate: {{ candidate }}", "parser": {"name": "score", "min": 0, "max": 10}},
            },
            "nodes": {
                "propose": {"op": "team", "agents": ["solver"] * 4},
                "top": {"op": "rank", "from": "propose", "keep": 3, "function": "keep_longest"},
                "judged": {"op": "score", "from": "top", "judge": "judge"},
                "reward": {"op": "score", "from": "top", "function": "length_reward"},
                "final": {"op": "vote", "from": "judged", "weights": "judged"},
            },
            "edges": [
                ["propose", "top"],
                ["top", "judged"],
                ["top", "reward"],
                ["judged", "final"],
                ["reward", "final"],
            ],
            "output": "final",
        }
    )
    model = ScriptedModel(
        [
            {"agent": "solver", "responses": ["\\boxed{1}", "so \\boxed{2}", "then \\boxed{2}", "x \\boxed{1}!"]},
            {"agent": "judge", "prompt": "boxed\\{2\\}", "template": "9 [END]"},
            {"agent": "judge", "prompt": "boxed\\{1\\}", "template": "2 [END]"},
        ]
    )
    result = run(spec, {"question": "q"}, model=model, store=db)
    model.assert_complete()
    top = result.outputs["top"]
    # Longest first; "so ..." and "x ...!" tie at 12 characters and keep their team order.
    assert [a["text"] for a in top["answers"]] == ["then \\boxed{2}", "so \\boxed{2}", "x \\boxed{1}!"]
    assert result.outputs["judged"]["scores"] == [9.0, 9.0, 2.0]
    assert result.outputs["reward"]["scores"] == [14.0, 12.0, 12.0]
    assert result.answer == "2" and result.outputs["final"]["votes"] == {"2": 18.0, "1": 2.0}


def test_branch_and_loop(db: str) -> None:
    @register_function("count_up")
    def count_up(outputs: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        n = int(outputs.get("step", {}).get("n", 0)) + 1
        return {"n": n, "answers": [{"agent": "f", "slot": 0, "text": str(n), "key": "big" if n >= 3 else "small"}]}

    spec = graph_from_data(
        {
            "name": "looping",
            "inputs": {"hard": {"type": "boolean"}},
            "agents": {"solver": {"prompt": "solve"}},
            "nodes": {
                "gate": {"op": "branch", "condition": "hard", "then": "repeat", "else": "easy"},
                "repeat": {
                    "op": "loop",
                    "body": ["step"],
                    "until": {"consensus": {"fraction": 1, "strict": False, "min_agents": 1}},
                    "max_iterations": 5,
                },
                "step": {"op": "function", "function": "count_up"},
                "easy": {"op": "call", "agent": "solver"},
            },
            "output": "repeat",
        }
    )
    result = run(spec, {"hard": True}, model=ScriptedModel([]), store=db)
    assert result.outputs["step"]["n"] == 1 and result.outputs["repeat"]["iteration"] == 1
    # consensus among 1 agent holds at once (all of 1 agree) — the loop exits after one iteration
    assert "after iteration 1" in (result.stop_reason or "")
    easy = ScriptedModel([{"agent": "solver", "responses": ["easy answer"]}])
    result_easy = run(spec.model_copy(update={"output": "easy"}), {"hard": False}, model=easy, store=db)
    easy.assert_complete()
    assert result_easy.answer == "easy answer" and "step" not in result_easy.outputs


def test_a_run_never_hands_work_to_a_worker_thread(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Routes and pass-through nodes are coroutines: LangGraph runs a plain function of an async graph through
    ``run_in_executor``, a thread hand-off per step that cost more than the step (BENCHMARKS.md)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a graph step was handed to a worker thread")

    monkeypatch.setattr(asyncio.BaseEventLoop, "run_in_executor", refuse)
    # rounds followed by a vote: a repeat route and a pass-through exit node
    model = ScriptedModel([], default="\\boxed{7}")
    assert run(debate(rounds=2, stop=None), {"question": "q?"}, model=model, store=db).answer == "7"
    # a branch and a loop: their routes
    spec = graph_from_data(
        {
            "name": "routes",
            "inputs": {"hard": {"type": "boolean"}},
            "agents": {"solver": {"prompt": "solve", "parser": "boxed_math"}},
            "nodes": {
                "gate": {"op": "branch", "condition": "hard", "then": "repeat", "else": "easy"},
                "repeat": {"op": "loop", "body": ["step"], "until": {"max_rounds": 9}, "max_iterations": 2},
                "step": {"op": "call", "agent": "solver"},
                "easy": {"op": "call", "agent": "solver"},
            },
            "output": "repeat",
        }
    )
    result = run(spec, {"hard": True}, model=ScriptedModel([], default="\\boxed{3}"), store=db)
    assert result.status == "succeeded" and result.outputs["repeat"]["iteration"] == 2


def test_loop_until_max_iterations(db: str) -> None:
    @register_function("tick")
    def tick(outputs: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        n = int(outputs.get("work", {}).get("n", 0)) + 1
        return {"n": n, "answers": [{"agent": "f", "slot": 0, "text": "t", "key": None}]}

    spec = graph_from_data(
        {
            "name": "ticks",
            "nodes": {
                "again": {"op": "loop", "body": ["work"], "until": {"max_rounds": 4}, "max_iterations": 10},
                "work": {"op": "function", "function": "tick"},
            },
            "output": "again",
        }
    )
    result = run(spec, {}, model=ScriptedModel([]), store=db)
    assert result.outputs["work"]["n"] == 4 and result.outputs["again"]["iteration"] == 4


def test_voting_maths() -> None:
    assert majority(["a", "b", "b", None]) == "b"
    assert majority(["a", "b"]) == "a"
    assert majority([None, None]) is None
    assert majority(["a", "b", "b"], [5.0, 1.0, 1.0]) == "a"
    strict = Consensus()
    assert not consensus_reached(["x", "x", "y"], strict)  # 2 > floor(2) is false
    assert consensus_reached(["x", "x", "x"], strict)
    assert consensus_reached(["x", "x", "x", "y"], strict)  # 3 > floor(8/3)=2
    assert not consensus_reached(["x", "x", None, None], strict)
    assert consensus_reached(["x", "x", "y"], Consensus(strict=False))  # 2 >= ceil(2)
    assert not consensus_reached(["x"], strict)  # fewer than min_agents


def test_every_call_and_node_result_is_stored(db: str) -> None:
    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{3}"}])
    result = run(debate(rounds=2), {"question": "q"}, model=model, store=db)
    with Store(db) as store:
        calls = store.events(result.run_id, kind="model_call")
        nodes = store.events(result.run_id, kind="node_result")
        record = store.get_run(result.run_id)
    assert len(calls) == 3 and all(c.request_hash and c.response for c in calls)
    assert [n.node for n in nodes] == ["debate", "vote"]
    assert nodes[0].data and nodes[0].data["answers"][0]["key"] == "3"
    assert record.meta["spec"]["name"] == "debate" and record.spec_hash == debate(rounds=2).spec_hash()


def test_a_run_whose_events_could_not_be_stored_ends_failed_not_succeeded(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events are committed by the store's writer thread after the call returns; a failure there still fails the
    run (at its next node, or when its end is committed), with the reason stored."""
    import agentmesh.runtime.recording as recording
    from agentmesh.store.events import event_row

    def failing(kind: str, **fields: Any) -> Any:
        if kind == "model_call" and fields.get("round") == 2:
            raise StoreError("simulated: the disk refused the row")
        return event_row(kind, **fields)

    # (what the recorder builds every row with: the store's event_row, once its first row imported it)
    monkeypatch.setattr(recording, "_event_row", failing)
    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{3}"}])
    spec = debate(rounds=2, stop=None)
    with pytest.raises(StoreError, match="simulated: the disk refused the row"):
        run(spec, {"question": "q"}, model=model, store=db)
    with Store(db) as store:
        (record,) = store.list_runs()
        assert record.status == "failed" and "simulated" in (record.error or "")
        assert len(store.events(record.id, kind="model_call")) == 3  # round 1's calls are stored


def test_a_checkpoint_that_could_not_be_stored_is_reported_by_the_deferring_saver(db: str) -> None:
    with Store(db) as store:
        saver = store.checkpointer().deferring()

        def broken(tx: Any) -> None:
            raise RuntimeError("simulated checkpoint failure")

        asyncio.run(saver._write("thread-1", broken))  # queued: returns before the commit
        store.flush()
        with pytest.raises(StoreError, match=r"thread 'thread-1'.*simulated checkpoint failure"):
            saver.check_writes("thread-1")
        saver.check_writes("thread-1")  # reported once
        saver.check_writes("thread-2")  # other threads are unaffected


def looped_team() -> Any:
    return graph_from_data(
        {
            "name": "looped",
            "inputs": {"question": {}},
            "agents": {"solver": {"prompt": "{{ question }} try", "parser": "boxed_math"}},
            "nodes": {
                "again": {"op": "loop", "body": ["ask"], "until": {"consensus": {}}, "max_iterations": 5},
                "ask": {"op": "team", "agents": ["solver", "solver", "solver"]},
            },
            "output": "again",
        }
    )


def test_calls_in_loop_iterations_have_distinct_record_keys_and_resume(db: str) -> None:
    # Iterations 1-2 disagree; iteration 3 fails part-way (one answer, then no rule).
    failing = ScriptedModel(
        [
            {
                "agent": "solver",
                "responses": [
                    "\\boxed{1}",
                    "\\boxed{2}",
                    "\\boxed{3}",
                    "\\boxed{4}",
                    "\\boxed{5}",
                    "\\boxed{6}",
                    "\\boxed{7}",
                ],
            }
        ]
    )
    with pytest.raises(ScriptExhaustedError):
        run(looped_team(), {"question": "q"}, model=failing, store=db)
    with Store(db) as store:
        (failed,) = store.list_runs()
        nodes = sorted({e.node for e in store.events(failed.id, kind="model_call") if e.response is not None})
    assert nodes == ["ask", "ask#1", "ask#2"]  # the first pass is plain "ask", then "ask#<completed iterations>"
    fresh = ScriptedModel([{"agent": "solver", "template": "\\boxed{9}"}])
    result = asyncio.run(aresume(failed.id, store=db, model=fresh))
    assert result.status == "succeeded" and result.answer == "9"
    assert result.served_from_record == 1  # the one call of iteration 3 that had completed
    # Iteration 3 finishes with 7, 9, 9 (no consensus); iteration 4 agrees.
    assert sorted(c.context.node for c in fresh.calls) == ["ask#2", "ask#2", "ask#3", "ask#3", "ask#3"]


def test_budget_holds_across_resume(db: str) -> None:
    failing = ScriptedModel([{"agent": "debater", "round": 1, "responses": ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"]}])
    with pytest.raises(ScriptExhaustedError):
        run(debate(rounds=4), {"question": "q"}, model=failing, store=db, budget=Budget(calls=5))
    with Store(db) as store:
        (failed,) = store.list_runs()
    assert failed.meta["budget"] == {"kind": "budget", "calls": 5}
    fresh = ScriptedModel([{"agent": "debater", "template": "\\boxed{ {{- call_index -}} }"}])
    result = asyncio.run(aresume(failed.id, store=db, model=fresh))
    # 3 calls before the failure (round 2's calls all failed: their slots were released), 2 left.
    assert len(fresh.calls) == 2 and result.calls >= 5
    assert (result.stop_reason or "").startswith("budget: 5 model calls")


def test_a_graph_langgraph_cannot_build_is_a_config_error_not_a_traceback() -> None:
    from agentmesh.runtime.compile import compile_graph
    from agentmesh.spec import NodeSpec

    spec = graph_from_data(
        {
            "name": "g",
            "inputs": {"q": {}},
            "agents": {"a": {"prompt": "{{ q }}"}},
            "nodes": {"first": {"op": "call", "agent": "a"}, "done": {"op": "vote", "from": "first"}},
            "edges": [["first", "done"]],
        }
    )
    # what validation refuses (a branch routing back before itself), built without it: LangGraph then finds the
    # graph has no entry point; the run must say so in words, naming the graph
    gate = NodeSpec(op="branch", condition="true", then="first")  # type: ignore[call-arg]
    edges = [("first", "gate"), ("first", "done")]
    broken = spec.model_copy(update={"nodes": {**spec.nodes, "gate": gate}, "edges": edges})
    with pytest.raises(ConfigError, match=r"graph 'g' passed validation but LangGraph cannot build it: .*entrypoint"):
        compile_graph(broken, spec_hash="test-broken-graph")


def test_compiled_graphs_are_kept_for_the_specs_used_last_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every spec compiled in a process was kept for good: a search over thousands of team variants, or a service
    building a spec per request, grew without bound."""
    from agentmesh.runtime import compile as compile_module

    monkeypatch.setattr(compile_module, "COMPILED_KEPT", 2)
    monkeypatch.setattr(compile_module, "_compiled", compile_module.OrderedDict())
    specs = [debate(rounds=r) for r in (1, 2, 3)]
    first = compile_module.compile_graph(specs[0])
    compile_module.compile_graph(specs[1])
    assert compile_module.compile_graph(specs[0]).builder is first.builder  # reused, and now the latest used
    compile_module.compile_graph(specs[2])
    assert list(compile_module._compiled) == [specs[0].spec_hash(), specs[2].spec_hash()]


def test_blocking_forms_inside_a_running_loop_say_to_await_and_start_nothing(db: str) -> None:
    """A notebook cell or async code already runs an event loop: ``run()`` cannot block there. The error names
    the awaitable form; nothing is stored and no coroutine is left un-awaited."""
    model = ScriptedModel([{"template": "\\boxed{8}"}])

    async def in_a_loop() -> None:
        with pytest.raises(ConfigError, match=r"running event loop.*await agentmesh\.arun\(\.\.\.\)"):
            run(debate(rounds=1), {"question": "q"}, model=model, store=db)
        with pytest.raises(ConfigError, match=r"await agentmesh\.aresume"):
            resume("no-such-run", store=db)
        result = await arun(debate(rounds=1), {"question": "q"}, model=model, store=db, meta={"by": "test"})
        assert result.status == "succeeded"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would be a RuntimeWarning
        asyncio.run(in_a_loop())
    with Store(db) as store:
        (stored,) = store.list_runs()
    assert len(model.calls) == 3 and stored.meta["by"] == "test"


#: A prompt after a branch's arms join reading the node on one arm: refused when a spec loads (the arm may not
#: run), so built as a stored spec is, without that check, and run without the check a run makes of its graph
#: (:func:`_unchecked`): a run stored before the check, resumed.
EARLY_READ: dict[str, Any] = {
    "name": "early_read",
    "inputs": {"hard": {"type": "boolean"}},
    "agents": {"writer": {"prompt": "Improve on: {{ nodes.deep.text }}"}, "critic": {"prompt": "x"}},
    "nodes": {
        "first": {"op": "call", "agent": "critic"},
        "gate": {"op": "branch", "condition": "hard", "then": "deep", "else": "final"},
        "deep": {"op": "call", "agent": "critic"},
        "final": {"op": "call", "agent": "writer"},
    },
    "edges": [["first", "gate"], ["deep", "final"]],
}


def _unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs no longer check their graph as a file (the check a spec stored before the load check never had)."""
    monkeypatch.setattr(importlib.import_module("agentmesh.runtime.run"), "check_built", lambda *_: None)


def test_a_prompt_reading_a_node_that_has_not_run_says_so(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Jinja's own message ("'dict object' has no attribute 'deep'") does not say that the node exists but did
    not run: the error names it and the guard. (Every such read is refused when a spec loads, unless guarded; a
    spec stored before that check is not refused.)"""
    with pytest.raises(SpecError, match="node 'deep' runs only when branch 'gate' routes to it"):
        graph_from_data(EARLY_READ)
    spec = stored_graph(EARLY_READ, "r0")
    _unchecked(monkeypatch)
    expected = r"nodes\.deep has no output when node 'final' runs: .* guard the read with \{% if nodes\.deep is def"
    with pytest.raises(RunError, match=expected):
        run(spec, {"hard": False}, model=ScriptedModel([], default="ok"), store=db)


def test_a_run_past_a_branch_says_which_nodes_did_not_run(db: str) -> None:
    """ "completed: every node ran" was said of runs whose branch skipped half the graph, and a run whose output
    node was routed past got another node's answer without a word."""
    spec = graph_from_data(
        {
            "name": "gated",
            "inputs": {"hard": {"type": "boolean"}},
            "agents": {"solver": {"prompt": "solve", "parser": "boxed_math"}},
            "nodes": {
                "first": {"op": "call", "agent": "solver"},
                "gate": {"op": "branch", "condition": "hard", "then": "again", "else": "final"},
                "again": {"op": "call", "agent": "solver"},
                "final": {"op": "vote", "from": "first"},
            },
            "edges": [["first", "gate"]],
            "output": "final",
        }
    )
    easy = run(spec, {"hard": False}, model=ScriptedModel([], default="\\boxed{1}"), store=db)
    assert easy.stop_reason == "completed: reached the end; not run (a branch took another route): again"
    hard = run(spec, {"hard": True}, model=ScriptedModel([], default="\\boxed{2}"), store=db)
    assert hard.answer == "2" and hard.stop_reason == (
        "completed: reached the end; not run (a branch took another route): final; the output node 'final' did "
        "not run, so the answer is the latest answer of another node"
    )


@pytest.mark.parametrize("hard", [True, False])
def test_a_node_after_both_arms_of_a_branch_runs_after_the_arm_taken(db: str, hard: bool) -> None:
    """A join waited for every predecessor, the arm the branch did not take included: "branch, then merge" never
    ran the merge and the run still "succeeded", with a node of an arm as its answer."""
    spec = graph_from_data(
        {
            "name": "merge",
            "inputs": {"hard": {"type": "boolean"}},
            "agents": {
                "solver": {"prompt": "solve"},
                "merger": {"prompt": "{{ nodes.slow.text if nodes.slow is defined else nodes.quick.text }}"},
            },
            "nodes": {
                "first": {"op": "call", "agent": "solver"},
                "gate": {"op": "branch", "condition": "hard", "then": "slow", "else": "quick"},
                "slow": {"op": "call", "agent": "solver"},
                "quick": {"op": "call", "agent": "solver"},
                "merge": {"op": "call", "agent": "merger"},
            },
            # ``first`` also feeds the merge directly: it waits for it and for the arm taken
            "edges": [["first", "gate"], ["first", "merge"], ["slow", "merge"], ["quick", "merge"]],
        }
    )
    model = ScriptedModel(
        [
            {"agent": "solver", "node": "first", "responses": ["first"]},
            {"agent": "solver", "node": "slow" if hard else "quick", "responses": ["armed"]},
            {"agent": "merger", "template": "merged {{ prompt }}"},
        ]
    )
    result = run(spec, {"hard": hard}, model=model, store=db)
    model.assert_complete()
    assert result.answer == "merged armed" and result.calls == 3
    assert (
        result.stop_reason
        == f"completed: reached the end; not run (a branch took another route): {'quick' if hard else 'slow'}"
    )


def test_an_unknown_function_fails_before_the_run_is_stored(db: str) -> None:
    """It failed the run at its node, after the model calls of every node before it."""
    spec = graph_from_data(
        {
            "name": "picks",
            "agents": {"solver": {"prompt": "solve"}},
            "nodes": {
                "ask": {"op": "team", "agents": ["solver", "solver"]},
                "choose": {"op": "function", "function": "no_such_function"},
                "judged": {"op": "score", "from": "ask", "function": "no_such_reward"},
            },
            "edges": [["ask", "choose"], ["choose", "judged"]],
        }
    )
    model = ScriptedModel([], default="x")
    expected = (
        r"graph 'picks': nodes\.choose\.function: unknown function 'no_such_function'; registered: .*"
        r"nodes\.judged\.function: unknown function 'no_such_reward'"
    )
    with pytest.raises(ConfigError, match=expected):
        run(spec, {}, model=model, store=db)
    assert model.calls == []
    with Store(db) as store:
        assert store.list_runs() == []


def test_a_cards_own_model_is_resolved_before_the_run_is_stored(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A card's model was resolved at its first call: a key not exported failed the run there, after the calls of
    every node before it."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    spec = graph_from_data(
        {
            "name": "mixed",
            "agents": {"cheap": {"prompt": "x"}, "strong": {"prompt": "y", "model": "openai:gpt-4o-mini"}},
            "nodes": {"draft": {"op": "call", "agent": "cheap"}, "check": {"op": "call", "agent": "strong"}},
            "edges": [["draft", "check"]],
        }
    )
    model = ScriptedModel([], default="ok")
    with pytest.raises(ConfigError, match=r"agent 'strong' \(model openai:gpt-4o-mini\): .*OPENAI_API_KEY is not set"):
        run(spec, {}, model=model, store=db)
    assert model.calls == []
    with Store(db) as store:
        assert store.list_runs() == []


def test_a_prompt_expression_that_fails_on_a_value_is_a_run_error(db: str) -> None:
    """``{{ n + 1 }}`` on a string raised a TypeError from inside Jinja: the command line printed a traceback."""
    spec = graph_from_data(
        {
            "name": "adds",
            "inputs": {"n": {"type": "object"}},
            "agents": {"w": {"prompt": "{{ n.k + 1 }}"}},
            "nodes": {"a": {"op": "call", "agent": "w"}},
        }
    )
    with pytest.raises(RunError, match=r"node 'a': agent 'w': prompt template failed: TypeError: can only concatenate"):
        run(spec, {"n": {"k": "three"}}, model=ScriptedModel([], default="ok"), store=db)


def test_a_run_without_model_calls_cost_nothing_not_an_unknown_amount(db: str) -> None:
    """A run that made no call (functions only, or interrupted before its first) summed no prices: its cost was
    None, which `show` and the summaries read as unknown (n/a)."""

    @register_function("test_no_calls_constant")
    def constant(outputs: Any, inputs: Any) -> dict[str, Any]:
        return {"answer": 1}

    spec = graph_from_data(
        {"name": "no_calls", "nodes": {"f": {"op": "function", "function": "test_no_calls_constant"}}}
    )
    result = run(spec, {}, model=ScriptedModel([]), store=db)
    assert result.calls == 0 and result.cost_usd == 0.0 and result.answer == 1
    with Store(db) as store:
        assert store.get_run(result.run_id).totals["cost_usd"] == 0.0


def test_final_answer_skips_a_node_result_that_is_not_a_mapping() -> None:
    """An imported or hand-edited run's node result is not checked when read back: a string there made ``"answer" in
    out`` a substring test, and a list an AttributeError that broke ``agentmesh runs`` for every run."""
    from agentmesh.runtime.outcome import final_answer

    spec = debate(rounds=1, n=2)
    assert final_answer(spec, {"vote": "the answer is 4", "debate": ["x"]}) == {
        "answer": None,
        "value": None,
        "text": None,
    }
    good = {"vote": {"answer": "4", "value": 4, "text": "\\boxed{4}"}, "debate": "garbled"}
    assert final_answer(spec, good) == {"answer": "4", "value": 4, "text": "\\boxed{4}"}


@pytest.mark.parametrize("error", [RuntimeError("boom"), ConfigError("bad graph")])
def test_a_failure_after_the_run_is_stored_and_before_its_graph_runs_ends_the_run(
    db: str, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """The run's row is stored before its graph is compiled and its last checkpoint read: an error there must end
    the run as failed, in words, not leave it "running" until someone resumes it (it used to)."""
    import importlib

    run_module = importlib.import_module("agentmesh.runtime.run")  # (the package's ``run`` is the function)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise error

    model = ScriptedModel([{"agent": "debater", "template": "\\boxed{1}"}])
    monkeypatch.setattr(run_module, "compile_graph", broken)
    with pytest.raises(type(error)):
        run(debate(rounds=1), {"question": "q"}, model=model, store=db)
    with Store(db) as store:
        (stored,) = store.list_runs()
    assert stored.status == "failed" and stored.stop_reason == "error"
    assert stored.error == ("RuntimeError: boom" if isinstance(error, RuntimeError) else "bad graph")
    assert model.calls == []


def test_the_unfinished_node_hint_names_the_branch_route_the_node_needs_rather_than_an_edge_that_exists(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hint said "add an edge [deep, final]" for a node read after a branch's arm that the run did not take,
    where that edge was in the graph already; it says which route of which branch runs the node, as the load check
    does. A spec with no path from the node to the reader (built here without the check) still gets the edge."""
    spec = stored_graph(EARLY_READ, "r0")
    _unchecked(monkeypatch)
    with pytest.raises(RunError) as e:
        run(spec, {"hard": False}, model=ScriptedModel([], default="ok"), store=db)
    assert (
        "node 'deep' runs only when branch 'gate' routes to it (then: deep), and 'final' runs on its other route too "
        "(else: final); guard the read with {% if nodes.deep is defined %})"
    ) in str(e.value)
    assert "add an edge" not in str(e.value)

    card = spec.agents["writer"]
    unordered = spec.model_copy(update={"edges": [["first", "gate"]]})  # no path from deep to final
    hint = context_module._unfinished_nodes_hint(unordered, card, {"nodes": {}}, "final")
    assert "add an edge [deep, final], or guard the read with {% if nodes.deep is defined %}" in hint
