"""``agentmesh run GRAPH --input-file -`` said "input file - does not exist". A batch is stored with its file's
path (and hash), and ``resume --batch`` reads that file again for the lines an interruption kept from starting:
standard input cannot be read twice, so ``-`` is refused, saying why and what to do instead."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests._cli import run_cli


def test_input_file_dash_is_refused_saying_why_and_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"question": "What is 2+2?"}) + "\n"))
    db = tmp_path / "runs.db"
    code, _, err = run_cli(["run", "debate", "--input-file", "-", "--db", f"sqlite:///{db}"], capsys, monkeypatch)
    said = " ".join(err.split())
    assert code == 2, said
    assert "does not exist" not in said
    assert "--input-file -: items cannot be read from standard input" in said, said
    assert "agentmesh resume --batch reads that file again" in said and "--input-file items.jsonl" in said
    assert not db.exists()  # refused before the store is opened
