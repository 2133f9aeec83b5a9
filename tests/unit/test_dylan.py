"""DyLAN's graphs on a scripted model: what each node is shown, call counts with early stop in both activation modes,
the ranker's effect on the next layer (paper and reference semantics), MATH's ranked-pair stop, and the importance
function's edge cases (dylan.md §1-§4)."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.runtime import run
from agentmesh.spec import GraphSpec, load_graph
from agentmesh.spec.operators import RankStep, RoundsParams
from agentmesh.systems.dylan import Node, Trace, importance, mean_importance, select_team

REPO = Path(__file__).resolve().parents[2]
_WHO = re.compile(r"<<(\w+)>>")


def mmlu(agents: list[str], **params: Any) -> GraphSpec:
    spec = load_graph(REPO / "graphs" / "dylan_mmlu.yaml")
    node = spec.nodes["dylan"]
    assert isinstance(node.params, RoundsParams)
    new = node.params.model_copy(update={"agents": agents, **params})
    kept = {k: v for k, v in spec.agents.items() if k in {*agents, "ranker"}}
    return spec.model_copy(
        update={"nodes": {**spec.nodes, "dylan": node.model_copy(update={"params": new})}, "agents": kept}
    )


class Script:
    """Each agent answers ``answers[round][agent]``, marks its reply with its name and rates what it was shown
    (5 for ``favourite``, 1 for the others); the ranker picks ``picks`` (agent names)."""

    def __init__(self, answers: dict[int, dict[str, str]], favourite: str = "", picks: tuple[str, ...] = ()) -> None:
        self.answers, self.favourite, self.picks = answers, favourite, picks
        self.prompts: dict[tuple[int, str], str] = {}

    def __call__(self, request: ModelRequest, context: CallContext) -> str:
        prompt = request.messages[-1].content
        shown = _WHO.findall(prompt)
        if context.agent == "ranker":
            return "[" + ",".join(str(shown.index(p) + 1) for p in self.picks) + "]"
        self.prompts[(int(context.round or 0), str(context.agent))] = prompt
        letter = self.answers[int(context.round or 0)][str(context.agent)]
        scores = ", ".join("5" if s == self.favourite else "1" for s in shown)
        return f"<<{context.agent}>> so ({letter})" + (f" [[{scores}]]" if shown else "")


FOUR = ["economist", "doctor", "mathematician", "historian"]
QUESTION = {"question": "Which planet is largest?", "choices": ["Mars", "Venus", "Jupiter", "Earth"]}


def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_layer_prompts_show_shuffled_anonymous_predecessors_with_own_answer_and_ask_n_ratings(tmp_path: Path) -> None:
    script = Script(
        {
            1: dict(zip(FOUR, "ABCD", strict=True)),
            2: dict(zip(FOUR, "ABCD", strict=True)),
            3: dict(zip(FOUR, "ABCD", strict=True)),
        }
    )
    result = run(mmlu(FOUR, rank=None), QUESTION, model=ScriptedModel(respond=script), store=db(tmp_path))
    assert result.status == "succeeded"
    first = script.prompts[(1, "doctor")]
    assert (
        "Can you answer the following question as accurately as possible? Which planet is largest?: A) Mars, "
        "B) Venus, C) Jupiter, D) Earth" in first
    )
    assert "Agent solution" not in first and "(X)" in first
    orders = {}
    for agent in FOUR:
        prompt = script.prompts[(2, agent)]
        shown = _WHO.findall(prompt)
        assert sorted(shown) == sorted(FOUR), "every layer-1 answer, the agent's own among them"
        assert "Put all 4 scores in the form like [[1, 5, 2, ...]]" in prompt
        assert [f"Agent solution {i}:" in prompt for i in range(1, 5)] == [True] * 4
        assert "economist" not in prompt.replace("<<economist>>", "")  # anonymous: only our test marker names it
        orders[agent] = shown
    assert len({tuple(o) for o in orders.values()}) > 1, "each node gets its own seeded shuffle"
    history = result.outputs["dylan"]["history"]
    assert [n["seen"] for n in history[1]["nodes"]] == [
        [FOUR.index(a) for a in orders[n["agent"]]] for n in history[1]["nodes"]
    ]
    assert all(n["ratings"] is not None and len(n["ratings"]) == 4 for n in history[1]["nodes"])


@pytest.mark.parametrize(("activation", "calls"), [("sequential", 4 + 3), ("parallel", 4 + 4)])
def test_consensus_in_layer_two_stops_with_the_documented_calls(activation: str, calls: int, tmp_path: Path) -> None:
    # layer 1 disagrees; in layer 2 three of four say C (> floor(2/3 * 4) = 2): sequential stops after the third
    script = Script({1: dict(zip(FOUR, "ABCD", strict=True)), 2: dict(zip(FOUR, "CCCA", strict=True))})
    model = ScriptedModel(respond=script)
    spec = mmlu(FOUR, activation=activation, activation_order="fixed")
    result = run(spec, QUESTION, model=model, store=db(tmp_path))
    assert len(model.calls) == calls
    assert result.answer == "C"
    assert "consensus" in (result.stop_reason or "") and "round 2" in (result.stop_reason or "")
    scores = result.outputs["importance"]["importance"]
    assert scores["last_round"] == 2 and scores["layer_sums"][:2] == pytest.approx([1.0, 1.0])
    assert scores["layer_sums"][2] == 0.0


def test_sequential_random_order_is_seeded(tmp_path: Path) -> None:
    script = Script(
        {
            1: dict(zip(FOUR, "ABCD", strict=True)),
            2: dict(zip(FOUR, "ABCD", strict=True)),
            3: dict(zip(FOUR, "ABCD", strict=True)),
        }
    )
    spec = mmlu(FOUR, rank=None)
    first = run(spec, QUESTION, model=ScriptedModel(respond=script), store=db(tmp_path))
    again = run(spec, QUESTION, model=ScriptedModel(respond=script), store=db(tmp_path))
    orders = [h["order"] for h in first.outputs["dylan"]["history"]]
    assert orders == [h["order"] for h in again.outputs["dylan"]["history"]]
    assert any(o != sorted(o) for o in orders)


@pytest.mark.parametrize("compat", [False, True])
def test_ranker_keeps_two_agents_for_layer_three(compat: bool, tmp_path: Path) -> None:
    answers = {
        1: dict(zip(FOUR, "ABCD", strict=True)),
        2: dict(zip(FOUR, "ABCD", strict=True)),
        3: dict(zip(FOUR, "CCCC", strict=True)),
    }
    script = Script(answers, favourite="mathematician", picks=("mathematician", "historian"))
    model = ScriptedModel(respond=script)
    rank = RankStep(before_round=3, keep=2, ranker="ranker", min_active=4, shuffle=False)
    spec = mmlu(FOUR, rank=rank, activation_order="fixed", reference_compat=compat)
    result = run(spec, QUESTION, model=model, store=db(tmp_path))
    assert len(model.calls) == 4 + 4 + 1 + 2
    third = {agent for (rnd, agent) in script.prompts if rnd == 3}
    assert third == {"mathematician", "historian"}  # fixed activation: positions = the ranked agents
    shown = _WHO.findall(script.prompts[(3, "historian")])
    if compat:  # the released code: every layer-2 answer stays visible and keeps its credit
        assert sorted(shown) == sorted(FOUR)
        assert "Put all 4 scores" in script.prompts[(3, "historian")]
    else:  # the paper: only the kept answers flow on
        assert sorted(shown) == ["historian", "mathematician"]
        assert "Put all 2 scores" in script.prompts[(3, "historian")]
    scores = result.outputs["importance"]["importance"]
    assert scores["layer_sums"] == pytest.approx([1.0, 1.0, 1.0])
    pruned = [scores["per_node"]["2,0"], scores["per_node"]["2,1"]]  # economist and doctor in layer 2
    assert (sum(pruned) > 0) is compat
    assert result.answer == "C"


def test_math_graph_stops_when_the_ranked_pair_agrees(tmp_path: Path) -> None:
    spec = load_graph(REPO / "graphs" / "dylan_math.yaml")

    def respond(request: ModelRequest, context: CallContext) -> str:
        prompt = request.messages[-1].content
        if context.agent == "ranker":
            assert prompt.count("Agent solution") == 4
            return "Solutions 1 and 2 are best: [1, 2]"
        if context.round == 1:
            return f"Working... The answer is {[3, 4, 3, 5][int(context.call_index or 0)]}."
        assert prompt.count("One agent's solution:") == 4 and "[[" not in prompt  # all four, no ratings asked
        assert prompt.startswith("Follow the given examples")
        return f"The answer is {[7, 7, 8, 9][int(context.call_index or 0)]}."

    model = ScriptedModel(respond=respond)
    result = run(spec, {"problem": "What is 3+4?", "shots": 2}, model=model, store=db(tmp_path))
    # layer 1: no 3 of 4 agree (4 calls); layer 2: 7, 7, 8, 9 (4 calls); the ranker keeps the first two, both 7
    assert len(model.calls) == 4 + 4 + 1
    assert result.answer == "7"
    assert "ranked answers before round 3" in (result.stop_reason or "")
    assert "Problem: If there are 3 cars" in model.calls[0].prompt and "Problem: Leah" not in model.calls[0].prompt


# --- the importance function (dylan.md §4.4) -----------------------------------------------------------------------


def _trace(nodes: list[Node], agents: int = 3, layers: int = 3) -> Trace:
    return Trace(
        agents=tuple(f"a{i}" for i in range(agents)), nodes={(n.layer, n.agent): n for n in nodes}, layers=layers
    )


def test_importance_of_a_ranker_pruned_node_is_zero_and_layers_sum_to_one() -> None:
    nodes = [Node(0, a, "A") for a in range(3)]
    nodes += [
        Node(1, 0, "A", predecessors=(0, 1, 2), ratings=(5, 5, 0)),
        Node(1, 1, "B", active=False, predecessors=(0, 1, 2), ratings=(1, 1, 1)),
        Node(1, 2, "A", predecessors=(0, 1, 2), ratings=(0, 0, 0)),
    ]
    nodes += [Node(2, 0, "A", predecessors=(0, 2), ratings=(3, 1)), Node(2, 2, "A", predecessors=(0, 2))]
    result = importance(_trace(nodes), "A")
    assert result.per_node[(1, 1)] == 0
    assert result.layer_sums == [1, 1, 1]
    assert result.per_node[(1, 0)] == Fraction(1, 2) * Fraction(3, 4) + Fraction(1, 2) * Fraction(1, 2)
    assert result.per_node[(0, 0)] == result.per_node[(1, 0)] * Fraction(1, 2) + result.per_node[(1, 2)] / 3


def test_importance_when_no_last_layer_node_gave_the_answer_is_shared_and_flagged() -> None:
    nodes = [Node(0, 0, "A"), Node(0, 1, "B")]
    result = importance(_trace(nodes, agents=2, layers=1), "C")
    assert result.fallback and result.per_node[(0, 0)] == result.per_node[(0, 1)] == Fraction(1, 2)
    empty = importance(_trace([], agents=2, layers=2), "A")
    assert empty.last_layer is None and empty.layer_sums == [0, 0]


def test_dataset_mean_and_top_k() -> None:
    q1 = {"a": Fraction(2), "b": Fraction(1)}
    q2 = {"b": Fraction(3), "c": Fraction(1)}
    means = mean_importance([q1, q2])
    assert means == {"a": 1, "b": 2, "c": Fraction(1, 2)}
    assert select_team(means, 2) == ["b", "a"]
    assert select_team({"x": 1.0, "y": 1.0, "z": 2.0}, 2) == ["z", "x"]
    with pytest.raises(ValueError, match="at least 1"):
        select_team(means, 0)


def test_an_option_past_d_is_read_as_the_prompt_lettered_it(tmp_path: Path) -> None:
    """The MMLU prompt letters up to ten options (A-J, as MMLU-Pro has); the agents' parser reads the same letters.
    It read A-D only, so every agent choosing the sixth option gave "no answer" and the consensus was on nothing."""
    six = {"question": "Which is a prime?", "choices": ["4", "6", "8", "9", "10", "11"]}
    script = Script({1: dict.fromkeys(FOUR, "F"), 2: dict.fromkeys(FOUR, "F")})
    result = run(mmlu(FOUR, rank=None), six, model=ScriptedModel(respond=script), store=db(tmp_path))
    assert all("F) 11" in prompt for prompt in script.prompts.values())
    assert result.answer == "F"
    assert "consensus" in (result.stop_reason or "")


def test_a_letter_past_the_options_shown_is_not_an_answer(tmp_path: Path) -> None:
    """The parser has letters for ten options (A-J), and read "(E)" in a reply to a four-option question as its
    answer, which was voted and credited; the reference reads only the options' letters (the last ``(A|B|C|D)``),
    so the reply's "(B)" is its answer."""
    script = Script({1: dict.fromkeys(FOUR, "B) rather than (E"), 2: dict.fromkeys(FOUR, "B) rather than (E")})
    result = run(mmlu(FOUR, rank=None), QUESTION, model=ScriptedModel(respond=script), store=db(tmp_path))
    assert all("so (B) rather than (E)" in prompt for (r, _), prompt in script.prompts.items() if r == 2)
    assert result.answer == "B"


def test_more_options_than_letters_are_refused_before_the_run_is_stored(tmp_path: Path) -> None:
    """An eleventh option has no letter in the MMLU prompt (A-J) nor in its parser. The run was stored and failed at
    its first call with "str object has no element 10"; it is refused before it is stored, saying what to give."""
    from agentmesh.errors import ConfigError
    from agentmesh.store import Store

    eleven = {"question": "Which?", "choices": [str(n) for n in range(11)]}
    script = Script({1: dict.fromkeys(FOUR, "A")})
    with pytest.raises(ConfigError, match=r"input 'choices' has 11 options.*letters A-J \(10 options at most\)"):
        run(mmlu(FOUR, rank=None), eleven, model=ScriptedModel(respond=script), store=db(tmp_path))
    assert script.prompts == {}
    with Store(db(tmp_path)) as store:
        assert store.list_runs() == []
    ten = {"question": "Which?", "choices": [str(n) for n in range(10)]}  # the most it letters: runs
    assert run(mmlu(FOUR, rank=None), ten, model=ScriptedModel(respond=script), store=db(tmp_path)).answer == "A"


def _choice_graph(parser: dict[str, Any]) -> GraphSpec:
    """One agent whose prompt reads two lists: few-shot examples, and the options it letters."""
    from agentmesh.spec import graph_from_data

    return graph_from_data(
        {
            "name": "choice",
            "inputs": {
                "question": {"type": "string"},
                "examples": {"type": "list", "required": False, "default": []},
                "choices": {"type": "list", "required": False, "default": []},
            },
            "agents": {
                "a": {
                    "prompt": "{% for e in examples %}{{ e }}\n{% endfor %}{{ question }}"
                    "{% for c in choices %} {{ 'ABCDEFGHIJ'[loop.index0] }}) {{ c }}{% endfor %}",
                    "parser": parser,
                }
            },
            "nodes": {"ask": {"op": "call", "agent": "a"}},
        }
    )


def test_a_list_the_prompt_reads_is_not_taken_for_the_options_unless_named(tmp_path: Path) -> None:
    """Which list holds the options is named (``options: choices``), not guessed from "a list input the prompt
    reads": a guess took six few-shot examples for six options (a four-letter card's run was refused) and two for
    two (its "(C)" was no answer)."""
    six = {"question": "Which?", "examples": [f"example {n}" for n in range(6)]}
    plain = _choice_graph({"name": "choice_letter", "letters": "ABCD"})
    assert run(plain, six, model=ScriptedModel(default="so (C)"), store=db(tmp_path)).answer == "C"
    two = {**six, "examples": ["e1", "e2"]}
    assert run(plain, two, model=ScriptedModel(default="so (C)"), store=db(tmp_path)).answer == "C"
    named = _choice_graph({"name": "choice_letter", "letters": "ABCD", "options": "choices"})
    given = {**six, "choices": ["x", "y"]}
    result = run(named, given, model=ScriptedModel(default="(B) rather than (C)"), store=db(tmp_path))
    assert result.answer == "B"  # C is no option of two


def test_options_naming_no_list_input_is_refused_before_the_run_is_stored(tmp_path: Path) -> None:
    from agentmesh.errors import ConfigError
    from agentmesh.store import Store

    for name, what in (("choises", "no input"), ("question", "a string input")):
        graph = _choice_graph({"name": "choice_letter", "options": name})
        model = ScriptedModel(default="(A)")
        expected = rf"agent 'a': its parser's options names '{name}', {what} of the graph; expected the list input"
        with pytest.raises(ConfigError, match=expected + r" its prompt letters \(examples, choices\)"):
            run(graph, {"question": "Which?"}, model=model, store=db(tmp_path))
        assert model.calls == []
    with Store(db(tmp_path)) as store:
        assert store.list_runs() == []


def test_offered_letters() -> None:
    from agentmesh.parsers.choice import offered_letters

    assert offered_letters("ABCDEFGHIJ", "choices", {"choices": ["a", "b", "c"]}) == "ABC"
    assert offered_letters("ABCD", "choices", {"choices": []}) == "ABCD"  # none given: the question letters them
    assert offered_letters("ABCD", None, {"choices": ["a"]}) == "ABCD"
    assert offered_letters("ABCD", "choices", None) == "ABCD"  # called from Python, no run
    with pytest.raises(KeyError, match="'choices'"):
        offered_letters("ABCD", "choices", {"question": "q"})
