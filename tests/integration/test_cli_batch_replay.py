"""A replay of a batch's run (``run --input-file``) checks the graph file as it is today, as a replay of a single
run does (README: "a replay uses the run's graph as it is now ... so it tells whether an edit still reproduces the
run"). The batch stored no ``meta.source``: the replay ran the spec stored with the run and said "identical" after
the file's prompt had changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.store import Store
from tests._cli import run_cli

GRAPH = """
name: echo
inputs:
  name: {type: string}
agents:
  echo:
    prompt: "name={{ name }}"
nodes:
  say: {op: call, agent: echo}
"""


def test_a_replay_of_a_batchs_run_checks_todays_graph_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    graph = tmp_path / "echo.yaml"
    graph.write_text(GRAPH)
    script = tmp_path / "any.yaml"
    script.write_text("rules:\n  - template: 'ok'\n")
    items = tmp_path / "items.jsonl"
    items.write_text('{"name": "a"}\n{"name": "b"}\n')

    code, _, err = run_cli(
        ["run", str(graph), "--input-file", str(items), "-m", f"scripted:{script}", "--db", db], capsys, monkeypatch
    )
    assert code == 0, err
    with Store(db) as store:
        runs = store.list_runs()
    assert len(runs) == 2
    assert {r.meta.get("source") for r in runs} == {str(graph.resolve())}

    first = runs[0].id
    code, out, err = run_cli(["replay", first, "--db", db], capsys, monkeypatch)
    assert code == 0 and f"graph from {graph.resolve()}" in out and "identical" in out, out + err

    graph.write_text(GRAPH.replace("name={{ name }}", "NAME={{ name }}"))  # an edit that changes every prompt
    code, out, err = run_cli(["replay", first, "--db", db], capsys, monkeypatch)
    assert code == 1 and "diverged" in out, out + err
