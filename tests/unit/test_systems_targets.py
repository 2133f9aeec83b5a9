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


def test_the_echo_says_the_name_as_stored_and_loses_nothing_to_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``targets add`` echoed the name as typed: "'ada '" for a stored "ada", and a key pasted as a name in full
    where the store keeps "[redacted]". And a name or set with brackets lost them in the echo ('\\' was printed
    for "[redacted]"): the escaped text was quoted with !r, which doubled rich's escape backslash."""
    monkeypatch.setenv("COLUMNS", "200")
    db = ["--db", f"sqlite:///{tmp_path / 'runs.db'}"]
    code, stdout, stderr = run_cli(["targets", "add", "s[red]", "--name", "  ada  ", *db], capsys, monkeypatch)
    assert code == 0, stderr
    assert "added target 1 'ada' to 's[red]': version 1" in stdout
    key = "sk-proj-" + "abcdefghijklmnopqrstuvwxyz123456"
    code, stdout, stderr = run_cli(["targets", "add", "s[red]", "--name", key, *db], capsys, monkeypatch)
    assert code == 0, stderr
    assert "added target 2 '[redacted]' to 's[red]': version 2" in stdout and key not in stdout
    code, stdout, stderr = run_cli(["targets", "remove", "s[red]", "1", *db], capsys, monkeypatch)
    assert code == 0, stderr
    assert "removed target 1 from 's[red]': version 3" in stdout


def test_eval_names_a_stored_set_with_brackets_whole(capsys: pytest.CaptureFixture[str]) -> None:
    """The line under ``eval alu --target-set``'s table quoted the escaped name with !r: "s[red]" was printed
    "s\\" (the doubled backslash no longer escaped the bracket, and rich took "[red]" as a style)."""
    from agentmesh.cli._common import console
    from agentmesh.cli.eval import _targets_line

    console.print(_targets_line({"set": "s[red]", "version": 4, "count": 2}))
    assert "targets: 2 of set 's[red]', version 4" in capsys.readouterr().out
