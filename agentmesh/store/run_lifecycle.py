"""A run's lifecycle in the store: created ``running``, finished with its final status and totals, reopened for a
resume, claimed by the one process that resumes it and given back when that resume fails before it begins
(:class:`RunLifecycleMethods`, mixed into :class:`~agentmesh.store.Store`).

Each is a write through the database's group-committing writer thread (:mod:`agentmesh.store.writes`), queued in
order with the run's events and checkpoints: a blocking method returns once its write is committed, and its
``a``-prefixed twin awaits the commit on the event loop. Each that changes an existing run locks its row first
(:func:`~agentmesh.store.events.lock_run`), so two processes acting on one run queue rather than interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict, Unpack
from uuid import uuid4

from agentmesh.errors import RunDeletedError, RunNotFoundError, StoreError
from agentmesh.store._redact import mask_secrets, stored_meta
from agentmesh.store.events import RUN_EXISTS, lock_run, locked_run, stored_json, stored_text
from agentmesh.store.owner import OWNER_KEY, current_owner
from agentmesh.store.records import RunRecord, RunStatus
from agentmesh.store.run_reads import SELECT_RUN, decoded_run, run_from, run_status
from agentmesh.store.run_totals import summed_totals, zero_totals
from agentmesh.store.schema import SCHEMA_VERSION, runs, utcnow
from agentmesh.store.statements import Statement, Tx

if TYPE_CHECKING:
    from agentmesh.store.writes import BatchWriter

__all__ = ["NewRunFields", "RunLifecycleMethods"]


class NewRunFields(TypedDict, total=False):
    """What :meth:`~agentmesh.store.Store.create_run` and :meth:`~agentmesh.store.Store.acreate_run` take besides
    the graph's name and the inputs (keywords, each optional; left out, ``None``): the one list of them, which both
    take as ``**fields: Unpack[NewRunFields]`` (mypy and IDEs check each keyword as if it were written out).

    ``spec_hash``: the graph spec's hash; ``model``: the model reference (stored with any key in it masked);
    ``parent_run_id``: the run this one forks or resumes from (it must be in the store); ``meta``: JSON facts kept
    with the run (redacted); ``run_id``: the new run's id (default a fresh uuid4 hex; one already taken is an error).
    """

    spec_hash: str | None
    model: str | None
    parent_run_id: str | None
    meta: Mapping[str, Any] | None
    run_id: str | None


_NEW_RUN_FIELDS = frozenset(NewRunFields.__annotations__)


class RunLifecycleMethods:
    """The methods of :class:`~agentmesh.store.Store` that create, finish, reopen and claim a run (mixed in; they
    use its batch writer)."""

    if TYPE_CHECKING:
        url: str
        _batch: BatchWriter

    def create_run(self, graph: str, inputs: Mapping[str, Any], **fields: Unpack[NewRunFields]) -> str:
        """Record a new run as ``running``; returns its id (a fresh uuid4 hex unless ``run_id`` is given).
        ``fields``: :class:`NewRunFields` (``spec_hash``, ``model``, ``parent_run_id``, ``meta``, ``run_id``)."""
        new_id, op = self._create(graph, inputs, fields, "Store.create_run")
        self._batch.run(op)
        return new_id

    async def acreate_run(self, graph: str, inputs: Mapping[str, Any], **fields: Unpack[NewRunFields]) -> str:
        """:meth:`create_run` for the event loop: awaits the commit without a worker thread.

        Cancelled while it waits (Ctrl-C, SIGTERM, a batch stopped), the row still commits -- the writer may
        already be committing it, and a write it has taken cannot be taken back -- so the run is then stored as
        interrupted after it: it was left "running" with no process to finish it (a batch stopped while starting
        runs left some so, which ``resume`` refuses on another host, and ``delete`` without ``--force``)."""
        new_id, op = self._create(graph, inputs, fields, "Store.acreate_run")
        created = self._batch.submit(op)
        waited = asyncio.wrap_future(created)
        try:
            await asyncio.shield(waited)
        except asyncio.CancelledError:
            _read_when_done(waited)
            finish = self._finish(new_id, RunStatus.INTERRUPTED, "interrupted", None)

            def interrupt(tx: Tx) -> None:
                # not done: the row was inserted earlier in this very transaction; done with an error: the id was
                # taken, and that run is not this one to touch
                if not created.done() or created.exception() is None:
                    finish(tx)

            with contextlib.suppress(StoreError):  # the writer is closed: nothing more can be written
                self._batch.submit(interrupt)
            raise
        return new_id

    def _create(
        self, graph: str, inputs: Mapping[str, Any], fields: NewRunFields, caller: str
    ) -> tuple[str, Callable[[Tx], None]]:
        if not fields.keys() <= _NEW_RUN_FIELDS:  # the TypeError a written-out signature raised
            unknown = ", ".join(repr(name) for name in fields if name not in _NEW_RUN_FIELDS)
            raise TypeError(
                f"{caller}() got an unexpected keyword argument {unknown}; its keywords are "
                f"{', '.join(NewRunFields.__annotations__)}"
            )
        spec_hash = fields.get("spec_hash")
        model = fields.get("model")
        parent_run_id = fields.get("parent_run_id")
        meta = fields.get("meta")
        new_id = fields.get("run_id") or uuid4().hex
        row = {
            "id": new_id,
            "graph": graph,
            "spec_hash": spec_hash,
            "inputs": stored_json(inputs, "inputs"),
            "status": RunStatus.RUNNING.value,
            "stop_reason": None,
            "parent_run_id": parent_run_id,
            "model": None if model is None else mask_secrets(model),
            "totals": zero_totals(),
            "error": None,
            "created_at": utcnow(),
            "finished_at": None,
            "meta": stored_meta({**(meta or {}), OWNER_KEY: current_owner()}),
            "schema_version": SCHEMA_VERSION,
        }
        url = self.url

        def create(tx: Tx) -> None:
            if tx.scalar(RUN_EXISTS, {"id": new_id}) is not None:
                raise StoreError(f"a run with id {new_id!r} already exists in {url}", run_id=new_id)
            if parent_run_id is not None and tx.scalar(RUN_EXISTS, {"id": parent_run_id}) is None:
                raise RunNotFoundError(
                    f"parent run {parent_run_id!r} of the new run is not in {url}", run_id=parent_run_id
                )
            tx.execute(_INSERT_RUN, row)

        return new_id, create

    def finish_run(
        self,
        run_id: str,
        status: RunStatus | str,
        *,
        stop_reason: str | None = None,
        error: str | None = None,
        thread_id: str | None = None,
    ) -> RunRecord:
        """Close a run with a final status; its totals are summed from its ``model_call`` events.

        ``thread_id``: the LangGraph thread the run checkpointed to (agentmesh's runtime: the run's id). Should the
        run have been deleted while it ran (``agentmesh delete --force`` from another shell), the checkpoints it
        went on writing there would be left with no run; given the thread, the finish deletes them in its own
        transaction -- after every write the run queued, as the writer commits in order -- and raises
        :class:`~agentmesh.errors.RunDeletedError`. This costs the run's writes nothing: the finish looks up the
        run's row anyway. Without it, a missing run is a :class:`~agentmesh.errors.RunNotFoundError`."""
        return self._finished(run_id, self._batch.run(self._finish(run_id, status, stop_reason, error, thread_id)))

    async def afinish_run(
        self,
        run_id: str,
        status: RunStatus | str,
        *,
        stop_reason: str | None = None,
        error: str | None = None,
        thread_id: str | None = None,
    ) -> RunRecord:
        """:meth:`finish_run` for the event loop: awaits the commit without a worker thread.

        Cancelled while it waits (a second Ctrl-C while a run stores itself as interrupted), the finish is still
        committed: dropped from the writer's queue, it left the run "running" with no process to finish it."""
        op = self._finish(run_id, status, stop_reason, error, thread_id)
        finished = asyncio.wrap_future(self._batch.submit(op))
        try:
            return self._finished(run_id, await asyncio.shield(finished))
        except asyncio.CancelledError:
            _read_when_done(finished)
            raise

    def _finished(self, run_id: str, row: dict[str, Any] | None) -> RunRecord:
        """The finished run's record; :class:`RunDeletedError` when the finish found it deleted (and its thread's
        checkpoints deleted after it)."""
        if row is None:
            raise RunDeletedError(
                f"run {run_id} was deleted from {self.url} while it was running (agentmesh delete --force, or "
                "delete_runs(force=True)): its end is not stored, and the checkpoints it wrote after the deletion "
                "were deleted too",
                run_id=run_id,
                url=self.url,
            )
        return run_from(row)

    def _finish(
        self,
        run_id: str,
        status: RunStatus | str,
        stop_reason: str | None,
        error: str | None,
        thread_id: str | None = None,
    ) -> Callable[[Tx], dict[str, Any] | None]:
        final = run_status(status)
        if final is RunStatus.RUNNING:
            raise StoreError(f"finish_run needs a final status, not {final.value!r}", run_id=run_id)
        url = self.url
        changes = {
            "id": run_id,
            "status": final.value,
            "stop_reason": stored_text(stop_reason),
            "error": stored_text(error),
            "finished_at": utcnow(),
        }

        def finish(tx: Tx) -> dict[str, Any] | None:
            if not locked_run(tx, run_id):
                if thread_id is None:
                    raise RunNotFoundError(f"no run {run_id!r} in {url}", run_id=run_id, url=url)
                # deleted while it ran: what it checkpointed since goes too (said by returning, not raising: a
                # raise would roll the deletion back)
                from agentmesh.store._checkpoint_rows import delete_thread_in  # (LangGraph's classes: rarely needed)

                delete_thread_in(tx, thread_id)
                return None
            totals = summed_totals(tx, run_id)
            tx.execute(_FINISH_RUN, {**changes, "totals": totals})
            found = tx.execute(SELECT_RUN, {"id": run_id}).fetchone()
            return decoded_run(found, tx.dialect)

        return finish

    def mark_running(self, run_id: str) -> None:
        """Reopen a run that is being resumed: status back to running, its end and error cleared, this process its
        owner (``meta.owner``, see :mod:`agentmesh.store.owner`)."""
        url = self.url
        owner = current_owner()

        def reopen(tx: Tx) -> None:
            lock_run(tx, run_id, url)
            meta = decoded_run(tx.execute(SELECT_RUN, {"id": run_id}).fetchone(), tx.dialect)["meta"] or {}
            meta = {**meta, OWNER_KEY: owner}
            tx.execute(_REOPEN_RUN, {"id": run_id, "status": RunStatus.RUNNING.value, "meta": meta})

        self._batch.run(reopen)

    def claim_run(self, seen: RunRecord) -> bool:
        """Make this process the one resuming the run ``seen`` was read as, if it is still so: its status and owner
        unchanged (one transaction, the run's row locked). ``False`` when another process got there first -- it
        resumed the run, or finished it -- and this one must leave it alone.

        Why: two ``agentmesh resume --batch`` (or ``resume RUN``) at once both read a run as interrupted, or as
        left running by a dead process, and both resumed it, making its calls twice into one record. On success
        the run is ``running`` with this process its owner, as :meth:`mark_running` leaves it."""
        return bool(self._batch.run(self._claim(seen)))

    async def aclaim_run(self, seen: RunRecord) -> bool:
        """:meth:`claim_run` for the event loop. Cancelled while it waits, a claim that went through is given back
        as an interrupted run (the claim commits all the same: left so, the run would stay "running")."""
        claimed = self._batch.submit(self._claim(seen))
        waited = asyncio.wrap_future(claimed)
        try:
            return bool(await asyncio.shield(waited))
        except asyncio.CancelledError:
            _read_when_done(waited)
            finish = self._finish(seen.id, RunStatus.INTERRUPTED, "interrupted", None)

            def give_back(tx: Tx) -> None:
                # not done: the claim committed earlier in this very transaction
                if not claimed.done() or (claimed.exception() is None and claimed.result() is True):
                    finish(tx)

            with contextlib.suppress(StoreError):  # the writer is closed: nothing more can be written
                self._batch.submit(give_back)
            raise

    def release_claim(self, seen: RunRecord) -> bool:
        """Undo :meth:`claim_run` for a resume that failed before it began (its model did not resolve, it was
        cancelled before its first step): the run is as ``seen`` again -- status, stop reason, error, end and owner
        -- if it is still running under this process. Left so, it stayed "running": refused by ``resume`` on another
        host and by ``delete``. ``False`` when the run has moved on (the resume got far enough to finish it)."""
        url = self.url
        owner = current_owner()
        restored = {
            "id": seen.id,
            "status": run_status(seen.status).value,
            "stop_reason": seen.stop_reason,
            "error": seen.error,
            "finished_at": seen.finished_at,
        }

        def release(tx: Tx) -> bool:
            lock_run(tx, seen.id, url)
            row = decoded_run(tx.execute(SELECT_RUN, {"id": seen.id}).fetchone(), tx.dialect)
            meta = row["meta"] or {}
            if row["status"] != RunStatus.RUNNING.value or meta.get(OWNER_KEY) != owner:
                return False
            back = {**meta, OWNER_KEY: seen.meta[OWNER_KEY]} if OWNER_KEY in seen.meta else meta
            tx.execute(_RESTORE_RUN, {**restored, "meta": back})
            return True

        return bool(self._batch.run(release))

    def _claim(self, seen: RunRecord) -> Callable[[Tx], bool]:
        url = self.url
        owner = current_owner()
        status, seen_owner = run_status(seen.status).value, seen.meta.get(OWNER_KEY)

        def claim(tx: Tx) -> bool:
            lock_run(tx, seen.id, url)
            row = decoded_run(tx.execute(SELECT_RUN, {"id": seen.id}).fetchone(), tx.dialect)
            meta = row["meta"] or {}
            if row["status"] != status or meta.get(OWNER_KEY) != seen_owner:
                return False
            changes = {"id": seen.id, "status": RunStatus.RUNNING.value, "meta": {**meta, OWNER_KEY: owner}}
            tx.execute(_REOPEN_RUN, changes)
            return True

        return claim


_INSERT_RUN = Statement.insert(runs, [c.name for c in runs.columns])
_FINISH_RUN = Statement(
    "UPDATE runs SET status = :status, stop_reason = :stop_reason, error = :error, totals = :totals, "
    "finished_at = :finished_at WHERE id = :id",
    {"totals": runs.c.totals.type, "finished_at": runs.c.finished_at.type},
)
_RESTORE_RUN = Statement(
    "UPDATE runs SET status = :status, stop_reason = :stop_reason, error = :error, finished_at = :finished_at, "
    "meta = :meta WHERE id = :id",
    {"meta": runs.c.meta.type, "finished_at": runs.c.finished_at.type},
)
_REOPEN_RUN = Statement(
    "UPDATE runs SET status = :status, finished_at = NULL, error = NULL, stop_reason = NULL, meta = :meta "
    "WHERE id = :id",
    {"meta": runs.c.meta.type},
)


def _read_when_done(waited: asyncio.Future[Any]) -> None:
    """Read a shielded write's outcome when it comes, once its waiter was cancelled: the cancellation's handling
    deals with what the write did (the run interrupted after it, or left alone), and a write that failed -- an id
    another run had taken -- otherwise had asyncio print "Future exception was never retrieved" and its traceback
    on stderr when the future was collected, after a clean Ctrl-C."""
    waited.add_done_callback(lambda done: None if done.cancelled() else done.exception())
