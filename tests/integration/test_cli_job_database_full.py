"""``agentmesh optimize`` (a job: :func:`agentmesh.optimize.items.run_items`, as ``calibrate`` and ``eval`` are)
whose database fills up stops starting items, says which it did not run and how to go on, and the same command run
again once there is room finishes the job.

A job went on starting each of its items after its database had failed for good, every one failing alike, and
listed each one failed. The full disk is real SQLite, as in tests/integration/test_cli_batch_database_full.py: the
child process running the command opens every connection to the test's database with ``PRAGMA max_page_count`` a
few dozen pages above what the database holds. A child process, as a real job is: once it has exited, the runs it
left marked running (their end could not be stored) are its dead process's, which running the job again resumes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agentmesh.spec.loader import dump_graph
from agentmesh.store import Store
from tests._cli import run_cli
from tests.integration.test_cli_batch_database_full import run_filling
from tests.unit.test_optimize import four_agent_graph

TEAM_PLUGIN = str(Path(__file__).resolve().parents[1] / "_dylan_team.py")
ITEMS = 12


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTMESH_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with Store(url):  # the schema set up: the cap counts from there
        pass
    return url


def test_a_job_stops_starting_items_once_its_database_is_full_and_the_same_command_finishes_it(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = tmp_path / "team.yaml"
    graph.write_text(dump_graph(four_agent_graph()))
    items = tmp_path / "items.jsonl"
    # each question a few KiB: a run stores some pages of prompts, so the cap leaves room for a few runs
    lines = [
        {"question": f"Question {i}? " + "x" * 3000, "choices": ["w", "x", "y", "z"], "answer": "C"}
        for i in range(ITEMS)
    ]
    items.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ["--import", TEAM_PLUGIN, "optimize", str(graph), "--data", str(items), "--top-k", "2", "-m", "dylanteam:x"]
    args += ["--db", db, "-c", "2", "--out", str(tmp_path / "best.yaml"), "--svg", str(tmp_path / "best.svg")]

    code, _, said = run_filling(args, db, tmp_path)
    assert code == 1, said
    stopped = re.search(
        r"stopped: the job stopped starting items once database (\S+) failed \(([^)]*)\)\. "
        r"(\d+) items? not run: lines? ([0-9, -]+); once the database can be written again, run the "
        r"same command again",
        said,
    )
    assert stopped, said
    assert stopped.group(1) == db and stopped.group(2) == "the disk holding it is full"
    assert 0 < int(stopped.group(3)) < ITEMS - 1
    assert said.count("database or disk is full") <= 3, said  # the items under way when it filled, not every item
    with Store(db) as store:
        stored = len(store.list_runs(limit=1000))
    assert stored + int(stopped.group(3)) == ITEMS

    code, _, err = run_cli(args, capsys, monkeypatch)  # room again: the same command finishes the job
    assert code == 0, err
    with Store(db) as store:
        runs = store.list_runs(limit=1000)
    assert len(runs) == ITEMS and {str(r.status) for r in runs} == {"succeeded"}
