"""Files a user hands the command line that are not UTF-8 (a graph or card saved as Latin-1 by an editor, an export
file mangled on its way) are refused naming the file, the line and the byte; they were a UnicodeDecodeError
traceback from ``graph validate``, ``run`` and ``import``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._cli import run_cli

LATIN1_GRAPH = (
    'name: cafe\ninputs:\n  q: {type: string}\nagents:\n  a: {prompt: "caf\xe9 {{ q }}"}\n'
    "nodes:\n  n: {op: call, agent: a}\n"
)


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def test_a_graph_file_that_is_not_utf8_is_named_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = tmp_path / "cafe.yaml"
    graph.write_bytes(LATIN1_GRAPH.encode("latin-1"))

    code, out, err = run_cli(["graph", "validate", str(graph), "debate"], capsys, monkeypatch)
    assert code == 2
    assert f"{graph}:5: not UTF-8 text (byte 0xe9); save the file as UTF-8" in " ".join(err.split())
    assert "✓ debate" in out  # the other files are still checked

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    code, _, err = run_cli(["run", str(graph), "-i", "q=x", "--db", db], capsys, monkeypatch)
    assert code == 2
    assert err.startswith("error: ") and "not UTF-8 text" in err and "Traceback" not in err
    assert not (tmp_path / "runs.db").exists()  # refused before anything was stored


def test_a_card_file_that_is_not_utf8_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "card.yaml").write_bytes('name: a\nprompt: "caf\xe9"\n'.encode("latin-1"))
    graph = tmp_path / "g.yaml"
    graph.write_text("name: g\nagents:\n  a: card.yaml\nnodes:\n  n: {op: call, agent: a}\n")
    code, _, err = run_cli(["graph", "validate", str(graph)], capsys, monkeypatch)
    assert code == 2
    assert "card.yaml:2: not UTF-8 text (byte 0xe9)" in " ".join(err.split())


def test_import_of_a_file_that_is_not_utf8_or_is_a_folder_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    mangled = tmp_path / "run.json"
    mangled.write_bytes(b'{"format": "agentmesh-run", "note": "caf\xe9"}')
    code, _, err = run_cli(["import", str(mangled), "--db", db], capsys, monkeypatch)
    assert code == 2
    flat = " ".join(err.split())
    assert flat.startswith(f"error: {mangled}: not UTF-8 text (byte 0xe9 at offset")
    assert "agentmesh export" in flat

    folder = tmp_path / "exports"
    folder.mkdir()
    code, _, err = run_cli(["import", str(folder), "--db", db], capsys, monkeypatch)
    assert code == 2
    assert f"{folder}: a directory" in " ".join(err.split())  # it said "no such file" of a folder that is there
