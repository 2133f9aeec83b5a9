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
    items = json.loads(capsys.readouterr().out)
    for item in items:
        assert item["error"].startswith(f"database {url} failed: database or disk is full: the disk holding the ")
        assert "free space there" in item["error"] and "agentmesh resume (--batch ID for a batch)" in item["error"]


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
