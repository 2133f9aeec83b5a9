"""A batch whose database fills up stops starting lines, and ``resume --batch`` runs them once there is room.

On a 2 MB tmpfs, ``agentmesh run --input-file`` of 1,000 items stored 27 runs and then started each of the 973
other lines, every one failing alike ("database or disk is full"), before it said anything. Once the database
fails in a way every later run would meet too, the batch now lets the runs under way end and starts no more: the
lines it did not start are "not run", named with the database and why, for ``resume --batch`` to run.

The full disk is real SQLite: every connection of the test's database is opened with ``PRAGMA max_page_count``
a few dozen pages above what the empty database holds, so that SQLite itself answers SQLITE_FULL ("database or
disk is full") once the batch has stored a few runs, as it does on a full disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentmesh.store import Store
from tests._cli import run_cli

#: Each answer a line long, each question a few KiB: a run stores some pages of prompts and answers.
ANSWER_ALL = "rules:\n  - {agent: debater, template: '\\boxed{1}'}\n"
LINES = 24


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with Store(url):  # the schema set up: the cap below counts from there
        pass
    return url


#: The command line, with every SQLite connection to $FULL_DB opened capped at $FULL_PAGES pages.
FILLING = """
import os, sys, sqlalchemy as sa
from sqlalchemy import event
path, pages = os.environ["FULL_DB"], int(os.environ["FULL_PAGES"])

@event.listens_for(sa.Engine, "connect")
def cap(dbapi_connection, _record):
    if any(row[2] == path for row in dbapi_connection.execute("PRAGMA database_list").fetchall()):
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

from agentmesh.cli import main
main()
"""


def run_filling(args: list[str], db: str, cwd: Path) -> tuple[int, str, str]:
    """``agentmesh <args>`` in a child process whose connections to ``db`` can grow it by 40 pages (160 KiB) at
    most: (exit code, stdout, stderr as one line). A child process, as a real batch is: once it has exited, the
    runs it left marked running are its dead process's, which ``resume --batch`` takes up."""
    path = db.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as plain:
        pages = int(plain.execute("PRAGMA page_count").fetchone()[0])
    env = {k: v for k, v in os.environ.items() if k != "AGENTMESH_CONFIG"}
    env.update(FULL_DB=path, FULL_PAGES=str(pages + 40), COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-c", FILLING, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stdout, " ".join(done.stderr.split())


def _items(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "model.yaml"
    model.write_text(ANSWER_ALL)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"question": f"q{n} " + "x" * 3000}) + "\n" for n in range(1, LINES + 1)))
    return model, items


def test_a_batch_stops_starting_lines_once_its_database_is_full_and_resume_batch_runs_them(
    db: str, tmp_path: Path
) -> None:
    model, items = _items(tmp_path)
    args = ["run", "debate", "--input-file", str(items), "-m", f"scripted:{model}", "--db", db, "-c", "2"]

    code, out, said = run_filling([*args, "--json"], db, tmp_path)
    assert code == 1, said
    outcomes = json.loads(out)
    by_status: dict[str, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        by_status.setdefault(outcome["status"], []).append(outcome)
    assert by_status.get("succeeded"), "the cap should leave room for a few runs"
    failed, not_run = by_status.get("failed", []), by_status.get("not run", [])
    assert failed and not_run, by_status.keys()
    assert all("database or disk is full" in o["error"] for o in failed)
    # the runs under way when the database filled (two at once) end as they may; no line is started after them
    first_failed = min(o["line"] for o in failed)
    assert len(failed) <= 2 and all(o["line"] > first_failed for o in not_run)
    assert all(o["run_id"] is None and o["error"] is None for o in not_run)
    assert all("stopped starting runs once database sqlite:///" in o["not_run"] for o in not_run)
    assert "(the disk holding it is full)" in not_run[0]["not_run"]
    batch = outcomes[0]["batch"]
    lines = sorted(o["line"] for o in not_run)
    assert f"{len(not_run)} items not run: lines {lines[0]}-{lines[-1]} of {items}" in said, said
    assert f"agentmesh resume --batch {batch} runs them, and continues the runs that failed" in said
    assert "runs.db failed (the disk holding it is full)" in said

    with Store(db) as store:  # the lines not run have no run: a resume of the batch reads them from the file
        stored = store.list_runs(batch=batch, limit=1000)
    assert {(r.meta.get("batch") or {}).get("line") for r in stored}.isdisjoint(lines)


def test_the_lines_not_run_run_once_the_disk_has_room(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, items = _items(tmp_path)
    args = ["run", "debate", "--input-file", str(items), "-m", f"scripted:{model}", "--db", db, "-c", "2", "--json"]
    code, out, said = run_filling(args, db, tmp_path)
    assert code == 1, said
    batch = json.loads(out)[0]["batch"]

    code, out, err = run_cli(["resume", "--batch", batch, "--db", db, "--json"], capsys, monkeypatch)
    assert code == 0, err
    with Store(db) as store:
        stored = store.list_runs(batch=batch, limit=1000)
    assert len(stored) == LINES and {str(r.status) for r in stored} == {"succeeded"}, [r.error for r in stored]
