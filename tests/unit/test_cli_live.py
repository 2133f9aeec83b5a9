"""The live view of ``agentmesh run`` off a terminal: each round's block is printed as the round finishes."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from agentmesh.cli._live import LiveView
from agentmesh.models.messages import CallContext, ModelRequest
from agentmesh.models.providers.scripted import ScriptedModel
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.runtime.run import run
from agentmesh.spec import graph_from_data


def test_off_a_terminal_each_round_is_printed_as_it_finishes(tmp_path: Path) -> None:
    spec = resolve_graph("debate")
    log = io.StringIO()
    view = LiveView(spec, stream=Console(file=log, width=120, force_terminal=False))
    seen_in_round_2: list[str] = []

    def respond(request: ModelRequest, context: CallContext) -> str:
        if context.round == 1:
            return ["\\boxed{50}", "\\boxed{51}", "\\boxed{52}"][context.call_index or 0]
        seen_in_round_2.append(log.getvalue())  # what a log file held while round 2 was being called
        return "\\boxed{51}"

    result = run(
        spec,
        {"question": "What is 17*3?"},
        model=ScriptedModel(respond=respond),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        listeners=[view.on_event],
    )
    assert result.answer == "51" and len(seen_in_round_2) == 3
    during = seen_in_round_2[0]
    assert during.splitlines()[0].startswith(f"debate · run {result.run_id}")
    assert "debate · round 1" in during and "continues" in during and "debate · round 2" not in during
    assert "│ 2    │ debater │ 52 " in during  # round 1's answers, whole

    printed = log.getvalue()
    assert printed.count("debate · round 1") == 1 and printed.count("debate · round 2") == 1
    assert "stop: consensus" in printed and "vote (vote): answer 51" in printed
    # what is left for the end: no block printed twice, and the final call count
    end = io.StringIO()
    Console(file=end, width=120).print(view.rest())
    assert "round" not in end.getvalue() and "6 calls" in end.getvalue()


def test_agents_called_at_the_same_slot_each_get_a_row(tmp_path: Path) -> None:
    """One operator may call several agents at one slot (MAgICoRe's Solver, then its reward judges, all at round 0
    and slot i): the view keeps a row per agent rather than the last call's."""
    spec = resolve_graph("magicore")
    log = io.StringIO()
    view = LiveView(spec, stream=Console(file=log, width=160, force_terminal=False))
    for agent, text in (
        ("solver", "Step 1: 17*3 = 51. \\boxed{51}"),
        ("orm_judge", "90 [END]"),
        ("prm_judge", "[0.9]"),
    ):
        view.on_event("call", {"node": "magicore", "round": 0, "slot": 0, "agent": agent, "key": None, "text": text})
    view.on_event("node", {"node": "magicore", "round": 0, "answers": []})
    printed = log.getvalue()
    assert "solver" in printed and "orm_judge" in printed and "prm_judge" in printed
    assert printed.count("│ 0    │") == 3


def test_a_loops_later_iterations_are_printed_once_with_their_calls(tmp_path: Path) -> None:
    """A loop body's calls after its first iteration come as ``draft#1``, its node event as ``draft``: the view
    printed the second iteration's ``draft`` as a line without its call, then a ``draft#1`` table nobody finished
    after the run was over."""
    spec = graph_from_data(
        {
            "name": "refine",
            "inputs": {"question": {"type": "string"}},
            "agents": {
                "writer": {"prompt": "{{ question }}"},
                "grader": {"prompt": "{{ candidate }}", "parser": "score"},
            },
            "nodes": {
                "refine": {"op": "loop", "body": ["draft", "judge"], "until": {"score_threshold": {"min": 8}}},
                "draft": {"op": "call", "agent": "writer"},
                "judge": {"op": "score", "from": "draft", "judge": "grader"},
            },
        }
    )
    log = io.StringIO()
    view = LiveView(spec, stream=Console(file=log, width=120, force_terminal=False))
    model = ScriptedModel(
        [
            {"agent": "writer", "responses": ["draft one", "draft two"]},
            {"agent": "grader", "responses": ["5 [END]", "9 [END]"]},
        ]
    )
    run(spec, {"question": "Q"}, model=model, store=f"sqlite:///{tmp_path / 'runs.db'}", listeners=[view.on_event])
    printed = log.getvalue()
    assert "#1" not in printed
    assert printed.count("│ 0    │ writer │ draft two │ ok ") == 1 and printed.count("│ 0    │ grader │ 9 ") == 1
    end = io.StringIO()
    Console(file=end, width=120).print(view.rest())
    assert "#1" not in end.getvalue() and "draft" not in end.getvalue() and "4 calls" in end.getvalue()


def test_a_round_a_budget_cut_before_any_call_says_its_agents_were_not_called(tmp_path: Path) -> None:
    """A round the budget cut keeps the previous round's answers: the view marked its agents "ok", with an answer
    "-" and no reply, as if they had answered nothing."""
    spec = resolve_graph("debate")
    log = io.StringIO()
    view = LiveView(spec, stream=Console(file=log, width=120, force_terminal=False))
    model = ScriptedModel([{"round": 1, "responses": ["\\boxed{50}", "\\boxed{51}", "\\boxed{52}"]}])
    result = run(
        spec,
        {"question": "What is 17*3?"},
        model=model,
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        listeners=[view.on_event],
        budget={"calls": 3},
    )
    assert result.stop_reason == "budget: 3 model calls in node 'debate'"
    round_2 = log.getvalue().split("debate · round 2")[1].split("↳")[0]
    assert round_2.count("not called") == 3 and " ok " not in round_2
    round_1 = log.getvalue().split("debate · round 1")[1].split("↳")[0]
    assert round_1.count(" ok ") == 3
