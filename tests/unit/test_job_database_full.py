"""A job (``optimize``, ``calibrate``, ``eval``: :func:`agentmesh.optimize.items.run_items`) whose database fills up
or cannot be written stops starting items, as a batch does, and running it again runs the items it did not start.

A job went on starting every item after its database had failed for good, each failing alike ("database or disk
is full"), and listed each one failed. The database here is real SQLite: every connection to the test's file is
opened with ``PRAGMA max_page_count`` a few dozen pages above what it holds (SQLite then answers SQLITE_FULL,
"database or disk is full", as on a full disk), or with ``PRAGMA query_only`` (SQLITE_READONLY, "attempt to write a
readonly database", as for a read-only file: chmod does not stop root, who runs the tests in CI's containers).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from agentmesh.errors import AgentmeshError, DatabaseFailedError
from agentmesh.optimize.items import JobRun, run_items
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.runtime.stop_starting import NOT_STARTED, StopStarting
from agentmesh.store import Store

ANSWER_ALL = "rules:\n  - {agent: debater, template: '\\boxed{1}'}\n"
ITEMS = 16


@contextlib.contextmanager
def database_limited(path: Path, pragma: str) -> Iterator[None]:
    """Every connection this process opens to the SQLite file ``path`` from now on runs ``pragma`` first."""

    def limit(dbapi_connection: Any, _record: Any) -> None:
        if any(row[2] == str(path) for row in dbapi_connection.execute("PRAGMA database_list").fetchall()):
            dbapi_connection.execute(pragma)

    event.listen(sa.Engine, "connect", limit)
    try:
        yield
    finally:
        event.remove(sa.Engine, "connect", limit)


def _pages(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as plain:
        return int(plain.execute("PRAGMA page_count").fetchone()[0])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    with Store(f"sqlite:///{path}"):  # the schema set up: the caps count from there
        pass
    return path


def _job(path: Path, tmp_path: Path) -> JobRun:
    model = tmp_path / "model.yaml"
    model.write_text(ANSWER_ALL)
    items = [{"question": f"q{n} " + "x" * 3000} for n in range(1, ITEMS + 1)]  # a run: some pages of prompts
    return asyncio.run(
        run_items(
            resolve_graph("debate"),
            items,
            kind="optimize",
            model=f"scripted:{model}",
            store=f"sqlite:///{path}",
            concurrency=2,
        )
    )


def test_a_job_stops_starting_items_once_its_database_is_full_and_runs_them_when_run_again(
    db: Path, tmp_path: Path
) -> None:
    with database_limited(db, f"PRAGMA max_page_count = {_pages(db) + 40}"):
        done = _job(db, tmp_path)
    succeeded = [i for i in done.items if i.error is None]
    failed = [i for i in done.items if i.error is not None and not i.not_run]
    not_run = [i for i in done.items if i.not_run]
    assert succeeded, "the cap should leave room for a few runs"
    assert failed and not_run, [i.error for i in done.items]
    assert all("database or disk is full" in str(i.error) for i in failed)
    # the items under way when the database filled (two at once) end as they may; none is started after them
    assert len(failed) <= 2 and min(i.line for i in not_run) > min(i.line for i in failed)
    for item in not_run:
        assert item.run_id is None and item.outputs is None
        assert str(item.error).startswith(
            f"{NOT_STARTED}the job stopped starting items once database sqlite:///{db} failed "
            "(the disk holding it is full)"
        )
    with Store(f"sqlite:///{db}") as store:  # the items not run have no run
        stored = store.list_runs(limit=1000)
    assert {r.meta["optimize"]["line"] for r in stored}.isdisjoint(i.line for i in not_run)

    # room again: the job runs them (the failed ones, left "running" by this live process that could not store
    # their end, resume once it has exited: tests/integration/test_cli_job_database_full.py)
    again = {i.line: i for i in _job(db, tmp_path).items}
    assert all(again[i.line].error is None and not again[i.line].reused for i in not_run)
    assert all(again[i.line].reused for i in succeeded)


def test_a_job_on_a_database_it_cannot_write_stops_at_its_first_item(db: Path, tmp_path: Path) -> None:
    with database_limited(db, "PRAGMA query_only = 1"):
        done = _job(db, tmp_path)
    failed = [i for i in done.items if i.error is not None and not i.not_run]
    not_run = [i for i in done.items if i.not_run]
    assert all("readonly database" in str(i.error) for i in failed), [i.error for i in failed]
    assert 1 <= len(failed) <= 2 and len(not_run) == ITEMS - len(failed)
    assert "failed (it cannot be written (a read-only file, folder or mount))" in str(not_run[0].error)


def test_a_failure_that_may_pass_or_an_items_own_does_not_stop_a_job() -> None:
    stop = StopStarting("sqlite:///x.db", what="the job", runs="items")
    for passing in (
        sqlite3.OperationalError("database is locked"),
        AgentmeshError("model server http://127.0.0.1:9/v1 answered 503"),
        DatabaseFailedError("database x failed: a dropped connection", url="sqlite:///x.db"),
    ):
        stop.failed(passing)
    assert stop.reason is None
    named = stop.failed(sqlite3.OperationalError("database or disk is full"))
    assert isinstance(named, DatabaseFailedError) and str(named).startswith("database sqlite:///x.db failed")
    assert stop.reason == (
        "not started: the job stopped starting items once database sqlite:///x.db failed (the disk holding it is full)"
    )


def test_a_ray_workers_lasting_failure_reaches_the_driver_as_one(tmp_path: Path) -> None:
    """A run in a Ray worker reports its error as JSON: the worker says whether it is lasting, and the driver
    raises a DatabaseFailedError saying so (it raised a plain AgentmeshError, which nothing could tell from a
    model's failure), so the job or batch stops starting runs."""
    from agentmesh.runtime.on_ray import _failure, run_there

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    said = _failure(sqlite3.OperationalError("attempt to write a readonly database"), url)
    assert said["error_class"] == "DatabaseFailedError" and said["lasting"].startswith("it cannot be written")
    assert said["url"] == url and said["error"].startswith(f"database {url} failed: attempt to write a readonly")
    assert "lasting" not in _failure(AgentmeshError("no rule left"), url)

    async def worker(payload: Any) -> dict[str, Any]:
        return {"run_id": "r1", **said}

    with Store(url) as store, pytest.raises(DatabaseFailedError) as caught:
        asyncio.run(run_there(worker, store, {}, "r1", inputs={}))
    assert caught.value.context["run"] == "r1" and caught.value.context["error_class"] == "DatabaseFailedError"
    stop = StopStarting(url)
    stop.failed(caught.value)
    assert stop.reason is not None and "it cannot be written" in stop.reason
