"""A job's output files (``--out``, ``--svg``) that are one file, or one of its inputs, are refused before any run.

``optimize ... --out team.svg`` wrote the optimised graph, then its picture over it, and said "run it: agentmesh
run team.svg"; ``--out items.jsonl`` (the ``--data`` file) replaced the user's data with a graph, and ``--out`` the
graph's own file replaced the candidate team with the chosen one. ``--svg team.png`` wrote an SVG under a PNG's
name (``graph show`` refuses that)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmesh.spec.loader import dump_graph
from tests._cli import run_cli
from tests.unit.test_optimize import four_agent_graph, write_items


def _refused(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    code, _, err = run_cli(args, capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 2, said
    return said


def test_optimize_refuses_out_and_svg_on_one_file_or_on_its_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = tmp_path / "team.yaml"
    graph.write_text(dump_graph(four_agent_graph()))
    data = write_items(tmp_path / "items.jsonl", 2)
    before = data.read_text(), graph.read_text()
    db = tmp_path / "runs.db"
    args = ["optimize", str(graph), "--data", str(data), "--top-k", "2", "--model", "dylanteam:x"]
    args += ["--db", f"sqlite:///{db}"]

    said = _refused([*args, "--out", str(tmp_path / "best.svg")], capsys, monkeypatch)  # the picture's default
    assert f"--out {tmp_path / 'best.svg'} is the same file as --svg {tmp_path / 'best.svg'}" in said, said
    said = _refused([*args, "--out", str(tmp_path / "b.svg"), "--svg", str(tmp_path / "b.svg")], capsys, monkeypatch)
    assert "is the same file as --svg" in said and "give --out another file" in said, said
    said = _refused([*args, "--out", str(data)], capsys, monkeypatch)
    assert f"--out {data} is the same file as --data {data}" in said, said
    said = _refused([*args, "--out", str(graph)], capsys, monkeypatch)
    assert f"--out {graph} is the same file as the graph file {graph}" in said, said
    said = _refused(
        [*args, "--out", str(tmp_path / "t.yaml"), "--svg", str(tmp_path / "team.png")], capsys, monkeypatch
    )  # an SVG an image viewer
    assert f"--svg {tmp_path / 'team.png'}: it writes SVG; name the file *.svg" in said, said  # cannot open
    assert (data.read_text(), graph.read_text()) == before and not db.exists()
    assert not list(tmp_path.glob("*.svg")) and not list(tmp_path.glob("*.png"))


def test_an_se_jury_and_a_magicore_calibration_refuse_them_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    labelled = tmp_path / "labelled.jsonl"
    lines = [{"query": f"q{n}", "artifact": f"a{n}", "reference": "r", "human": n % 5 + 1} for n in range(4)]
    labelled.write_text("".join(json.dumps(line) + "\n" for line in lines))
    db = tmp_path / "runs.db"
    jury = ["optimize", "sejury", "--data", str(labelled), "--model", "scripted:none.yaml", "--db", f"sqlite:///{db}"]
    said = _refused([*jury, "--out", str(labelled)], capsys, monkeypatch)
    assert f"--out {labelled} is the same file as --data {labelled}" in said, said
    said = _refused([*jury, "--out", str(tmp_path / "t.svg")], capsys, monkeypatch)
    assert "is the same file as --svg" in said, said

    problems = tmp_path / "problems.jsonl"
    problems.write_text('{"question": "1+1?"}\n{"question": "2+2?"}\n')
    magicore = ["calibrate", "magicore", "--data", str(problems), "--model", "scripted:none.yaml"]
    said = _refused([*magicore, "--db", f"sqlite:///{db}", "--out", str(problems)], capsys, monkeypatch)
    assert f"--out {problems} is the same file as --data {problems}" in said, said
    assert problems.read_text() == '{"question": "1+1?"}\n{"question": "2+2?"}\n' and not db.exists()
