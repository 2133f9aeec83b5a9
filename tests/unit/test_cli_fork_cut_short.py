"""``agentmesh replay RUN --from STEP`` (a fork) stores a new run before its live calls; when it failed or was
interrupted, the command printed the error alone, and the fork's run id -- what ``show`` and ``resume`` take -- was
left to be found with ``agentmesh runs``."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmesh.store import Store
from tests._cli import run_cli


def test_a_fork_that_fails_names_its_stored_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    answers = tmp_path / "answers.yaml"
    replies = ", ".join(f"'\\boxed{{{i}}}'" for i in range(9))  # every reply its own answer: no consensus
    answers.write_text(f"rules:\n  - responses: [{replies}]\n", encoding="utf-8")
    silent = tmp_path / "silent.yaml"
    silent.write_text("rules: []\n", encoding="utf-8")  # answers nothing: the fork's first live call fails
    code, _, err = run_cli(
        ["run", "debate", "-i", "question=q", "-m", f"scripted:{answers}", "--db", db], capsys, monkeypatch
    )
    assert code == 0, err
    with Store(db) as store:
        (parent,) = store.list_runs()

    code, _, err = run_cli(
        ["replay", parent.id, "--from", "debate@2", "-m", f"scripted:{silent}", "--db", db], capsys, monkeypatch
    )
    assert code == 1, err  # the fork ran and its model failed: a failure of the work
    with Store(db) as store:
        (fork,) = [r for r in store.list_runs() if r.id != parent.id]
    said = " ".join(err.split())
    assert f"forked run {fork.id} (from {parent.id[:12]} at step debate@2) failed; it is stored" in said, said
    assert f"agentmesh resume {fork.id[:12]}" in said
