"""``agentmesh run --input-file FILE --limit N`` runs the first N items; a bad line after them refused the whole
command ("3 bad lines in items.jsonl ...; nothing was run"), so a trial on a large file's first few lines needed a
file that was right to its end. The lines after the limit are neither run nor read now; bad lines within it are
refused as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmesh.datasets import read_items
from agentmesh.errors import ConfigError
from agentmesh.runtime.arguments import resolve_graph
from tests._cli import run_cli


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text(
        '{"question": "What is 2+2?"}\n\n{"question": "What is 3+3?"}\n{"question": \n{"q": "missing"}\n',
        encoding="utf-8",
    )
    return path


def test_the_lines_after_the_limit_are_not_read(tmp_path: Path) -> None:
    spec = resolve_graph("self_consistency")
    items = read_items(_file(tmp_path), spec, limit=2)
    assert [(i.line, i.inputs["question"]) for i in items] == [(1, "What is 2+2?"), (3, "What is 3+3?")]


def test_a_bad_line_within_the_limit_is_still_refused(tmp_path: Path) -> None:
    spec = resolve_graph("self_consistency")
    with pytest.raises(ConfigError, match=r"items.jsonl:4: not valid JSON") as info:
        read_items(_file(tmp_path), spec, limit=3)
    assert "items.jsonl:5" not in str(info.value)  # (past the limit: not read)
    with pytest.raises(ConfigError, match=r"2 bad lines"):
        read_items(_file(tmp_path), spec)


def test_run_with_a_limit_runs_the_first_items_of_a_file_bad_after_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "model.yaml"
    script.write_text('default: "\\\\boxed{4}"\n', encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    args = ["run", "self_consistency", "--input-file", str(_file(tmp_path)), "--limit", "2"]
    code, out, err = run_cli([*args, "-m", f"scripted:{script}", "--db", db, "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert [row["line"] for row in json.loads(out)] == [1, 3]
