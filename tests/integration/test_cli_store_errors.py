"""A database that refuses a command's writes, met on the command line: a clean error naming the database, not a
driver's traceback; and a batch's lines that failed before their runs were stored say why, not "no run '<id>'".

The refusal is real SQLite: a trigger on the ``runs`` table aborts every insert with SQLite's own words for a
read-only file (a test process is often root, whom file permissions do not stop)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agentmesh.store import Store
from tests._cli import run_cli

MULTIPLY = r"""
rules:
  - prompt: 'What is (\d+)\*(\d+)'
    template: '\boxed{ {{- match[1]|int * match[2]|int -}} }'
"""

READ_ONLY = "attempt to write a readonly database"


@pytest.fixture
def refusing_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An agentmesh database (schema set up) whose ``runs`` table refuses every new row."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "refusing.db"
    with Store(f"sqlite:///{path}"):
        pass
    with sqlite3.connect(path) as plain:
        plain.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, '{READ_ONLY}'); END")
    return f"sqlite:///{path}"


def _model(tmp_path: Path) -> str:
    path = tmp_path / "multiply.yaml"
    path.write_text(MULTIPLY)
    return f"scripted:{path}"


def test_a_run_on_a_database_that_refuses_writes_names_it_without_a_traceback(
    refusing_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["run", "debate", "-i", "question=What is 17*3?", "-m", _model(tmp_path), "--db", refusing_db]
    try:
        code, _, err = run_cli(args, capsys, monkeypatch)
    except sqlite3.Error as exc:  # what the command did: the driver's exception, as a traceback
        pytest.fail(f"the driver's exception escaped the command: {exc!r}")
    assert code == 1  # the run was attempted and could not be stored (2 is for a command that cannot work as given)
    message = " ".join(err.split())
    assert message.startswith("error: database sqlite:///") and "refusing.db" in message
    assert READ_ONLY in message and "--db" in message
    assert "Traceback" not in err


def test_a_batch_line_that_failed_before_its_run_was_stored_says_why(
    refusing_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"question": "What is 17*3?"}\n{"question": "What is 6*7?"}\n')
    args = ["run", "debate", "--input-file", str(items), "-m", _model(tmp_path), "--db", refusing_db]

    code, out, _ = run_cli([*args, "--json"], capsys, monkeypatch)
    assert code == 1
    outcomes = json.loads(out)
    assert [(o["line"], o["status"], o["run_id"]) for o in outcomes] == [(1, "failed", None), (2, "failed", None)]
    for outcome in outcomes:  # its own error; the lookup that followed it said "no run '<id>' in ..."
        assert READ_ONLY in outcome["error"] and "no run" not in outcome["error"]

    code, out, _ = run_cli(args, capsys, monkeypatch)
    assert code == 1
    flat = " ".join(out.split())
    assert "2 items: 0 succeeded, 2 failed" in flat
    assert "failed runs are stored" not in flat  # none was: there is no run to show or resume
