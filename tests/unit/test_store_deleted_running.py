"""A run deleted (``delete --force``) while its process still runs it, and the checkpoints that leaves.

The live run goes on checkpointing its thread (thread = run id) after its row is gone; those rows were left with
no run, and its end failed with a bare "no run ..." from finishing a run that was not there. Now its end deletes
them in the same commit and says the run was deleted while running (``RunDeletedError``); a run cancelled after
being deleted stays a cancellation; and ``agentmesh db reclaim`` removes what a process that died first left.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from agentmesh import arun, run
from agentmesh.errors import RunDeletedError, RunNotFoundError
from agentmesh.models.messages import CallContext, ModelRequest, ProviderResult
from agentmesh.models.providers.scripted import ScriptedModel
from agentmesh.store import Store
from agentmesh.store.schema import events, graph_checkpoint_blobs, graph_checkpoint_writes, graph_checkpoints, runs
from tests._cli import run_cli

_CHECKPOINT_TABLES = (graph_checkpoints, graph_checkpoint_blobs, graph_checkpoint_writes)


class GatedModel(ScriptedModel):
    """A scripted model whose first call waits until :attr:`release` is set (:attr:`started` says it is waiting);
    every other call takes ``delay_s``. Answers differ call by call, so that a debate never reaches consensus."""

    def __init__(self, delay_s: float = 0.0) -> None:
        answers = itertools.count(1)
        super().__init__(respond=lambda request, context: f"\\boxed{{{next(answers)}}}")
        self.after = delay_s
        self.started = threading.Event()
        self.release = threading.Event()

    async def complete(self, request: ModelRequest, context: CallContext) -> ProviderResult:
        if not self.started.is_set():
            self.started.set()
            await asyncio.to_thread(self.release.wait, 120)
        elif self.after:
            await asyncio.sleep(self.after)
        return await super().complete(request, context)


def _rows(store: Store, thread_id: str) -> dict[str, int]:
    """Rows of ``thread_id`` in each checkpoint table, and of the run of that id in ``runs`` and ``events``."""
    counted = {**{table: table.c.thread_id for table in _CHECKPOINT_TABLES}, runs: runs.c.id, events: events.c.run_id}
    with store.engine.connect() as conn:
        return {
            table.name: conn.execute(sa.select(sa.func.count()).where(column == thread_id)).scalar_one()
            for table, column in counted.items()
        }


def _only_run_id(url: str) -> str:
    with Store(url) as store:
        (record,) = store.list_runs()
        assert record.status == "running"
        return record.id


@pytest.mark.parametrize("graph", ["debate", "self_consistency"])
def test_a_run_deleted_while_it_runs_ends_saying_so_and_leaves_no_checkpoints(
    store_url: str, graph: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``delete --force`` of a run its process is running: released, the run goes on writing (its next events fail,
    its steps checkpoint), and its end removes what it wrote and raises RunDeletedError -- not a bare "no run",
    not a hang. A debate has rounds to go, so it meets the failed event write first (the failure it reports is then
    that "no run"); self-consistency's single sampling step ends first, at the run's end."""
    model = GatedModel(delay_s=0.3)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = asyncio.run(arun(graph, {"question": "Q?"}, model=model, store=store_url))
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        assert model.started.wait(120), "the run made no call"
        run_id = _only_run_id(store_url)
        code, out, err = run_cli(["delete", "--force", "-y", "--db", store_url, run_id], capsys, monkeypatch)
        assert code == 0, err
        assert "deleted 1 run(s)" in out and "agentmesh db reclaim" in " ".join(out.split())
    finally:
        model.release.set()
        worker.join(120)
    assert not worker.is_alive(), "the deleted run did not end"

    assert len(model.calls) > 1  # it did go on after the deletion
    with Store(store_url) as store:
        assert _rows(store, run_id) == dict.fromkeys(
            ["graph_checkpoints", "graph_checkpoint_blobs", "graph_checkpoint_writes", "runs", "events"], 0
        )
        assert store.orphan_threads() == {}
    error = outcome.get("error")
    assert isinstance(error, RunDeletedError), outcome
    assert f"run {run_id} was deleted from" in str(error) and "while it was running" in str(error)
    assert "checkpoints it wrote after the deletion were deleted" in str(error)
    if graph == "debate":  # what it met first: its next event write, refused as the run is gone
        assert isinstance(error.__context__, RunNotFoundError) and f"no run {run_id!r}" in str(error.__context__)


def test_a_deleted_run_cancelled_stays_cancelled_and_leaves_no_checkpoints(store_url: str) -> None:
    """Cancelled (Ctrl-C, a stopped batch) after being deleted: the cancellation goes on as one, rather than turn
    into a "no run" from storing the run as interrupted, and what the run checkpointed goes with it."""
    model = GatedModel()

    async def main() -> BaseException | None:
        task = asyncio.create_task(arun("self_consistency", {"question": "Q?"}, model=model, store=store_url))
        assert await asyncio.to_thread(model.started.wait, 120), "the run made no call"
        run_id = await asyncio.to_thread(_only_run_id, store_url)
        with Store(store_url) as store:
            await asyncio.to_thread(store.delete_runs, [run_id], force=True)
        task.cancel()
        model.release.set()
        try:
            await task
        except BaseException as exc:
            outcome["run_id"] = run_id
            return exc
        return None

    outcome: dict[str, str] = {}
    try:
        error = asyncio.run(main())
    finally:
        model.release.set()
    with Store(store_url) as store:
        assert sum(_rows(store, outcome["run_id"]).values()) == 0
        assert store.orphan_threads() == {}
    assert isinstance(error, asyncio.CancelledError), repr(error)


def test_db_reclaim_removes_the_checkpoints_of_threads_without_a_run_and_only_those(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a run deleted while it ran leaves when its process dies before its end: checkpoints of a thread with no
    run (made here by deleting a finished run's row and events by hand). ``agentmesh db reclaim`` lists them and
    asks; -y deletes them, and leaves every run's own checkpoints alone."""
    gone = run("self_consistency", {"question": "Q?"}, model=ScriptedModel(default="\\boxed{1}"), store=store_url)
    kept = run("self_consistency", {"question": "R?"}, model=ScriptedModel(default="\\boxed{2}"), store=store_url)
    with Store(store_url) as store:
        with store.engine.begin() as conn:
            conn.execute(sa.delete(events).where(events.c.run_id == gone.run_id))
            conn.execute(sa.delete(runs).where(runs.c.id == gone.run_id))
        orphaned = _rows(store, gone.run_id)
        kept_before = _rows(store, kept.run_id)
        assert orphaned["runs"] == 0 and orphaned["graph_checkpoints"] and orphaned["graph_checkpoint_blobs"]
        assert kept_before["graph_checkpoints"]
        count = sum(n for name, n in orphaned.items() if name.startswith("graph_"))
        assert store.orphan_threads() == {gone.run_id: count}
        assert store.delete_orphan_threads([kept.run_id]) == 0  # a run's own thread is never taken, even if named

    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, out, _ = run_cli(["db", "reclaim", "--db", store_url], capsys, monkeypatch)
    assert code == 1 and gone.run_id in out and "nothing deleted" in out
    with Store(store_url) as store:
        assert _rows(store, gone.run_id) == orphaned

    code, out, err = run_cli(["db", "reclaim", "-y", "--db", store_url], capsys, monkeypatch)
    assert code == 0, err
    assert f"deleted {count} checkpoint rows of 1 thread(s)" in out
    with Store(store_url) as store:
        assert sum(_rows(store, gone.run_id).values()) == 0
        assert _rows(store, kept.run_id) == kept_before
        assert store.orphan_threads() == {}
    code, out, _ = run_cli(["db", "reclaim", "--db", store_url], capsys, monkeypatch)
    assert code == 0 and "nothing to reclaim" in out


def test_deleting_a_running_batch_says_it_goes_on_starting_its_lines(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``delete --batch B --force`` while B runs deletes the runs B has now; B goes on starting its other lines under
    its id, and a later ``resume --batch B`` runs the deleted lines again. Said, so that nobody takes it for gone."""
    with Store(store_url) as store:
        for line in (1, 2):
            store.create_run("debate", {"question": "Q?"}, meta={"batch": {"id": "b1", "line": line, "items": 3}})
    code, out, err = run_cli(["delete", "--batch", "b1", "--force", "-y", "--db", store_url], capsys, monkeypatch)
    assert code == 0, err
    said = " ".join(out.split())
    assert "deleted 2 run(s)" in said
    assert "a batch still running goes on starting its remaining lines under its id: stop it first" in said
