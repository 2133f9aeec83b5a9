"""``agentmesh run -m replay:RUN --db URL`` reads RUN from the database at URL. With no database there, the command
made one (empty), said "no run 'RUN' in ..." and left the new file behind; it now refuses the missing database as
the commands that read runs do, and makes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._cli import run_cli


def test_a_replay_model_from_a_database_that_is_not_there_makes_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "typo.db"
    code, _out, err = run_cli(
        ["run", "debate", "-i", "question=hi", "-m", "replay:3f2a", "--db", f"sqlite:///{db}"], capsys, monkeypatch
    )
    assert code == 2, err
    assert f"no agentmesh database at {db}" in " ".join(err.split()), err
    assert not db.exists() and not (tmp_path / ".agentmesh").exists()
