"""The store's group-committing writer thread: order, isolation of a bad write, read-your-writes, draining on close
and at exit, and how a run learns that one of its events could not be stored. SQLite and Postgres."""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from agentmesh.errors import RunNotFoundError, StoreError
from agentmesh.runtime.recording import StoreRecorder
from agentmesh.store import Store, event_row, writes
from agentmesh.store.statements import Tx


def _hold(store: Store) -> tuple[threading.Event, Future[Any]]:
    """Occupy the writer thread until the returned event is set: what is queued meanwhile forms one batch."""
    entered, release = threading.Event(), threading.Event()

    def wait(tx: Tx) -> None:
        entered.set()
        release.wait(10)

    held = store._batch.submit(wait)
    assert entered.wait(10)
    return release, held


def test_posted_events_are_read_back_at_once_in_order(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        futures = [store.post_events(run_id, [event_row("log", call_index=i)]) for i in range(20)]
        # no wait on the futures: a reader sees every write queued before it
        found = store.events(run_id)
        assert [(e.seq, e.call_index) for e in found] == [(i + 1, i) for i in range(20)]
        assert all(f.done() for f in futures)
        assert [f.result() for f in futures] == [[e.id] for e in found]


def test_a_bad_write_fails_alone_and_its_batch_neighbours_commit(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        release, held = _hold(store)
        before = store.post_events(run_id, [event_row("log", call_index=1)])
        bad = store.post_events("no-such-run", [event_row("log", call_index=2)])
        after = store.post_events(run_id, [event_row("log", call_index=3)])
        release.set()
        held.result(10)
        with pytest.raises(RunNotFoundError, match="no run 'no-such-run'"):
            bad.result(10)
        assert len(before.result(10)) == 1 and len(after.result(10)) == 1
        assert [e.call_index for e in store.events(run_id)] == [1, 3]


def test_a_runs_queued_events_share_one_append_and_a_bad_one_still_fails_alone(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        release, held = _hold(store)
        first = store.post_events(run_id, [event_row("log", call_index=1), event_row("log", call_index=2)])
        broken = store.post_events(run_id, [{"kind": "log"}])  # not built by event_row: columns are missing
        last = store.post_events(run_id, [event_row("log", call_index=3)])
        release.set()
        held.result(10)
        with pytest.raises(Exception, match=r"agent|node|round|binding|parameter"):
            broken.result(10)
        assert len(first.result(10)) == 2 and len(last.result(10)) == 1
        assert [(e.seq, e.call_index) for e in store.events(run_id)] == [(1, 1), (2, 2), (3, 3)]


def test_writes_commit_in_the_order_they_were_queued(store_url: str) -> None:
    """A run's end is computed after every event queued before it (the totals count them all)."""
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        release, held = _hold(store)
        for i in range(7):
            store.post_events(run_id, [event_row("model_call", call_index=i, total_tokens=10)])
        finished: list[Any] = []
        closer = threading.Thread(target=lambda: finished.append(store.finish_run(run_id, "succeeded")))
        closer.start()
        release.set()
        closer.join(10)
        held.result(10)
        assert finished and finished[0].totals["calls"] == 7 and finished[0].totals["total_tokens"] == 70


def test_closing_the_store_commits_what_is_queued(store_url: str) -> None:
    store = Store(store_url)
    run_id = store.create_run("g", {})
    for i in range(50):
        store.post_events(run_id, [event_row("log", call_index=i, data={"i": i})])
    store.close()
    with Store(store_url) as again:
        assert [e.data for e in again.events(run_id)] == [{"i": i} for i in range(50)]
    with pytest.raises(StoreError, match="closed"):
        store._batch.submit(lambda tx: None)


_EXIT_WITHOUT_CLOSE = """
import sys
from agentmesh.store import Store, event_row
store = Store(sys.argv[1])
for i in range(30):
    store.post_events(sys.argv[2], [event_row("log", call_index=i)])
# no close, no flush: the interpreter's exit must still commit them
"""


def test_events_queued_when_the_interpreter_exits_are_committed(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
    done = subprocess.run(
        [sys.executable, "-c", _EXIT_WITHOUT_CLOSE, store_url, run_id], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    with Store(store_url) as store:
        assert [e.call_index for e in store.events(run_id)] == list(range(30))


def test_store_and_checkpointer_share_one_writer(store_url: str) -> None:
    with Store(store_url) as store:
        assert store.checkpointer()._batch is store._batch
        assert store.checkpointer() is store.checkpointer()


def test_a_recorder_reports_an_event_that_could_not_be_stored(store_url: str) -> None:
    async def main(store: Store) -> None:
        recorder = StoreRecorder(store, "no-such-run")
        recorder.post("log", data={"x": 1})  # queued: the caller does not wait
        with pytest.raises(RunNotFoundError, match="no run 'no-such-run'"):
            await recorder.settle()
        await recorder.settle()  # reported once; nothing else is pending

        recorder.post("log")
        store.flush()
        with pytest.raises(RunNotFoundError):
            recorder.post("log")  # the next write of the run learns about the failed one

    with Store(store_url) as store:
        asyncio.run(main(store))


def test_a_writer_thread_cannot_wait_for_itself(store_url: str) -> None:
    with Store(store_url) as store:
        batch = store._batch

        def nested(tx: Tx) -> None:
            batch.run(lambda inner: None)

        with pytest.raises(StoreError, match="writer thread"):
            batch.run(nested)


def _write_in_child(store: Store, run_id: str) -> None:
    for i in range(5):
        store.post_events(run_id, [event_row("log", call_index=100 + i)])
    store.flush()


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method: Linux")
def test_a_forked_child_writes_through_its_own_writer_thread(store_url: str) -> None:
    import multiprocessing

    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        store.post_events(run_id, [event_row("log", call_index=1)])
        child = multiprocessing.get_context("fork").Process(target=_write_in_child, args=(store, run_id))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert sorted(e.call_index for e in store.events(run_id)) == [1, 100, 101, 102, 103, 104]


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method: Linux")
def test_a_child_forked_while_the_writer_is_inside_a_transaction_does_not_inherit_its_locks(store_url: str) -> None:
    """The parent's writer thread holds the in-process lock of the SQLite file during its transaction; that thread
    does not exist in the child, so the child must not wait for it (it waits for SQLite's own lock instead, which
    the parent releases on commit)."""
    import multiprocessing

    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        release, held = _hold(store)  # the writer thread is inside a transaction now
        child = multiprocessing.get_context("fork").Process(target=_write_in_child, args=(store, run_id))
        child.start()
        time.sleep(0.3)
        release.set()
        held.result(10)
        child.join(60)
        if child.exitcode is None:
            child.kill()
        assert child.exitcode == 0
        assert sorted(e.call_index for e in store.events(run_id)) == [100, 101, 102, 103, 104]


def test_posted_writes_commit_by_themselves_whether_the_writer_was_asleep_or_busy(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody waits for a posted write and nothing else is queued: it still commits within about the delay, when the
    writer had been idle (posting wakes it) and when it had just worked (it looks by itself, posting does not)."""
    monkeypatch.setattr(writes, "IDLE_AFTER_S", 0.3)
    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        writer = store._batch

        def committed(posted: Any) -> bool:
            deadline = time.monotonic() + 5
            while not posted.done() and time.monotonic() < deadline:
                time.sleep(0.002)
            return bool(posted.done())

        assert not writer._idle  # it just committed the run's creation
        busy = store.post_events(run_id, [event_row("log", call_index=1)])
        assert committed(busy) and busy.exception() is None
        time.sleep(0.5)  # longer than IDLE_AFTER_S without work: the writer sleeps until notified
        assert writer._idle
        asleep = store.post_events(run_id, [event_row("log", call_index=2)])
        assert committed(asleep) and asleep.exception() is None
        # committed, not merely queued: another connection sees both (no flush through this store)
        with Store(store_url) as other:
            assert [e.call_index for e in other.events(run_id)] == [1, 2]


def test_a_run_whose_creation_is_cancelled_mid_commit_is_stored_interrupted_not_running(store_url: str) -> None:
    """A batch stopped (Ctrl-C, SIGTERM) while it starts runs cancels ``acreate_run`` while the writer commits the
    row: it was committed all the same and left "running", with no process left to finish it."""

    async def main(store: Store) -> None:
        release, held = _hold(store)
        task = asyncio.create_task(store.acreate_run("g", {}, run_id="cut-while-created"))
        while not store._batch._items:  # the create is queued behind the held write
            await asyncio.sleep(0.001)
        entered, go_on = threading.Event(), threading.Event()

        def busy(tx: Tx) -> None:  # taken in the create's batch: the writer is inside its commit now
            entered.set()
            go_on.wait(10)

        store._batch.submit(busy)
        release.set()
        held.result(10)
        assert await asyncio.to_thread(entered.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        go_on.set()

    with Store(store_url) as store:
        asyncio.run(main(store))
        record = store.get_run("cut-while-created")
        assert (record.status, record.stop_reason) == ("interrupted", "interrupted")


def test_a_cancelled_creation_whose_id_was_taken_leaves_the_other_run_alone(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The failed write's error belongs to nobody once its waiter was cancelled: asyncio also printed "Future
    exception was never retrieved" with a StoreError traceback when the future was collected, after a clean Ctrl-C."""

    async def main(store: Store) -> None:
        release, held = _hold(store)
        task = asyncio.create_task(store.acreate_run("g", {}, run_id="taken"))
        while not store._batch._items:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        held.result(10)
        await asyncio.to_thread(store._batch.flush, 10)  # the create has failed: its future is resolved
        for _ in range(3):
            await asyncio.sleep(0)  # the loop sets the error on the asyncio future

    with Store(store_url) as store:
        store.create_run("other", {}, run_id="taken")
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            asyncio.run(main(store))
            gc.collect()
        assert store.get_run("taken").status == "running"  # the other run's, untouched
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_a_finish_cancelled_while_it_waits_for_the_writer_is_still_committed(store_url: str) -> None:
    """A second Ctrl-C while a run stores itself as interrupted cancels the wait for that write; the write was
    dropped from the queue, leaving the run "running"."""

    async def main(store: Store, run_id: str) -> None:
        release, held = _hold(store)
        task = asyncio.create_task(store.afinish_run(run_id, "interrupted", stop_reason="interrupted"))
        while not store._batch._items:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        held.result(10)

    with Store(store_url) as store:
        run_id = store.create_run("g", {})
        asyncio.run(main(store, run_id))
        assert store.get_run(run_id).status == "interrupted"
