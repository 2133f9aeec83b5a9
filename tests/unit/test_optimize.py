"""Team optimisation (``agentmesh optimize``) over a small scripted data set: the expected ranking, the optimised
spec, resumability (finished items are not run again, a failed item resumes without repeating its finished calls),
the data formats, and the CLI with its picture.

The team: four DyLAN MMLU roles, scripted so that their importance is known exactly (``tests/_dylan_team.py``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentmesh.datasets import read_items
from agentmesh.errors import ConfigError
from agentmesh.models import ScriptedModel
from agentmesh.models.registry import register_provider
from agentmesh.optimize import optimize
from agentmesh.spec import GraphSpec, load_graph
from agentmesh.spec.loader import dump_graph, graph_from_data
from agentmesh.spec.operators import RoundsParams
from agentmesh.store import Store
from tests._cli import run_cli
from tests._dylan_team import EXPECTED, TEAM, Team

REPO = Path(__file__).resolve().parents[2]


def four_agent_graph() -> GraphSpec:
    spec = load_graph(REPO / "graphs" / "dylan_mmlu.yaml")
    node = spec.nodes["dylan"]
    assert isinstance(node.params, RoundsParams)
    nodes = {**spec.nodes, "dylan": node.model_copy(update={"params": node.params.model_copy(update={"agents": TEAM})})}
    agents = {k: v for k, v in spec.agents.items() if k in {*TEAM, "ranker"}}
    return spec.model_copy(update={"nodes": nodes, "agents": agents})


def write_items(path: Path, n: int) -> Path:
    lines = [
        {"question": f"Question {i}?", "choices": ["w", "x", "y", "z"], "answer": "C" if i % 2 else "A"}
        for i in range(n)
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def test_optimize_ranks_by_mean_importance_and_writes_the_team(tmp_path: Path) -> None:
    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 3), spec)
    model = ScriptedModel(respond=Team())
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = optimize(spec, items, top_k=2, model=model, store=db, concurrency=2)

    assert not result.failed
    for agent, value in EXPECTED.items():
        assert result.scores[agent] == pytest.approx(float(value), abs=1e-12)
    assert result.ranking == ["mathematician", "historian", "economist", "doctor"]  # the tie keeps candidate order
    assert result.team == ["mathematician", "historian"]
    assert result.accuracy == pytest.approx(1 / 3)  # the team answers C; the items are labelled A, C, A
    assert len(model.calls) == 3 * (4 + 4 + 1 + 2)  # per item: two full layers, the ranker, two kept agents
    assert {i.answer for i in result.items} == {"C"}

    optimized = result.optimized
    assert optimized.name == "dylan_mmlu_top2"
    params = optimized.nodes["dylan"].params
    assert isinstance(params, RoundsParams) and params.agents == ["mathematician", "historian"]
    assert set(optimized.agents) == {"mathematician", "historian", "ranker"}
    assert "mathematician 1.958" in optimized.description
    reloaded = yaml.safe_load(dump_graph(optimized))
    assert reloaded["nodes"]["dylan"]["agents"] == ["mathematician", "historian"]


def test_optimize_is_resumable_and_never_repeats_a_finished_call(tmp_path: Path) -> None:
    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 3), spec)
    db = f"sqlite:///{tmp_path / 'runs.db'}"

    crashing = ScriptedModel(respond=Team(fail_on="Question 1?"))
    first = optimize(spec, items, top_k=2, model=crashing, store=db, concurrency=1)
    assert [i.line for i in first.failed] == [2]
    assert "went away" in (first.failed[0].error or "")
    calls_before = len(crashing.calls)

    again = ScriptedModel(respond=Team())
    second = optimize(spec, items, top_k=2, model=again, store=db, concurrency=1)
    assert not second.failed
    reused = [i.line for i in second.items if i.reused]
    assert reused == [1, 3]
    # the crashed item had finished its layer 1 (4 calls) when its first layer-2 call failed: the resumed run
    # serves those 4 from the store and makes the other 7; no finished call is ever made twice
    assert len(again.calls) == 7
    assert calls_before + len(again.calls) == 3 * 11
    assert second.ranking == ["mathematician", "historian", "economist", "doctor"]
    assert second.items[1].run_id == first.failed[0].run_id  # the same stored run, resumed

    third = ScriptedModel(respond=Team())
    optimize(spec, items, top_k=2, model=third, store=db)
    assert third.calls == []
    with Store(db) as store:
        assert len(store.list_runs(graph="dylan_mmlu")) == 3


def test_a_job_whose_every_item_failed_says_how_to_go_on(tmp_path: Path) -> None:
    """A server that went down failed every item: the error named the first one's and nothing else, though the
    runs are stored and the same command resumes them (as an interrupted job says)."""
    from agentmesh.errors import AgentmeshError

    spec = four_agent_graph()
    items = read_items(write_items(tmp_path / "items.jsonl", 1), spec)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with pytest.raises(AgentmeshError, match="every item failed") as info:
        optimize(spec, items, top_k=2, model=ScriptedModel(respond=Team(fail_on="Question 0?")), store=db)
    assert "went away" in str(info.value)
    assert "run the same command again" in str(info.value) and "resume" in str(info.value), str(info.value)
    again = optimize(spec, items, top_k=2, model=ScriptedModel(respond=Team()), store=db)
    assert not again.failed and again.items[0].run_id is not None


def test_optimize_rejects_a_graph_without_importance_and_a_bad_k(tmp_path: Path) -> None:
    items_path = write_items(tmp_path / "items.jsonl", 1)
    math = load_graph(REPO / "graphs" / "dylan_math.yaml")
    with pytest.raises(ConfigError, match="computes no agent importance"):
        optimize(math, [], top_k=2, model=ScriptedModel(default="x"), store=f"sqlite:///{tmp_path / 'r.db'}")
    spec = four_agent_graph()
    with pytest.raises(ConfigError, match="between 1 and the 4 candidates"):
        optimize(spec, read_items(items_path, spec), top_k=5, model=ScriptedModel(default="x"), store=None)


def test_data_formats_map_to_graph_inputs(tmp_path: Path) -> None:
    mmlu = load_graph(REPO / "graphs" / "dylan_mmlu.yaml")
    math = load_graph(REPO / "graphs" / "dylan_math.yaml")
    path = tmp_path / "mmlu.jsonl"
    path.write_text(
        json.dumps({"input": "Which?", "A": "w", "B": "x", "C": "y", "D": "z", "target": "C", "subject": "law"})
        + "\n"
        + json.dumps({"question": "Pick", "options": ["p", "q"], "answer": 1})
        + "\n"
    )
    first, second = read_items(path, mmlu)
    assert first.inputs == {"question": "Which?", "choices": ["w", "x", "y", "z"]} and first.gold == "C"
    assert second.inputs == {"question": "Pick", "choices": ["p", "q"]} and second.gold == "B"
    # the option's text as the answer (some MMLU exports): its letter, or every such item counted wrong
    path.write_text(json.dumps({"question": "Largest?", "choices": ["Mars", "Jupiter"], "answer": "Jupiter"}) + "\n")
    assert read_items(path, mmlu)[0].gold == "B"
    path.write_text(json.dumps({"input": "17*3?", "A": "41", "B": "51", "answer": "51"}) + "\n")
    assert read_items(path, mmlu)[0].gold == "B"

    path = tmp_path / "math.jsonl"
    path.write_text(
        json.dumps({"problem": "1/2+1/2?", "solution": "It is $\\boxed{1}$.", "level": "Level 1"})
        + "\n"
        + json.dumps({"question": "How many?", "answer": "Six and six.\n#### 1,2"})
        + "\n"
    )
    first, second = read_items(path, math)
    assert first.inputs == {"problem": "1/2+1/2?", "shots": 8} and first.gold == "1"
    assert second.inputs == {"problem": "How many?", "shots": 8} and second.gold == "12"

    path.write_text(json.dumps({"problme": "typo"}) + "\n")
    with pytest.raises(ConfigError, match=r"math.jsonl:1: .*missing input 'problem'.*unknown input\(s\) problme"):
        read_items(path, math)


def test_every_bad_line_of_a_data_file_is_named_at_once(tmp_path: Path) -> None:
    """One attempt per bad line is slow going on a large file: every bad line is listed (the first ten), and
    nothing runs."""
    mmlu = load_graph(REPO / "graphs" / "dylan_mmlu.yaml")
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "ok"}\n{"question": 3}\n{"qestion": "x"}\nnot json\n[1]\n')
    with pytest.raises(ConfigError) as caught:
        read_items(path, mmlu)
    message = str(caught.value)
    assert message.startswith(f"4 bad lines in {path} (a line holds the graph's inputs")
    for expected in (
        "bad.jsonl:2: graph 'dylan_mmlu': input 'question' should be string, got int 3",
        "bad.jsonl:3: graph 'dylan_mmlu': missing input 'question'",
        "bad.jsonl:4: not valid JSON (Expecting value at column 1)",
        "bad.jsonl:5: expected a JSON object of inputs, got list",
    ):
        assert expected in message, message
    assert "bad.jsonl:1" not in message and caught.value.context["line"] == 2
    path.write_text("".join(f'{{"question": {n}}}\n' for n in range(12)))
    with pytest.raises(ConfigError, match=r"(?s)12 bad lines .*bad.jsonl:10: .*\.\.\. and 2 more bad lines$"):
        read_items(path, mmlu)


def test_an_input_named_answer_is_not_the_gold_answer(tmp_path: Path) -> None:
    """A grader graph takes the answer to grade as an input: scoring its output against that same text measured
    nothing. Only fields the graph does not take are read as the reference."""
    grader = graph_from_data(
        {
            "name": "grader",
            "inputs": {"question": {}, "answer": {}},
            "agents": {"judge": {"prompt": "{{ question }} {{ answer }}", "parser": "text"}},
            "nodes": {"grade": {"op": "call", "agent": "judge"}},
        }
    )
    path = tmp_path / "graded.jsonl"
    path.write_text(json.dumps({"question": "2*3?", "answer": "6"}) + "\n")
    (item,) = read_items(path, grader)
    assert item.inputs == {"question": "2*3?", "answer": "6"} and item.gold is None
    path.write_text(json.dumps({"question": "2*3?", "answer": "6", "target": "correct"}) + "\n")
    assert read_items(path, grader)[0].gold == "correct"  # a field it does not take still is the reference


def test_a_data_file_that_is_not_utf8_or_is_a_folder_is_named_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Latin-1 export failed mid-read with a UnicodeDecodeError traceback (optimize, calibrate, run
    --input-file), and a folder was reported as a file that "does not exist"."""
    mmlu = load_graph(REPO / "graphs" / "dylan_mmlu.yaml")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"question": "ok?"}\n{"question": "caf\xe9?"}\n')
    with pytest.raises(ConfigError, match=r"latin.jsonl:2: not UTF-8 text \(byte 0xe9\)"):
        read_items(latin, mmlu)
    with pytest.raises(ConfigError, match="is a directory; expected a JSONL file"):
        read_items(tmp_path, mmlu)
    code, _out, err = run_cli(
        ["optimize", "dylan_mmlu", "--data", str(latin), "--top-k", "2", "--db", f"sqlite:///{tmp_path / 'r.db'}"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "not UTF-8 text" in " ".join(err.split()) and "Traceback" not in err
    # a JSON string may hold U+2028 (a line separator to str.splitlines): still one line
    sep = tmp_path / "sep.jsonl"
    sep.write_text(json.dumps({"question": "a\u2028b"}, ensure_ascii=False) + "\n", encoding="utf-8")
    (item,) = read_items(sep, mmlu)
    assert item.inputs["question"] == "a\u2028b"
    sep.write_bytes(b"\xef\xbb\xbf" + sep.read_bytes())  # a byte-order mark, as Windows editors write
    assert read_items(sep, mmlu)[0].inputs == item.inputs


def test_optimize_cli_prints_the_ranking_and_writes_spec_and_picture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    @register_provider("teamtest")
    def _factory(ref: Any, limits: Any, options: Any) -> ScriptedModel:
        return ScriptedModel(respond=Team())

    graph = tmp_path / "team.yaml"
    spec = four_agent_graph()
    text = dump_graph(spec)
    graph.write_text(text)
    out = tmp_path / "best.yaml"
    monkeypatch.setenv("COLUMNS", "160")
    code, stdout, stderr = run_cli(
        [
            "optimize",
            str(graph),
            "--data",
            str(write_items(tmp_path / "items.jsonl", 2)),
            "--top-k",
            "2",
            "--model",
            "teamtest:x",
            "--db",
            f"sqlite:///{tmp_path / 'runs.db'}",
            "--out",
            str(out),
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, stderr
    rows = [line for line in stdout.splitlines() if re.search(r"\b(mathematician|historian|economist|doctor)\b", line)]
    assert [re.search(r"(mathematician|historian|economist|doctor)", r).group(1) for r in rows[:4]] == [  # type: ignore[union-attr]
        "mathematician",
        "historian",
        "economist",
        "doctor",
    ]
    assert "1.9583" in stdout
    best = load_graph(out)
    params = best.nodes["dylan"].params
    assert isinstance(params, RoundsParams) and params.agents == ["mathematician", "historian"]
    svg = out.with_suffix(".svg").read_text()
    assert svg.startswith("<svg") and svg.count("<circle") >= 4 * 3
    assert "mathematician: 1.9583" in svg and "never ran" in svg  # layer 3 of the dropped agents

    # the optimised team runs as a graph of its own
    code, stdout, stderr = run_cli(
        ["run", str(out), "-i", "question=Q?", "--model", "teamtest:x", "--db", f"sqlite:///{tmp_path / 'r.db'}"],
        capsys,
        monkeypatch,
    )
    assert code == 0, stderr


def test_the_ranking_says_how_many_items_it_was_scored_on_when_some_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed item has no importance scores: the title said "3 items" where the means were over 2."""

    @register_provider("teamfail")
    def _factory(ref: Any, limits: Any, options: Any) -> ScriptedModel:
        return ScriptedModel(respond=Team(fail_on="Question 1?"))

    graph = tmp_path / "team.yaml"
    graph.write_text(dump_graph(four_agent_graph()))
    monkeypatch.setenv("COLUMNS", "200")
    args = ["optimize", str(graph), "--data", str(write_items(tmp_path / "items.jsonl", 3)), "--top-k", "2"]
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    code, stdout, stderr = run_cli(
        [*args, "--model", "teamfail:x", "--db", db, "--out", str(tmp_path / "o.yaml")], capsys, monkeypatch
    )
    assert code == 1
    assert "agents by mean importance (2 of 3 items" in " ".join(stdout.split())
    assert "line 2 failed" in " ".join(stderr.split())


def test_an_output_that_cannot_be_written_is_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--out or --svg in a folder that does not exist was a FileNotFoundError traceback after every run."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    data = str(write_items(tmp_path / "items.jsonl", 1))
    base = ["optimize", "dylan_mmlu", "--data", data, "--top-k", "2", "--model", "scripted:none.yaml", "--db", db]
    for extra, message in [
        (["--out", str(tmp_path / "no" / "o.yaml")], f"--out {tmp_path / 'no' / 'o.yaml'}: folder "),
        (["--svg", str(tmp_path)], f"--svg {tmp_path}: is a directory; expected a file name"),
    ]:
        code, _, stderr = run_cli([*base, *extra], capsys, monkeypatch)
        assert code == 2 and message in " ".join(stderr.split()) and "Traceback" not in stderr
    assert not (tmp_path / "runs.db").exists()


def test_a_graph_file_names_the_default_output_after_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of dylan_mmlu keeps the name dylan_mmlu: its job wrote (over) dylan_mmlu_top2.yaml, the file a job
    on the shipped graph writes. ``calibrate`` already named its file after the graph file."""

    @register_provider("teamcopy")
    def _factory(ref: Any, limits: Any, options: Any) -> ScriptedModel:
        return ScriptedModel(respond=Team())

    (tmp_path / "my_copy.yaml").write_text(dump_graph(four_agent_graph()))
    monkeypatch.chdir(tmp_path)
    data = str(write_items(tmp_path / "items.jsonl", 1))
    args = ["optimize", "my_copy.yaml", "--data", data, "--top-k", "2", "--model", "teamcopy:x"]
    code, _, stderr = run_cli([*args, "--db", f"sqlite:///{tmp_path / 'r.db'}"], capsys, monkeypatch)
    assert code == 0, stderr
    assert (tmp_path / "my_copy_top2.yaml").is_file() and (tmp_path / "my_copy_top2.svg").is_file()
    assert not (tmp_path / "dylan_mmlu_top2.yaml").exists()
