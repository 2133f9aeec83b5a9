"""``agentmesh eval alu`` on a database it cannot write: each system's job stops starting its questions at the first
failure (every later one would fail alike) and says once, per job, which it did not run and how to go on, instead of
a line for every question. The read-only database is real SQLite (``PRAGMA query_only`` on every connection of the
test's file: "attempt to write a readonly database", as for a read-only file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmesh.store import Store
from tests._cli import run_cli
from tests.unit.test_alu_eval_cli import Answers, answers, base_args, write_data
from tests.unit.test_job_database_full import database_limited

__all__ = ["answers"]  # (the fixture, used by name)


def test_eval_on_a_read_only_database_stops_each_job_and_says_so_once(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    qa, _ = write_data(tmp_path)
    path = tmp_path / "runs.db"
    with Store(f"sqlite:///{path}"):
        pass
    monkeypatch.setenv("COLUMNS", "220")
    args = [*base_args(tmp_path, qa), "--attacks", "none", "--baselines", "vanilla", "-c", "1"]
    with database_limited(path, "PRAGMA query_only = 1"):
        code, _, stderr = run_cli(args, capsys, monkeypatch)
    said = " ".join(stderr.split())
    assert code == 1, said
    for system in ("alu", "vanilla"):
        assert (
            f"stopped: the job stopped starting items once database sqlite:///{path} failed (it cannot be written "
            f"(a read-only file, folder or mount)). 9 items not run ({system}): lines 2-10; once the database can "
            "be written again, run the same command again"
        ) in said, said
    assert said.count("failed (run ") == 2, said  # the first question of each system, not every one

    code, out, _ = run_cli([*args, "--json"], capsys, monkeypatch)  # writable again: the same command runs them
    assert code == 0
    assert json.loads(out)["systems"]["vanilla"]["failed"] == []
