"""``agentmesh optimize`` on a DyLAN graph, as a user meets it: a team size whose graph could not run, the accuracy
when items failed, and a --top-k that cuts through a tie. Scripted models whose answers are chosen so that every
figure is known by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentmesh.errors import ConfigError
from agentmesh.models import ModelRequest, ScriptedModel
from agentmesh.models.messages import CallContext
from agentmesh.models.registry import register_provider
from agentmesh.optimize import optimize
from agentmesh.spec.loader import dump_graph
from tests._cli import run_cli
from tests.unit.test_optimize import four_agent_graph, write_items


def _layer_one_consensus(request: ModelRequest, context: CallContext) -> str:
    """Every agent answers (C) at once, except on "Question 1?", where no call is answered (the item fails).

    With four agents and sequential activation, consensus (strictly more than 2 of 4) holds after the third answer:
    the three agents that answered share the credit, 1/3 each, and the fourth never ran (0)."""
    if "Question 1?" in request.messages[-1].content:
        raise RuntimeError("the model server went away")
    return "I think (C)."


@register_provider("qa_layer_one")
def _layer_one(ref: Any, limits: Any, options: Any) -> ScriptedModel:
    return ScriptedModel(respond=_layer_one_consensus)


def test_a_team_of_one_under_a_consensus_stop_is_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``optimize dylan_mmlu --top-k 1`` ran every item, then wrote dylan_mmlu_top1.yaml, which ``agentmesh run``
    refused: a consensus stop never holds over one agent. Now it is refused first, and nothing is stored."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    data = str(write_items(tmp_path / "items.jsonl", 2))
    db = tmp_path / "runs.db"
    args = ["optimize", "dylan_mmlu", "--data", data, "--top-k", "1", "--model", "qa_layer_one:x"]
    code, stdout, stderr = run_cli([*args, "--db", f"sqlite:///{db}"], capsys, monkeypatch)
    said = " ".join(stderr.split())
    assert code == 2, stdout
    assert "--top-k) 1: graph 'dylan_mmlu' with a team of 1 would not be a valid graph" in said
    assert "consensus needs 2 agents" in said and "choose a larger team" in said
    assert not db.exists() and not (tmp_path / "dylan_mmlu_top1.yaml").exists()

    model = ScriptedModel(respond=_layer_one_consensus)
    with pytest.raises(ConfigError, match="would not be a valid graph"):
        optimize(four_agent_graph(), [{"question": "Q?", "choices": ["a", "b"]}], top_k=1, model=model, store=None)
    assert model.calls == []

    # a --top-k beyond the candidates no longer leaves an empty database behind either
    code, _, stderr = run_cli(
        [*args[:5], "8", *args[6:], "--db", f"sqlite:///{db}"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "between 1 and the 7 candidates" in " ".join(stderr.split())
    assert not db.exists()


def test_the_accuracy_says_what_it_is_over_when_items_failed_and_ties_at_the_cut_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items labelled A, C, A; the team answers C; line 2 fails. The accuracy is 0 of 2 answered items (the
    failed one is said, not silently dropped: 1 of 2 items failing printed a bare "100.0%" before). Economist,
    doctor and mathematician answer first (seeded order) and share each item's credit, 1/3 each; historian never
    runs. --top-k 2 keeps two of the three tied agents: the candidates' order decides, and now the command says so."""
    graph = tmp_path / "team.yaml"
    graph.write_text(dump_graph(four_agent_graph()))
    monkeypatch.setenv("COLUMNS", "250")
    data = write_items(tmp_path / "items.jsonl", 3)
    args = ["optimize", str(graph), "--data", str(data), "--top-k", "2", "--model", "qa_layer_one:x"]
    args += ["--db", f"sqlite:///{tmp_path / 'runs.db'}", "--out", str(tmp_path / "best.yaml")]
    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 1, stderr
    found = json.loads(stdout)
    scores = {row["agent"]: row["importance"] for row in found["ranking"]}
    credited = [a for a, v in scores.items() if v]
    assert len(credited) == 3 and all(scores[a] == pytest.approx(1 / 3) for a in credited)
    assert found["team"] == [a for a in ["economist", "doctor", "mathematician", "historian"] if a in credited][:2]
    left = [a for a in credited if a not in found["team"]]
    assert found["tied_at_cut"] == left
    assert found["accuracy"] == 0.0

    code, stdout, stderr = run_cli(args, capsys, monkeypatch)  # every run reused
    said = " ".join(stdout.split())
    assert code == 1
    accuracy = "on the labelled items: 0.0% (0 of 2 correct; 1 more failed and is not counted)"
    assert accuracy in said
    assert f"tie at 0.3333: {', '.join(found['team'])} kept, {left[0]} not, by the candidates' order" in said


@register_provider("qa_no_letter")
def _no_letter(ref: Any, limits: Any, options: Any) -> ScriptedModel:
    """Agents that never write an option letter (a small model's usual reply); the ranker keeps the first two."""
    return ScriptedModel(respond=lambda r, c: "[1, 2]" if c.agent == "ranker" else "I am not sure. [[3, 3, 3, 3]]")


def test_items_without_a_readable_final_answer_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No reply holds a letter, so every item's final answer is None: the table ranked agents and the accuracy said
    0.0% with no sign that nothing could be read; the importance was credit for agreeing on no answer."""
    graph = tmp_path / "team.yaml"
    graph.write_text(dump_graph(four_agent_graph()))
    monkeypatch.setenv("COLUMNS", "250")
    data = write_items(tmp_path / "items.jsonl", 2)
    args = ["optimize", str(graph), "--data", str(data), "--top-k", "2", "--model", "qa_no_letter:x"]
    args += ["--db", f"sqlite:///{tmp_path / 'runs.db'}", "--out", str(tmp_path / "best.yaml")]
    code, stdout, stderr = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 0, stderr
    found = json.loads(stdout)
    assert [(i["line"], i["answer"], i["unanswered"]) for i in found["items"]] == [(1, None, True), (2, None, True)]
    assert found["accuracy"] == 0.0

    code, stdout, stderr = run_cli(args, capsys, monkeypatch)
    assert code == 0, stderr
    said = " ".join(stdout.split())
    assert "on 2 of 2 items the team gave no final answer its parser could read (lines 1, 2)" in said

    one = write_items(tmp_path / "one.jsonl", 1)  # one such item: "(line 1)", not "(lines 1)"
    code, stdout, stderr = run_cli([*args[:3], str(one), *args[4:]], capsys, monkeypatch)
    assert code == 0, stderr
    assert "on 1 of 1 item the team gave no final answer its parser could read (line 1): counted" in " ".join(
        stdout.split()
    )


@pytest.mark.parametrize(
    "command",
    [
        ["optimize", "dylan_mmlu", "--data", "{mmlu}", "--top-k", "2"],
        ["optimize", "sejury", "--data", "{labelled}"],
        ["calibrate", "magicore", "--data", "{problems}"],
        ["eval", "alu", "--data", "{qa}"],
    ],
    ids=["optimize dylan", "optimize sejury", "calibrate", "eval alu"],
)
def test_an_unknown_model_is_refused_before_the_store_is_opened(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--model bogus:x was found when the job started, after the store had been opened: an empty database file was
    left at a new --db."""
    files = {
        "mmlu": {"question": "Which?", "choices": ["a", "b"], "answer": "A"},
        "labelled": {"query": "Sum.", "artifact": "sum", "reference": "sum", "human": 4},
        "problems": {"question": "What is 2+2?"},
        "qa": {"id": "f1", "question": "Who?", "answer": "Her.", "split": "forget", "target": "Ada Lindqvist"},
    }
    for name, record in files.items():  # two lines, labelled apart (one label throughout is refused on its own)
        second = {**record, "human": 2} if "human" in record else record
        (tmp_path / f"{name}.jsonl").write_text(json.dumps(record) + "\n" + json.dumps(second) + "\n")
    args = [part.strip("{}") if part.startswith("{") else part for part in command]
    args = [str(tmp_path / f"{a}.jsonl") if a in files else a for a in args]
    db = tmp_path / "runs.db"
    code, stdout, stderr = run_cli([*args, "--model", "bogus:x", "--db", f"sqlite:///{db}"], capsys, monkeypatch)
    assert code == 2, stdout
    assert "bogus" in stderr
    assert not db.exists()


def test_the_help_says_top_k_is_per_team(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """On dylan_code_candidates --top-k 4 keeps 4 writers and 4 judges (README), and the job's errors say "per team";
    the help said only "how many agents the optimised team keeps", which reads as 4 in all."""
    monkeypatch.setenv("COLUMNS", "300")
    code, stdout, _ = run_cli(["optimize", "--help"], capsys, monkeypatch)
    assert code == 0
    assert "how many agents the optimised team keeps (of each team: writers and judges apart)" in " ".join(
        stdout.replace("│", " ").split()
    )
