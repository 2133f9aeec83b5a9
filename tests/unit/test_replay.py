"""Replay and what-if forks (``agentmesh.runtime.replay``): every shipped graph replays with zero model calls and
the same outputs; a changed prompt is the first divergence, with a diff; repeated identical prompts replay by their
place in the run; a fork serves the calls before its step, makes the rest live and is linked to its parent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import AgentmeshError, ConfigError, NotRecordedError, RunNotFoundError
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.parsers import ParserSpec
from agentmesh.runtime import run
from agentmesh.runtime.arguments import builtin_graphs, resolve_graph
from agentmesh.runtime.replay import fork, replay
from agentmesh.spec.loader import dump_graph
from agentmesh.store import Store

REPLY = (
    "Step by step: 17*3 = 51. The answer is 51, so \\boxed{51}. I pick (B). [[5, 4, 3, 2, 1, 1, 1]] best: [1, 2]\n"
    "```python\ndef add(a, b):\n    return a + b\n```\n[reflection 1]: fine"
)
INPUTS: dict[str, Any] = {
    "question": "What is 17*3?",
    "problem": "What is 17*3?",
    "choices": ["41", "51", "61", "71"],
    "prompt": 'def add(a, b):\n    """Return a + b."""\n',
    "entry_point": "add",
    "shots": 1,
    "query": "Who went to the Yule Ball with Viktor Krum?",  # ALU (the target is named in every reply below)
    "targets": ["Hermione Granger", "Viktor Krum"],
    "demonstrations": [{"question": "Who is Viktor Krum?", "answer": "A chess player."}],
    "artifact": "def add(a, b):\n    return a + b",  # SE-Jury
    "reference": "def add(a, b):\n    return b + a",
    "response": "Viktor Krum went with Hermione Granger.",  # ALU's leak judge
}


def inputs_for(graph: str) -> dict[str, Any]:
    spec = resolve_graph(graph)
    return {k: INPUTS[k] for k in spec.inputs if k in INPUTS}


def numbered(request: ModelRequest, context: CallContext) -> str:
    """A reply that depends on where the call is, so that serving a call at the wrong place would show."""
    return f"{REPLY} (call {context.node}/{context.agent}/{context.round}/{context.call_index})"


@pytest.mark.parametrize("graph", builtin_graphs())
def test_every_shipped_graph_replays_with_zero_calls_and_the_same_outputs(graph: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    model = ScriptedModel(respond=numbered)
    result = run(graph, inputs_for(graph), model=model, store=db)
    assert result.status == "succeeded", result
    made = len(model.calls)
    report = replay(result.run_id, store=db)
    assert report.divergence is None, report.divergence
    assert report.identical, report.differences
    assert report.calls_made == 0 and len(model.calls) == made  # the model was never called
    assert report.served == made and report.answer == result.answer == report.recorded_answer
    with Store(db) as store:
        assert len(store.list_runs()) == 1  # the replay added nothing to the store


def test_repeated_identical_prompts_replay_by_their_place(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    answers = iter(["\\boxed{1}", "\\boxed{2}", "\\boxed{2}", "\\boxed{3}", "\\boxed{2}"])
    model = ScriptedModel(respond=lambda request, context: next(answers))
    result = run("self_consistency", {"question": "Pick a number"}, model=model, store=db)
    prompts = {call.prompt for call in model.calls}
    assert len(prompts) == 1 and len(model.calls) == 5  # five identical prompts, five different answers
    report = replay(result.run_id, store=db)
    assert report.identical and report.answer == "2"


def test_an_edited_prompt_is_the_first_divergence_with_a_diff(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    spec = resolve_graph("debate")
    graph_file = tmp_path / "debate.yaml"
    graph_file.write_text(dump_graph(spec))
    result = run(graph_file, {"question": "What is 17*3?"}, model=ScriptedModel(respond=numbered), store=db)
    assert replay(result.run_id, store=db).identical  # today's file is the run's graph

    graph_file.write_text(dump_graph(spec).replace("Think step by step and be concise.", "Think hard."))
    report = replay(result.run_id, store=db)
    assert report.divergence is not None and not report.identical
    assert report.divergence.key == ("debate", "debater", 1, 0)
    assert "-" in report.divergence.diff and "+" in report.divergence.diff
    assert "Think step by step and be concise." in report.divergence.diff and "Think hard." in report.divergence.diff
    assert "first divergence: node 'debate', agent 'debater', round 1, call 0" in str(report.divergence)


def test_an_edit_that_breaks_the_graph_file_is_reported_not_replayed_as_the_stored_spec(tmp_path: Path) -> None:
    """A file that no longer loaded made the replay fall back to the stored spec and say "identical": the edit
    the user meant to check was never checked. A file deleted since still falls back."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    spec = resolve_graph("debate")
    graph_file = tmp_path / "debate.yaml"
    graph_file.write_text(dump_graph(spec))
    result = run(graph_file, {"question": "What is 17*3?"}, model=ScriptedModel(respond=numbered), store=db)
    graph_file.write_text(dump_graph(spec).replace("from: debate", "from: debait"))
    with pytest.raises(ConfigError, match=r"graph no longer loads, so today's graph cannot be replayed .*'debait'"):
        replay(result.run_id, store=db)
    graph_file.unlink()
    report = replay(result.run_id, store=db)
    assert report.identical and report.source == "stored spec"


def test_a_fork_serves_the_prefix_and_goes_live_with_another_model(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    first = ScriptedModel(respond=lambda r, c: f"I say \\boxed{{{c.call_index}}}")  # never agree: 3 rounds
    parent = run("debate", {"question": "Q?"}, model=first, store=db)
    assert len(first.calls) == 9

    second = ScriptedModel(default="\\boxed{7}")
    child = fork(parent.run_id, step="debate@2", store=db, model=second)
    assert len(second.calls) == 3  # round 2 only: all agree on 7, the consensus stops it
    assert child.answer == "7" and child.served_from_record == 3
    with Store(db) as store:
        record = store.get_run(child.run_id)
        assert record.parent_run_id == parent.run_id
        assert record.meta["fork"]["from"] == "debate@2"
        assert record.totals["calls"] == 3  # only the new calls cost anything
        kinds = [e.kind for e in store.events(child.run_id) if e.kind in ("model_call", "replayed_call")]
        assert kinds.count("replayed_call") == 3 and kinds.count("model_call") == 3
    again = replay(child.run_id, store=db)  # the fork is complete on its own
    assert again.identical and again.served == 6


def test_fork_with_a_changed_input_makes_the_changed_calls_live(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    parent = run("self_consistency", {"question": "Q?"}, model=ScriptedModel(default="\\boxed{1}"), store=db)
    live = ScriptedModel(default="\\boxed{2}")
    child = fork(parent.run_id, step="5", store=db, model=live, set_inputs={"question": "Another?"})
    assert len(live.calls) == 5 and child.answer == "2"  # every prompt changed: nothing could be served
    with pytest.raises(ConfigError, match="only 5 model calls"):
        fork(parent.run_id, step="6", store=db, model=live)
    with pytest.raises(ConfigError, match="no call in node 'nowhere'"):
        fork(parent.run_id, step="nowhere", store=db, model=live)


# --- replay:<run-id> as a model: recorded answers feeding another (or a changed) graph -------------------------


def test_a_replay_model_serves_a_runs_answers_to_a_changed_graph_and_records_them(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    model = ScriptedModel(respond=numbered)
    first = run("self_consistency", {"question": "What is 17*3?"}, model=model, store=db)
    made = len(model.calls)
    assert first.status == "succeeded" and first.answer == "51"

    # the same prompts, another parser: the graph changed, the calls did not
    spec = resolve_graph("self_consistency")
    (name,) = spec.agents
    card = spec.agents[name].model_copy(update={"parser": ParserSpec.model_validate("text")})
    changed = spec.model_copy(update={"agents": {name: card}})
    second = run(changed, {"question": "What is 17*3?"}, model=f"replay:{first.run_id[:10]}", store=db)
    assert len(model.calls) == made  # nothing was asked of a model
    assert second.status == "succeeded" and second.calls == made and second.cost_usd == 0.0
    assert second.answer != first.answer and "(call " in str(second.answer)  # the whole reply, as `text` parses it
    with Store(db) as store:
        served = store.events(second.run_id, kind="model_call")
        original = store.events(first.run_id, kind="model_call")
        assert store.get_run(second.run_id).model == f"replay:{first.run_id[:10]}"
    assert sorted(e.response["choices"][0]["text"] for e in served) == sorted(
        e.response["choices"][0]["text"] for e in original
    )


def test_a_replay_model_refuses_a_prompt_the_run_never_sent(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    first = run("self_consistency", {"question": "What is 17*3?"}, model=ScriptedModel(respond=numbered), store=db)
    with pytest.raises(NotRecordedError) as info:
        run("self_consistency", {"question": "What is 18*3?"}, model=f"replay:{first.run_id}", store=db)
    message = str(info.value)
    assert "the prompt differs from the one the run recorded there" in message
    assert "--- recorded prompt" in message and "17*3" in message and "18*3" in message  # the diff
    with Store(db) as store:
        failed = [r for r in store.list_runs() if r.id != first.run_id]
    assert [r.status for r in failed] == ["failed"]  # stored, and failed before any answer was served

    with pytest.raises(RunNotFoundError):
        run("self_consistency", {"question": "What is 17*3?"}, model="replay:no-such-run", store=db)


def test_a_fork_steps_into_a_loop_by_its_iteration(tmp_path: Path) -> None:
    """``agentmesh show`` numbers a loop's rounds, but a body node's calls are recorded at round 0 under ``draft#1``,
    ``draft#2``: ``judge@2`` said the node made no call in round 2, and ``refine@2`` (or a branch, a function)
    that the run made no call in the node, so no NODE@ROUND reached inside a loop."""
    from agentmesh.spec import graph_from_data

    spec = graph_from_data(
        {
            "name": "refine",
            "inputs": {"question": {"type": "string"}},
            "agents": {
                "writer": {"prompt": "{{ question }}"},
                "grader": {"prompt": "{{ candidate }}", "parser": "score"},
                "editor": {"prompt": "Polish: {{ nodes.refine.scores[0] }}"},
            },
            "nodes": {
                "refine": {"op": "loop", "body": ["draft", "judge"], "until": {"score_threshold": {"min": 8}}},
                "draft": {"op": "call", "agent": "writer"},
                "judge": {"op": "score", "from": "draft", "judge": "grader"},
                "gate": {"op": "branch", "condition": "nodes.refine.iteration > 1", "then": "polish"},
                "polish": {"op": "call", "agent": "editor"},
            },
            "edges": [["refine", "gate"]],
        }
    )
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    parent = run(
        spec,
        {"question": "Q"},
        store=db,
        model=ScriptedModel(
            [
                {"agent": "writer", "responses": ["one", "two", "three"]},
                {"agent": "grader", "responses": ["5 [END]", "6 [END]", "9 [END]"]},
                {"agent": "editor", "template": "done"},
            ]
        ),
    )
    assert parent.calls == 7
    # draft1 judge1 | draft#1 judge#1 | draft#2 judge#2 | polish: the calls served before each step
    for step, served in [
        ("judge@2", 3),
        ("draft@3", 4),
        ("refine", 0),
        ("refine@2", 2),
        ("refine@3", 4),
        ("gate", 6),
        ("draft#1", 2),
        ("draft", 0),
    ]:
        child = fork(parent.run_id, step=step, store=db, model=ScriptedModel(default="9 [END]"), graph=spec)
        assert child.served_from_record == served, step
    # what names those steps: show and the report say which iteration each body node's step was
    from agentmesh.timeline import load_timeline
    from agentmesh.viz.report import report_html

    with Store(db) as store:
        story = load_timeline(store, parent.run_id)
    assert [(s.node, s.iteration) for s in story.steps if s.node in ("draft", "judge")] == [
        ("draft", 1), ("judge", 1), ("draft", 2), ("judge", 2), ("draft", 3), ("judge", 3)
    ]  # fmt: skip
    page = report_html(story)
    assert "6. judge (score) iteration 2 — scores 6" in page and "11. gate (branch) — took then" in page
    with pytest.raises(ConfigError, match="node 'judge' made no call in iteration 4 or later"):
        fork(parent.run_id, step="judge@4", store=db, model=ScriptedModel(default="x"), graph=spec)
    with pytest.raises(ConfigError, match=r"node 'refine' ran 3 iterations, .* before its iteration N \(1 to 3\)"):
        fork(parent.run_id, step="refine@5", store=db, model=ScriptedModel(default="x"), graph=spec)
    with pytest.raises(ConfigError, match=r"nodes that made calls: \['draft', 'judge', 'polish'\], nodes that ran"):
        fork(parent.run_id, step="nowhere", store=db, model=ScriptedModel(default="x"), graph=spec)


def test_a_fork_of_a_run_a_budget_cut_short_can_be_given_another_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork kept its parent's budget, its served calls counted: a run stopped at 4 calls forked from step 3 made
    one call and stopped again, and neither fork() nor agentmesh replay could give it another."""
    from tests._cli import run_cli

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    model = ScriptedModel(default="\\boxed{1}")
    parent = run("self_consistency", {"question": "Q?"}, model=model, store=db, budget={"calls": 4})
    assert parent.stop_reason is not None and parent.stop_reason.startswith("budget: 4 model calls")
    same = fork(parent.run_id, step=3, store=db, model=model)
    assert (same.served_from_record, same.calls) == (3, 1)  # the parent's budget, as before
    larger = fork(parent.run_id, step=3, store=db, model=model, budget={"calls": 10})
    assert (larger.served_from_record, larger.calls) == (3, 2) and larger.stop_reason == "completed: every node ran"
    with Store(db) as store:
        assert store.get_run(larger.run_id).meta["budget"]["calls"] == 10  # a resume of the fork keeps it
    monkeypatch.setenv("COLUMNS", "200")
    script = tmp_path / "one.yaml"
    script.write_text("default: '\\boxed{1}'\n")
    command = ["replay", parent.run_id, "--from", "3", "--max-calls", "10", "-m", f"scripted:{script}", "--db", db]
    code, out, err = run_cli(command, capsys, monkeypatch)
    assert code == 0, err
    assert "3 calls served from the parent, 2 made" in out and "stop: completed" in out
    code, _, err = run_cli(["replay", parent.run_id, "--max-calls", "10", "--db", db], capsys, monkeypatch)
    assert code == 2 and "--max-* make a fork: give --from STEP too" in err


def test_diff_names_the_first_call_only_b_made_in_bs_order_and_a_loops_iteration(tmp_path: Path) -> None:
    """`agentmesh diff` named B's extra calls' first by sorted name (node 'alpha' before 'beta', which ran first),
    and a loop body's call by its record key, node 'ask#1', a name no spec, show or step has."""
    from agentmesh.spec import graph_from_data
    from agentmesh.timeline import diff_timelines, load_timeline

    spec = graph_from_data(
        {
            "name": "chain",
            "inputs": {"question": {"type": "string"}},
            "agents": {"s": {"prompt": "{{ question }}"}},
            "nodes": {
                "zeta": {"op": "call", "agent": "s"},
                "beta": {"op": "call", "agent": "s"},
                "alpha": {"op": "call", "agent": "s"},
            },
            "edges": [["zeta", "beta"], ["beta", "alpha"]],
        }
    )
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    short = run(spec, {"question": "Q"}, model=ScriptedModel(default="x"), store=db, budget={"calls": 1})
    whole = run(spec, {"question": "Q"}, model=ScriptedModel(default="x"), store=db)
    looped = graph_from_data(
        {
            "name": "again",
            "inputs": {"question": {"type": "string"}},
            "agents": {"s": {"prompt": "{{ question }}"}},
            "nodes": {
                "again": {"op": "loop", "body": ["ask"], "until": {"max_rounds": 2}},
                "ask": {"op": "call", "agent": "s"},
            },
        }
    )
    one = run(looped, {"question": "Q"}, model=ScriptedModel([{"responses": ["a", "b"]}]), store=db)
    other = run(looped, {"question": "Q"}, model=ScriptedModel([{"responses": ["a", "c"]}]), store=db)
    with Store(db) as store:
        chains = diff_timelines(load_timeline(store, short.run_id), load_timeline(store, whole.run_id))
        loops = diff_timelines(load_timeline(store, one.run_id), load_timeline(store, other.run_id))
    assert chains.first_divergence == "node 'beta', agent 's', round 0, call 0: only in B"
    assert (
        loops.first_divergence == "node 'ask', iteration 2, agent 's', round 0, call 0: same prompt, different replies"
    )


def test_a_loop_run_cut_short_replays_to_the_call_it_never_made_named_by_its_iteration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The replay of a loop's run that failed in its second iteration said the next call was in node 'ask#1' (the
    call's record key), a node no spec, show or step has."""
    from agentmesh.cli.inspect import _print_replay
    from agentmesh.spec import graph_from_data

    looped = graph_from_data(
        {
            "name": "again",
            "inputs": {"question": {"type": "string"}},
            "agents": {"s": {"prompt": "{{ question }}"}},
            "nodes": {
                "again": {"op": "loop", "body": ["ask"], "until": {"max_rounds": 3}},
                "ask": {"op": "call", "agent": "s"},
            },
        }
    )
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with pytest.raises(AgentmeshError):  # one answer scripted: the second iteration's call fails
        run(looped, {"question": "Q"}, model=ScriptedModel([{"responses": ["a"]}]), store=db)
    with Store(db) as store:
        (record,) = store.list_runs()
    report = replay(record.id, store=db, graph=looped)
    assert report.stopped_at == ("ask#1", "s", 0, 0)
    _print_replay(report)
    said = " ".join(capsys.readouterr().out.split())
    assert "the next call (node 'ask', iteration 2, agent 's', round 0, call 0) was never made" in said, said


def test_a_replay_divergence_inside_a_loop_names_the_node_and_its_iteration(tmp_path: Path) -> None:
    """A replay that diverged in a loop's third iteration said 'node 'judge#2'' (the call's record key), a node no
    spec, show or step has; it says node 'judge', iteration 3, as diff and show do. Both ways a replay diverges: a
    call whose prompt changed, and a call the run never made."""
    from agentmesh.spec import graph_from_data

    def looped(grader_prompt: str, rounds: int) -> Any:
        return graph_from_data(
            {
                "name": "refine",
                "inputs": {"question": {"type": "string"}},
                "agents": {
                    "writer": {"prompt": "{{ question }}"},
                    "grader": {"prompt": grader_prompt, "parser": "score"},
                },
                "nodes": {
                    "refine": {"op": "loop", "body": ["draft", "judge"], "until": {"max_rounds": rounds}},
                    "draft": {"op": "call", "agent": "writer"},
                    "judge": {"op": "score", "from": "draft", "judge": "grader"},
                },
            }
        )

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    model = ScriptedModel(
        [{"agent": "writer", "responses": ["one", "two", "three"]}, {"agent": "grader", "template": "5"}]
    )
    result = run(looped("{{ candidate }}", 3), {"question": "Q"}, store=db, model=model)
    assert result.status == "succeeded" and result.calls == 6
    # the third iteration's judge prompt, and only it, changed
    edited = looped("{% if candidate == 'three' %}Grade: {% endif %}{{ candidate }}", 3)
    changed = replay(result.run_id, store=db, graph=edited).divergence
    assert changed is not None and changed.key == ("judge#2", "grader", 0, 0)
    assert "first divergence: node 'judge', iteration 3, agent 'grader', round 0, call 0: the prompt" in str(changed)
    assert "judge#2" not in str(changed)
    # one more iteration than the run made: its first call is one the run never made
    more = replay(result.run_id, store=db, graph=looped("{{ candidate }}", 4)).divergence
    assert more is not None and more.key == ("draft#3", "writer", 0, 0)
    assert "the recorded run did not: node 'draft', iteration 4, agent 'writer', round 0, call 0 (" in str(more)
    assert "draft#3" not in str(more)


def test_a_failed_runs_note_counts_its_answered_calls_apart_from_its_failed_attempt(tmp_path: Path) -> None:
    """The note of a run whose second call failed said "failed (error) after 2 calls: it never made the calls after
    those" beside "1 call served": the run's totals count attempts (show's "calls 2 ... errors 1"), a replay serves
    the calls that answered."""
    from agentmesh.spec import graph_from_data

    chain = graph_from_data(
        {
            "name": "two",
            "inputs": {"question": {"type": "string"}},
            "agents": {"s": {"prompt": "{{ question }}"}},
            "nodes": {"first": {"op": "call", "agent": "s"}, "second": {"op": "call", "agent": "s"}},
            "edges": [["first", "second"]],
        }
    )
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with pytest.raises(AgentmeshError):  # one answer scripted: the second call fails
        run(chain, {"question": "Q"}, model=ScriptedModel([{"responses": ["a"]}]), store=db)
    with Store(db) as store:
        (record,) = store.list_runs()
    assert record.totals["calls"] == 2 and record.totals["errors"] == 1
    report = replay(record.id, store=db)
    assert report.served == 1 and report.stopped_at == ("second", "s", 0, 0)
    assert report.note == (
        f"run {record.id[:12]} is failed (error) after 2 calls, 1 answered and 1 failed (agentmesh show: calls 2, "
        f"errors 1): a replay serves the answered ones and can go no further; agentmesh resume {record.id[:12]} "
        "continues it (resume() in Python)"
    )


def test_a_replay_says_the_warnings_its_run_gave_once_rather_than_repeat_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaying a MAgICoRe run whose judges' replies held no score logged its 16 warnings again on stderr, one by
    one, as if the replay had found something wrong: the run gave them, and the replay says each once."""
    import logging

    from agentmesh.cli.inspect import _print_replay

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    orm = "orm_judge (ORM judge): no score its card's parser could read in the reply; counts as 0.5"
    prm = "prm_judge (PRM judge): no JSON array in the reply; every step counts as 0.5"
    with caplog.at_level(logging.WARNING, logger="agentmesh"):
        result = run("magicore", {"question": "What is 17*3?"}, model=ScriptedModel(default="\\boxed{51}"), store=db)
        said = [r.getMessage() for r in caplog.records]
        assert said.count(orm) == 8 and said.count(prm) == 8, said  # the run warns, one by one
        caplog.clear()
        report = replay(result.run_id, store=db)
        assert report.identical
        assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert dict(report.warnings) == {orm: 8, prm: 8}
    _print_replay(report)
    out = " ".join(capsys.readouterr().out.split())
    assert f"16 warnings as in the run (each said once): {orm} (8 times) {prm} (8 times)" in out, out
