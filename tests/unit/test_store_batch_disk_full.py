"""A batch whose database fails (a full disk): each item's error names the database, not a driver's class.

On a 2 MB tmpfs, ``agentmesh run --input-file`` of 1,000 items stored 27 and listed 973 failed with
``OperationalError: database or disk is full``: no word of which database, unlike the same error in a single
``agentmesh run`` ("database sqlite:///... failed: database or disk is full")."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import typer

from agentmesh.cli.batch import run_many
from agentmesh.cli.batch_summary import ItemOutcome
from agentmesh.errors import ServerError, StoreError
from agentmesh.runtime.context import Listener
from agentmesh.runtime.run import RunResult
from agentmesh.store import Store


def test_a_database_error_of_an_item_names_the_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def full(listeners: list[Listener]) -> RunResult:
        raise sqlite3.OperationalError("database or disk is full")

    def work(store: Store) -> list[tuple[ItemOutcome, Any]]:
        return [(ItemOutcome(line=n, inputs={}), full) for n in (1, 2)]

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with pytest.raises(typer.Exit):
        run_many("g", work, noun="items", db=url, concurrency=1, as_json=True, quiet=False)
    first, second = json.loads(capsys.readouterr().out)
    assert first["error"].startswith(f"database {url} failed: database or disk is full: the disk holding the ")
    assert "free space there" in first["error"] and "agentmesh resume (--batch ID for a batch)" in first["error"]
    # the second line is not started on a full disk (tests/integration/test_cli_batch_database_full.py), and why
    # names the database too
    assert second["status"] == "not run" and second["error"] is None
    assert f"once database {url} failed (the disk holding it is full)" in second["not_run"]


def test_items_that_failed_before_their_run_was_stored_are_sent_to_resume_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The summary said only "failed runs are stored: ... continue with agentmesh resume <run>": that reaches the
    few runs stored before the disk filled, not the hundreds of lines that failed with no run (``resume --batch``
    does run those again)."""

    async def full(listeners: list[Listener]) -> RunResult:
        raise sqlite3.OperationalError("database or disk is full")

    def work(store: Store) -> list[tuple[ItemOutcome, Any]]:
        return [(ItemOutcome(line=n, inputs={}, batch="b"), full) for n in (1, 2)]

    with pytest.raises(typer.Exit):
        run_many(
            "g",
            work,
            noun="items",
            db=f"sqlite:///{tmp_path / 'runs.db'}",
            concurrency=1,
            as_json=False,
            quiet=False,
            batch="b",
        )
    said = " ".join(capsys.readouterr().out.split())
    assert "items with no run (-): agentmesh resume --batch b runs them again" in said


def test_a_full_disk_on_postgres_says_what_to_do_too() -> None:
    from agentmesh.cli._store import database_failed

    said = str(
        database_failed(
            "postgresql://u:pw@db/x",
            RuntimeError('could not extend file "base/16384/16385": No space left on device'),
        )
    )
    assert "pw" not in said and "the disk holding the database is full; free space there" in said


def test_a_line_failing_for_its_own_reasons_or_a_passing_lock_does_not_stop_the_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only a failure every later run would meet stops a batch: a model that fails one item, a database locked
    for a moment (SQLite's busy timeout run out), a driver error this version does not know leave the others to
    run."""
    started: list[int] = []

    def start(n: int) -> Any:
        async def run(listeners: list[Listener]) -> RunResult:
            started.append(n)
            if n == 1:
                raise ServerError("model server http://127.0.0.1:9/v1 answered 503")
            if n == 2:
                raise sqlite3.OperationalError("database is locked")
            if n == 3:
                raise StoreError("run r: an event could not be stored: the store's writer is closed")
            raise sqlite3.OperationalError("something else went wrong")

        return run

    def work(store: Store) -> list[tuple[ItemOutcome, Any]]:
        return [(ItemOutcome(line=n, inputs={}, batch="b"), start(n)) for n in (1, 2, 3, 4, 5)]

    with pytest.raises(typer.Exit):
        run_many(
            "g", work, noun="items", db=f"sqlite:///{tmp_path / 'runs.db'}", concurrency=1, as_json=True, quiet=False
        )
    outcomes = json.loads(capsys.readouterr().out)
    assert started == [1, 2, 3, 4, 5] and {o["status"] for o in outcomes} == {"failed"}


@pytest.mark.parametrize(
    ("said", "why"),
    [
        ("attempt to write a readonly database", "it cannot be written"),
        ("unable to open database file", "it is gone, moved or damaged"),
        ("no such table: runs", "it is gone, moved or damaged"),
    ],
)
def test_a_read_only_or_vanished_database_stops_the_batch_too(
    said: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[int] = []

    def start(n: int) -> Any:
        async def run(listeners: list[Listener]) -> RunResult:
            started.append(n)
            raise sqlite3.OperationalError(said)

        return run

    def work(store: Store) -> list[tuple[ItemOutcome, Any]]:
        return [(ItemOutcome(line=n, inputs={}, batch="b"), start(n)) for n in (1, 2, 3)]

    with pytest.raises(typer.Exit):
        run_many(
            "g",
            work,
            noun="items",
            db=f"sqlite:///{tmp_path / 'runs.db'}",
            concurrency=1,
            as_json=False,
            quiet=False,
            batch="b",
        )
    captured = capsys.readouterr()
    flat = " ".join(captured.err.split())
    assert started == [1]
    assert f"runs.db failed ({why}" in flat and "2 items not run: lines 2-3" in flat, flat
    # no run of the batch was stored: there is nothing for resume --batch to find
    assert "run the same command again" in flat
