"""``agentmesh targets`` and ``eval alu --target-set`` against a --db that is not there: the commands that only read
a target set (or remove from one) refuse a SQLite file that does not exist, as ``agentmesh runs`` does, rather than
create an empty database at a mistyped path, report "no target set", and leave the file behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._cli import run_cli


@pytest.mark.parametrize(
    "command",
    [
        ["targets", "list"],
        ["targets", "list", "authors"],
        ["targets", "remove", "authors", "1"],
        ["eval", "alu", "--data", "{data}", "--target-set", "authors", "--model", "scripted:none.yaml"],
    ],
    ids=["list sets", "list a set", "remove", "eval --target-set"],
)
def test_a_command_reading_targets_refuses_a_database_that_is_not_there(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "qa.jsonl"
    item = {"id": "f1", "question": "Who?", "answer": "Her.", "split": "forget", "target": "Mei-Lin Tsao"}
    data.write_text(json.dumps(item) + "\n", encoding="utf-8")
    typo = tmp_path / "rnus.db"
    args = [part.replace("{data}", str(data)) for part in command]
    code, stdout, stderr = run_cli([*args, "--db", f"sqlite:///{typo}"], capsys, monkeypatch)
    assert code == 2, stdout
    assert f"no agentmesh database at {typo}" in " ".join(stderr.split())
    assert not typo.exists()


def test_a_set_added_then_listed_and_removed_still_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal is for a file that is not there: a database ``targets add`` created is read and changed."""
    db = ["--db", f"sqlite:///{tmp_path / 'runs.db'}"]
    code, _, stderr = run_cli(["targets", "add", "authors", "--name", "Mei-Lin Tsao", *db], capsys, monkeypatch)
    assert code == 0, stderr
    code, stdout, stderr = run_cli(["targets", "list", "authors", "--json", *db], capsys, monkeypatch)
    assert code == 0, stderr
    assert [t["name"] for t in json.loads(stdout)["targets"]] == ["Mei-Lin Tsao"]
    code, stdout, stderr = run_cli(["targets", "remove", "authors", "1", "--json", *db], capsys, monkeypatch)
    assert code == 0, stderr
    assert json.loads(stdout) == {"target_set": "authors", "version": 2, "removed": [1]}
