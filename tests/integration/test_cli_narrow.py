"""On a narrow terminal (a split pane, COLUMNS=40..70) ``runs`` and a batch's summary still show each run's answer.

As tables, the fixed columns (id, status, stop, calls) took ~55 columns and rich shrank ``graph`` and ``answer`` to
nothing: the one thing the user ran the batch for was not on the screen (and "line 12" read "line")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._cli import run_cli

MULTIPLY = r"""
rules:
  - prompt: 'What is (\d+)\*(\d+)'
    template: '\boxed{ {{- match[1]|int * match[2]|int -}} }'
"""


@pytest.mark.parametrize("columns", [40, 60])
def test_runs_and_a_batch_summary_keep_the_answer_on_a_narrow_terminal(
    columns: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", str(columns))
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    script = tmp_path / "multiply.yaml"
    script.write_text(MULTIPLY)
    items = tmp_path / "items.jsonl"
    items.write_text('{"question": "What is 17*3?", "answer": "#### 51"}\n{"question": "What is 123*45?"}\n')

    code, out, err = run_cli(
        ["run", "debate", "--input-file", str(items), "-m", f"scripted:{script}", "--db", db], capsys, monkeypatch
    )
    assert code == 0, err
    assert all(len(line) <= columns for line in out.splitlines())
    code, data, _ = run_cli(["runs", "--db", db, "--json"], capsys, monkeypatch)
    runs = {r["meta"]["batch"]["line"]: r["id"] for r in json.loads(data)}
    lines = out.splitlines()
    for line, answer in ((1, "51"), (2, "5535")):
        (head,) = [i for i, text in enumerate(lines) if text.startswith(f"line {line} · ")]
        assert runs[line][:12] in lines[head] and "succeeded" in lines[head]
        assert lines[head + 1].split()[:2] == ["answer", answer]
    assert "gold 51 ✓" in out

    code, out, _ = run_cli(["runs", "--db", db], capsys, monkeypatch)
    assert code == 0
    assert all(len(line) <= columns for line in out.splitlines())
    lines = out.splitlines()
    for line, answer in ((1, "51"), (2, "5535")):
        (head,) = [i for i, text in enumerate(lines) if text.startswith(runs[line][:12])]
        assert "succeeded" in lines[head] and "debate" in lines[head]
        assert lines[head + 1].split()[:2] == ["answer", answer]


def test_a_large_batchs_digest_keeps_how_its_runs_ended_on_a_narrow_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond 25 items the summary is a digest, a row per way the runs ended: its "stop reason / error" column,
    the one that says why runs failed, was the one rich squeezed out."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "50")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    script = tmp_path / "multiply.yaml"
    script.write_text(MULTIPLY)
    items = tmp_path / "items.jsonl"
    lines = [f'{{"question": "What is {i}*3?"}}' for i in range(30)] + ['{"question": "Tell me a joke."}']
    items.write_text("\n".join(lines) + "\n")

    code, out, err = run_cli(
        ["run", "debate", "--input-file", str(items), "-m", f"scripted:{script}", "--db", db], capsys, monkeypatch
    )
    assert code == 1, err
    assert all(len(line) <= 50 for line in out.splitlines())
    flat = " ".join(out.split())
    assert "succeeded · 30 items · 90 calls consensus" in flat
    assert "failed · 1 item · 3 calls scripted:" in flat and "no rule left" in flat
    assert "total · 31 items · 93 calls" in flat
