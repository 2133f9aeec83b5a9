"""The shipped graphs (``graphs/*.yaml`` with their cards in ``agents/``): they validate, round-trip, resolve by
name, and each runs on a scripted model to the expected answer with exactly the expected calls. Also the
``pairwise_winner`` function the persona ensemble ends with."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentmesh.errors import ConfigError
from agentmesh.models import ScriptedModel
from agentmesh.runtime import RunResult, run
from agentmesh.runtime.arguments import builtin_dir, builtin_graphs, builtin_graphs_dir, resolve_graph
from agentmesh.runtime.functions import PairwiseOutcome, pairwise_winner, pick_pairwise_winner, verdict_candidate
from agentmesh.runtime.operators import get_function
from agentmesh.spec import GraphSpec, dump_graph, graph_from_data, load_agent, load_graph

GENERIC = ["debate", "self_consistency", "mixture_of_agents", "self_moa", "persona_ensemble"]
QUESTION = "What is 17*3?"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


# --- every shipped spec ------------------------------------------------------------------------------------------


def test_the_generic_graphs_are_shipped_next_to_their_cards() -> None:
    assert set(GENERIC) <= set(builtin_graphs())
    assert builtin_graphs_dir() == builtin_dir() / "graphs"
    assert (builtin_dir() / "agents").is_dir()


@pytest.mark.parametrize("name", builtin_graphs())
def test_shipped_graph_validates_round_trips_and_resolves_by_name(name: str) -> None:
    path = builtin_graphs_dir() / f"{name}.yaml"
    spec = load_graph(path)
    assert spec.name == name
    assert spec.description.strip(), "a shipped graph says what it does"
    assert spec.inputs and all(i.description for i in spec.inputs.values()), "inputs are typed and described"

    text = dump_graph(spec)
    assert graph_from_data(yaml.safe_load(text)) == spec
    assert dump_graph(graph_from_data(yaml.safe_load(text))) == text

    by_name = resolve_graph(name)
    assert by_name == spec and by_name.spec_hash() == spec.spec_hash()
    assert resolve_graph(path) == spec and resolve_graph(str(path)) == spec


@pytest.mark.parametrize("name", GENERIC)
def test_generic_graphs_take_a_question_and_reference_their_cards_by_path(name: str) -> None:
    raw = yaml.safe_load((builtin_graphs_dir() / f"{name}.yaml").read_text())
    assert set(raw["inputs"]) == {"question"} and raw["inputs"]["question"]["type"] == "string"
    for key, ref in raw["agents"].items():
        assert isinstance(ref, str) and ref.startswith("../agents/"), f"{name}: card {key} is a file, not inline"
        card = load_agent(builtin_graphs_dir() / ref)
        assert card.sampling.max_tokens is not None and card.sampling.max_tokens <= 256


def test_every_shipped_card_is_used_by_a_shipped_graph() -> None:
    used = {
        (builtin_graphs_dir() / ref).resolve()
        for name in builtin_graphs()
        for ref in (yaml.safe_load((builtin_graphs_dir() / f"{name}.yaml").read_text()).get("agents") or {}).values()
        if isinstance(ref, str)
    }
    for card in list(used):  # a card that others extend is used through them
        while base := (yaml.safe_load(card.read_text()) or {}).get("extends"):
            card = (card.parent / base).resolve()
            used.add(card)
    cards = {p.resolve() for p in (builtin_dir() / "agents").rglob("*.yaml")}
    assert cards and cards <= used, f"cards no graph uses: {sorted(str(p) for p in cards - used)}"


def test_card_paths_resolve_wherever_the_two_folders_are_copied(tmp_path: Path) -> None:
    """The wheel carries graphs/ and agents/ side by side elsewhere (agentmesh/_builtin/): paths still resolve."""
    for folder in ("graphs", "agents"):
        shutil.copytree(builtin_dir() / folder, tmp_path / "_builtin" / folder)
    for name in builtin_graphs():
        assert load_graph(tmp_path / "_builtin" / "graphs" / f"{name}.yaml") == resolve_graph(name)


def test_a_path_wins_over_a_builtin_and_unknown_names_list_the_builtins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "debate").mkdir()  # a folder named like a built-in is not a graph file
    assert resolve_graph("debate").name == "debate"
    mine = "name: mine\ninputs: {q: {}}\nagents: {a: {prompt: '{{ q }}'}}\nnodes: {ask: {op: call, agent: a}}"
    (tmp_path / "mine.yaml").write_text(mine)
    assert resolve_graph("mine.yaml").name == "mine"
    (tmp_path / "debate").rmdir()
    (tmp_path / "debate").write_text(mine)  # a file named like a built-in is that file
    assert resolve_graph("debate").name == "mine"
    with pytest.raises(ConfigError, match=r"no graph 'nosuch'.*built-ins: .*debate.*self_consistency"):
        resolve_graph("nosuch")


# --- scripted runs -------------------------------------------------------------------------------------------------


def test_debate_stops_at_consensus_in_round_2_with_exactly_six_calls(db: str) -> None:
    model = ScriptedModel(
        [
            {
                "agent": "debater",
                "round": 1,
                "prompt": r"What is 17\*3\?\n\nSolve the problem step by step",
                "responses": ["17*3 = 51, so \\boxed{51}.", "I think \\boxed{50}.", "Three 17s: \\boxed{51}"],
            },
            {
                "agent": "debater",
                "round": 2,
                "prompt": r"(?s)Your previous answer was:\n.+"
                r"The latest answers of the other agents:\nAgent 1: .+\nAgent 2: ",
                "template": "Checking again: \\boxed{51}",
                "times": 3,
            },
        ]
    )
    result = run("debate", {"question": QUESTION}, model=model, store=db)
    model.assert_complete()
    assert result.status == "succeeded" and result.calls == 6
    assert result.answer == "51" and result.outputs["vote"]["votes"] == {"51": 3.0}
    assert result.stop_reason == "consensus (> 0.667 of active agents agree) at round 2 in node 'debate'"
    round1 = {c.context.call_index: c.response for c in model.calls if c.context.round == 1}
    for call in (c for c in model.calls if c.context.round == 2):
        own = round1[call.context.call_index]
        others = sorted(text for slot, text in round1.items() if slot != call.context.call_index)
        assert f"Your previous answer was:\n{own}\n" in call.prompt
        shown = sorted(line.split(": ", 1)[1] for line in call.prompt.splitlines() if line.startswith("Agent "))
        assert shown == others, "include_self: false shows the two others, not the agent itself"


def test_debate_without_consensus_runs_three_rounds_then_votes(db: str) -> None:
    model = ScriptedModel(
        [
            {"agent": "debater", "round": [1, 2], "template": "\\boxed{ {{- 50 + call_index -}} }", "times": 6},
            {"agent": "debater", "round": 3, "responses": ["\\boxed{51}", "\\boxed{51}", "\\boxed{52}"]},
        ]
    )
    result = run("debate", {"question": QUESTION}, model=model, store=db)
    model.assert_complete()
    assert result.calls == 9 and result.answer == "51"
    assert result.stop_reason == "completed: every node ran"


def test_self_consistency_samples_five_times_and_takes_the_majority(db: str) -> None:
    spec = resolve_graph("self_consistency")
    assert (spec.agents["solver"].sampling.temperature or 0) > 0, "samples must differ: temperature > 0"
    model = ScriptedModel(
        [
            {
                "agent": "solver",
                "node": "sample",
                "prompt": r"What is 17\*3\?\n\nLet's think step by step",
                "responses": ["\\boxed{51}", "17*3 = 51 \\boxed{51}", "\\boxed{50}", "so \\boxed{ 51 }", "\\boxed{49}"],
            }
        ]
    )
    result = run(spec, {"question": QUESTION}, model=model, store=db)
    model.assert_complete()
    assert result.calls == 5 and result.answer == "51"
    assert result.outputs["vote"]["votes"] == {"51": 3.0, "50": 1.0, "49": 1.0}
    assert sorted(c.context.call_index for c in model.calls) == [0, 1, 2, 3, 4]


def _moa_rules(proposers: list[str], last_layer: list[str]) -> list[dict[str, Any]]:
    """Layer 1 answers ``<agent>-1``; layer 2 must see all of layer 1, in order, and answers ``<agent>-2``;
    the aggregator must see the whole of layer 2."""
    layer1 = "".join(rf"\n{i}\. {agent}-1#{i - 1}" for i, agent in enumerate(proposers, start=1))
    layer2 = "".join(rf"\n{i}\. {text}" for i, text in enumerate(last_layer, start=1))
    return [
        {
            "node": "layers",
            "round": 1,
            "prompt": r"^(?!.*Their answers).*Question: What is 17\*3\?$",
            "template": "{{ agent }}-1#{{ call_index }}",
            "times": len(proposers),
        },
        {
            "node": "layers",
            "round": 2,
            "prompt": r"(?s)Their answers:" + layer1 + r"\n\nQuestion: What is 17\*3\?$",
            "template": "{{ agent }}-2#{{ call_index }}",
            "times": len(proposers),
        },
        {
            "agent": "aggregator",
            "node": "aggregate",
            "prompt": r"(?s)Answers from the assistants:" + layer2 + r"\nWhat is 17\*3\?$",
            "responses": ["17*3 = 51."],
        },
    ]


@pytest.mark.parametrize(
    ("graph", "proposers"),
    [("mixture_of_agents", ["analyst", "expert", "skeptic"]), ("self_moa", ["proposer"] * 3)],
)
def test_mixture_of_agents_layers_then_aggregates_the_last_layer(db: str, graph: str, proposers: list[str]) -> None:
    last_layer = [f"{agent}-2#{i}" for i, agent in enumerate(proposers)]
    model = ScriptedModel(_moa_rules(proposers, last_layer))
    result = run(graph, {"question": QUESTION}, model=model, store=db)
    model.assert_complete()
    assert result.calls == 7
    assert result.answer == result.text == "17*3 = 51."
    assert [a["text"] for a in result.outputs["layers"]["answers"]] == last_layer
    (aggregator,) = (c for c in model.calls if c.context.agent == "aggregator")
    assert "-1#" not in aggregator.prompt, "the aggregator reads the last layer only"
    assert sorted((c.context.agent, c.context.round) for c in model.calls if c.context.node == "layers") == sorted(
        (agent, r) for agent in proposers for r in (1, 2)
    )


def test_self_moa_uses_one_proposer_card_and_moa_uses_different_ones() -> None:
    moa, self_moa = resolve_graph("mixture_of_agents"), resolve_graph("self_moa")
    moa_team = [name for _, name in moa.nodes["layers"].params.agents_used()]
    self_team = [name for _, name in self_moa.nodes["layers"].params.agents_used()]
    assert len(moa_team) == len(set(moa_team)) == 3
    assert len({moa.agents[n].system for n in moa_team}) == 3, "the proposers differ"
    assert self_team == ["proposer"] * 3 and (self_moa.agents["proposer"].sampling.temperature or 0) > 0
    assert moa.agents["aggregator"] == self_moa.agents["aggregator"]


PERSONA = "You are a mathematician who double-checks every step."


def _persona_model(verdict: str) -> ScriptedModel:
    """``verdict`` is the evaluator's template over the candidate shown as A (``match[1]``)."""
    return ScriptedModel(
        [
            {
                "agent": "persona_writer",
                "node": "persona",
                "prompt": r"Question: What is 17\*3\?$",
                "responses": [PERSONA],
            },
            {
                "agent": "role_player",
                "node": "candidates",
                "prompt": "^" + PERSONA.replace(".", r"\.") + r"\nWhat is 17\*3\?",
                "responses": ["PERSONA: 17*3 = 51."],
            },
            {
                "agent": "neutral",
                "node": "candidates",
                "prompt": r"^What is 17\*3\?",
                "responses": ["NEUTRAL: 17*3 = 50."],
            },
            {
                "agent": "evaluator",
                "node": "judge",
                "prompt": r"(?s)\[Answer A\]\n(\w+): .*\[Answer B\]\n(\w+): ",
                "template": verdict,
                "times": 2,
            },
        ]
    )


@pytest.mark.parametrize(
    ("verdict", "answer", "picks", "tie"),
    [
        # Prefers the persona's answer whichever position it is shown in: a consistent win.
        ('Persona is right. {{ "(A)" if match[1] == "PERSONA" else "(B)" }}', "PERSONA: 17*3 = 51.", [0, 0], False),
        # Prefers the neutral answer in both orders.
        ('{{ "(A)" if match[1] == "NEUTRAL" else "(B)" }}', "NEUTRAL: 17*3 = 50.", [1, 1], False),
        # Position bias: always "A". The verdicts cancel out and the tie keeps the neutral answer (prefer: 1).
        ("Answer A is better. (A)", "NEUTRAL: 17*3 = 50.", [0, 1], True),
        # No usable verdict at all: also a tie.
        ("Both are fine.", "NEUTRAL: 17*3 = 50.", [None, None], True),
    ],
)
def test_persona_ensemble_judges_both_orders_and_maps_verdicts_back(
    db: str, verdict: str, answer: str, picks: list[int | None], tie: bool
) -> None:
    model = _persona_model(verdict)
    result = run("persona_ensemble", {"question": QUESTION}, model=model, store=db)
    model.assert_complete()
    assert result.calls == 5
    assert result.answer == result.text == answer
    pick = result.outputs["pick"]
    assert pick["picks"] == picks and pick["tie"] is tie

    # The evaluator saw the candidates in both orders: call 0 (persona, neutral), call 1 (neutral, persona).
    shown = {c.context.call_index: c.prompt for c in model.calls if c.context.agent == "evaluator"}
    assert shown[0].index("[Answer A]\nPERSONA") < shown[0].index("[Answer B]\nNEUTRAL")
    assert shown[1].index("[Answer A]\nNEUTRAL") < shown[1].index("[Answer B]\nPERSONA")
    (neutral,) = (c for c in model.calls if c.context.agent == "neutral")
    assert "You are" not in neutral.prompt, "the neutral solver has no persona"


# --- pairwise_winner -----------------------------------------------------------------------------------------------


def test_pairwise_winner_is_registered_by_importing_the_runtime() -> None:
    assert get_function("pairwise_winner") is pairwise_winner


@pytest.mark.parametrize(
    ("letter", "slot", "expected"),
    [
        ("A", 0, 0),
        ("B", 0, 1),
        ("A", 1, 1),
        ("B", 1, 0),
        (" b ", 1, 0),
        (None, 0, None),
        ("C", 0, None),
        ("AB", 0, None),
    ],
)
def test_verdicts_map_back_through_the_order_they_were_shown_in(letter: str | None, slot: int, expected: int) -> None:
    assert verdict_candidate(letter, slot, 2) == expected


def test_verdicts_rotate_for_more_candidates_and_positions_beyond_them_count_for_nothing() -> None:
    assert [verdict_candidate("A", s, 3, "ABC") for s in range(3)] == [0, 1, 2]
    assert verdict_candidate("C", 1, 3, "ABC") == 0
    assert verdict_candidate("C", 0, 2, "ABC") is None
    assert verdict_candidate("A", 0, 0) is None


@pytest.mark.parametrize(
    ("verdicts", "prefer", "expected"),
    [
        ([(0, "A"), (1, "B")], 0, PairwiseOutcome(winner=0, picks=[0, 0], wins=[2, 0], tie=False)),
        ([(0, "B"), (1, "A")], 0, PairwiseOutcome(winner=1, picks=[1, 1], wins=[0, 2], tie=False)),
        # Position bias (A both times) or (B both times): a split, the tie goes to `prefer`.
        ([(0, "A"), (1, "A")], 0, PairwiseOutcome(winner=0, picks=[0, 1], wins=[1, 1], tie=True)),
        ([(0, "B"), (1, "B")], 1, PairwiseOutcome(winner=1, picks=[1, 0], wins=[1, 1], tie=True)),
        # One unusable verdict: one order alone cannot cancel position bias.
        ([(0, "A"), (1, None)], 1, PairwiseOutcome(winner=1, picks=[0, None], wins=[1, 0], tie=True)),
        ([], 1, PairwiseOutcome(winner=1, picks=[], wins=[0, 0], tie=True)),
        # Two verdicts per order: a strict majority (3 of 4) wins, 2 of 4 does not.
        (
            [(0, "A"), (1, "B"), (2, "A"), (3, "A")],
            1,
            PairwiseOutcome(winner=0, picks=[0, 0, 0, 1], wins=[3, 1], tie=False),
        ),
        (
            [(0, "A"), (1, "A"), (2, "A"), (3, "A")],
            1,
            PairwiseOutcome(winner=1, picks=[0, 1, 0, 1], wins=[2, 2], tie=True),
        ),
    ],
)
def test_pick_pairwise_winner(verdicts: list[tuple[int, str | None]], prefer: int, expected: PairwiseOutcome) -> None:
    assert pick_pairwise_winner(2, verdicts, prefer=prefer) == expected


def test_pick_pairwise_winner_with_missing_candidates() -> None:
    assert pick_pairwise_winner(0, [(0, "A")]) == PairwiseOutcome(winner=None, picks=[None], wins=[], tie=True)
    # Only one candidate answered (a budget cut the other): "A" still means it, and `prefer` is clipped to it.
    assert pick_pairwise_winner(1, [(0, "A"), (1, "A")], prefer=1).winner == 0
    with pytest.raises(ValueError, match="prefer"):
        pick_pairwise_winner(2, [], prefer=-1)


def _answer(slot: int, text: str, key: str | None = None, agent: str = "x") -> dict[str, Any]:
    return {"agent": agent, "slot": slot, "text": text, "value": key or text, "key": key or text}


def test_pairwise_winner_function_reads_the_named_nodes() -> None:
    outputs = {
        "cands": {"answers": [_answer(0, "first", agent="p"), _answer(1, "second", agent="n")]},
        "verdicts": {"answers": [_answer(0, "... (B)", "B"), _answer(1, "... (A)", "A")]},
    }
    out = pairwise_winner(outputs, {}, candidates="cands", verdicts="verdicts")
    assert out == {
        "answer": "second",
        "value": "second",
        "text": "second",
        "agent": "n",
        "winner": 1,
        "picks": [1, 1],
        "wins": [0, 2],
        "tie": False,
    }
    tie = pairwise_winner(
        {**outputs, "verdicts": {"answers": [_answer(0, "(A)", "A"), _answer(1, "(A)", "A")]}},
        {},
        candidates="cands",
        verdicts="verdicts",
        prefer=1,
    )
    assert tie["tie"] is True and tie["answer"] == "second"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"candidates": "nope", "verdicts": "v"}, "'candidates' must name a node that ran before this one, got 'nope'"),
        ({"candidates": "c", "verdicts": "v", "prefer": -1}, "'prefer' must be a candidate index >= 0, got -1"),
        ({"candidates": "c", "verdicts": "v", "letters": "ab"}, "'letters' must be capital letters"),
    ],
)
def test_pairwise_winner_function_rejects_bad_arguments(args: dict[str, Any], message: str) -> None:
    outputs = {"c": {"answers": []}, "v": {"answers": []}}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        pairwise_winner(outputs, {}, **args)


def test_a_new_graph_in_yaml_alone_can_use_the_shipped_function(tmp_path: Path, db: str) -> None:
    """The README's example shape: inline cards, generic operators, a registered function by name."""
    path = tmp_path / "best_of_two.yaml"
    path.write_text(
        """\
name: best_of_two
description: Two drafts, a judge in both orders, the consistent winner.
inputs:
  question: {type: string, description: What to answer.}
agents:
  writer: {prompt: '{{ question }}', sampling: {temperature: 0.8, max_tokens: 128}}
  judge:
    prompt: |-
      {%- set a = nodes.drafts.answers[index] %}{% set b = nodes.drafts.answers[1 - index] -%}
      {{ question }}
      (A) {{ a.text }}
      (B) {{ b.text }}
      Which is better? Reply (A) or (B).
    parser: {name: choice_letter, letters: AB}
nodes:
  drafts: {op: team, agents: [writer, writer]}
  judged: {op: team, agents: [judge, judge]}
  best: {op: function, function: pairwise_winner, args: {candidates: drafts, verdicts: judged}}
edges: [[drafts, judged], [judged, best]]
"""
    )
    spec: GraphSpec = resolve_graph(path)
    model = ScriptedModel(
        [
            {"agent": "writer", "responses": ["short", "a longer draft"]},
            {
                "agent": "judge",
                "prompt": r"\(A\) (\w+)",
                "template": '{{ "(A)" if match[1] == "a" else "(B)" }}',
                "times": 2,
            },
        ]
    )
    result = run(spec, {"question": "Say hi"}, model=model, store=db)
    model.assert_complete()
    assert result.answer == "a longer draft" and result.outputs["best"]["tie"] is False


def test_the_readme_example_graph_loads_and_runs(tmp_path: Path, db: str) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = re.search(r"```yaml\n(name: draft_review\n.*?)```", readme, re.DOTALL)
    assert example, "README has the draft_review example"
    path = tmp_path / "draft_review.yaml"
    path.write_text(example.group(1))
    model = ScriptedModel(
        [
            {"agent": "writer", "node": "draft", "prompt": r"^Why is the sky blue\?$", "responses": ["Because."]},
            {
                "agent": "reviewer",
                "prompt": r"Answer: Because\.\n",
                "responses": ["Too short: name Rayleigh scattering."],
            },
            {
                "agent": "writer",
                "node": "revise",
                "prompt": r"Your draft: Because\.\nA reviewer said: Too short",
                "responses": ["Rayleigh scattering: air scatters blue light most."],
            },
        ]
    )
    result = run(str(path), {"question": "Why is the sky blue?"}, model=model, store=db)
    model.assert_complete()
    assert result.calls == 3 and result.text == "Rayleigh scattering: air scatters blue light most."


def test_the_readme_python_composition_runs(tmp_path: Path, db: str) -> None:
    """The README's Python example: the shipped debate with a judge node added, built and run in Python."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = re.search(r"```python\n(import agentmesh\nfrom agentmesh.spec import .*?)```", readme, re.DOTALL)
    assert example, "README has the Python composition example"
    code = example.group(1)
    assert 'model="local")' in code
    model = ScriptedModel(
        [
            {"agent": "debater", "template": "\\boxed{50}"},
            {"agent": "judge", "prompt": r"The debaters settled on 50\. Check it", "responses": ["\\boxed{51}"]},
        ]
    )
    scope: dict[str, object] = {"_model": model}
    exec(code.replace('model="local")', f"model=_model, store={db!r})"), scope)  # the README's own code
    model.assert_complete()
    judged = scope["judged"]
    assert isinstance(judged, GraphSpec) and judged.output_node() == "check"
    assert graph_from_data(yaml.safe_load(dump_graph(judged))) == judged
    result = scope["result"]
    assert isinstance(result, RunResult)
    assert (result.answer, result.outputs["vote"]["answer"], result.calls) == ("51", "50", 4)
