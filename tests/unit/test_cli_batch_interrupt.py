"""An interrupted batch names as "cut short" only the runs that are: one whose end the store committed as the
interruption landed (it ended "succeeded" there, but its result never came back to the batch) was listed among the
runs to ``agentmesh resume RUN...``, which then refused the whole list ("already succeeded; nothing was resumed").

Real SQLite store, real SIGINT (sent by the process to itself at the moment a user's press would land)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from agentmesh.cli.batch import Start, run_many
from agentmesh.cli.batch_summary import ItemOutcome
from agentmesh.runtime.context import Listener
from agentmesh.runtime.run import RunResult
from agentmesh.store import RunStatus, Store

pytestmark = pytest.mark.usefixtures("restore_signal_handlers")


def test_a_run_that_ended_as_the_interrupt_landed_is_not_listed_to_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    ids: dict[str, str] = {}

    def work(store: Store) -> list[tuple[ItemOutcome, Start]]:
        async def ended(listeners: list[Listener]) -> RunResult:
            run_id = await store.acreate_run("g", {"q": "ended"})
            ids["ended"] = run_id
            for listener in listeners:
                listener("start", {"run_id": run_id})
            await store.afinish_run(run_id, RunStatus.SUCCEEDED, stop_reason="completed")  # its end is stored...
            os.kill(os.getpid(), signal.SIGINT)  # ...and Ctrl-C lands before its result is handed back
            await asyncio.sleep(30)
            raise AssertionError("not interrupted")

        async def cut(listeners: list[Listener]) -> RunResult:
            run_id = await store.acreate_run("g", {"q": "cut"})
            ids["cut"] = run_id
            for listener in listeners:
                listener("start", {"run_id": run_id})
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                await store.afinish_run(run_id, RunStatus.INTERRUPTED, stop_reason="interrupted")
                raise
            raise AssertionError("not interrupted")

        return [
            (ItemOutcome(line=1, inputs={"q": "cut"}), cut),
            (ItemOutcome(line=2, inputs={"q": "ended"}), ended),
        ]

    def batch(**options: Any) -> None:
        run_many("g", work, noun="items", db=db, concurrency=2, as_json=False, quiet=True, **options)

    with pytest.raises(KeyboardInterrupt):
        batch()
    said = " ".join(capsys.readouterr().err.split())
    with Store(db) as store:
        assert store.get_run(ids["ended"]).status == RunStatus.SUCCEEDED
        assert store.get_run(ids["cut"]).status == RunStatus.INTERRUPTED
    assert "interrupted: 1 of 2 items had finished, 1 run was cut short and 0 never started" in said
    assert ids["cut"][:12] in said
    assert ids["ended"][:12] not in said  # resume of the listed runs would refuse them all for it
