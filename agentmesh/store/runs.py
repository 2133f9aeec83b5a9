"""The run store: runs, their events, their checkpointer and unlearning target sets, behind one URL.

:class:`Store` opens the database and puts together what is done with it, each in a module named for it: a run's
lifecycle -- created, finished, reopened, claimed (:mod:`agentmesh.store.run_lifecycle`), with its totals
(:mod:`agentmesh.store.run_totals`) --, reading runs back (:mod:`agentmesh.store.run_reads`), a run's events
(:mod:`agentmesh.store.events`) and the target sets (:mod:`agentmesh.store.targets`). What it keeps itself is the
database: opening, flushing, closing, upgrading, deleting runs and giving their space back.

A run's writes (its start and end, its events) go through the database's group-committing writer thread
(:mod:`agentmesh.store.writes`): a blocking method returns once its write is committed, so what a caller has been
told is stored survives a crash of the caller a moment later; :meth:`Store.post_events` queues events without
waiting, in order with everything else the run writes. Readers see every write queued before them. Everything
JSON that is written passes through the secret redactor first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from agentmesh.errors import ConfigError, RunNotFoundError, StoreError
from agentmesh.store.engine import make_engine, mask_url, resolve_db_url
from agentmesh.store.events import EventMethods
from agentmesh.store.migrate import ensure_schema, upgrade_engine
from agentmesh.store.records import RunStatus
from agentmesh.store.run_lifecycle import RunLifecycleMethods
from agentmesh.store.run_reads import RunReadMethods
from agentmesh.store.run_totals import zero_totals
from agentmesh.store.schema import events, runs
from agentmesh.store.targets import TargetMethods
from agentmesh.store.writes import batch_writer, close_engine_writer, writer

if TYPE_CHECKING:
    from agentmesh.store.checkpointer import SQLAlchemyCheckpointSaver

# The checkpointer and its rows' helpers (:mod:`._checkpoint_rows`) import LangGraph's checkpoint classes and with
# them langchain-core, a quarter of a second: imported by the methods that use them, so that commands that read or
# write runs without checkpointing (``agentmesh runs``, ``show``, ``db``) do not pay for it.

__all__ = ["Store", "running_refused", "zero_totals"]


class Store(RunLifecycleMethods, RunReadMethods, EventMethods, TargetMethods):
    """Runs, events, LangGraph checkpoints and unlearning target sets in one database (SQLite file or Postgres).

    ``Store()`` uses ``$AGENTMESH_DB``, else ``.agentmesh/agentmesh.db`` in the working directory. A brand-new
    database gets the schema on first open; one at an older schema raises
    :class:`~agentmesh.errors.SchemaVersionError` until ``agentmesh db upgrade`` has run. Thread-safe; several
    processes may share one database. Its methods come from the modules named for what they do: ``create_run``,
    ``finish_run``, ``mark_running``, ``claim_run``... from :class:`~agentmesh.store.run_lifecycle.RunLifecycleMethods`;
    ``get_run``, ``list_runs``, ``count_runs`` from :class:`~agentmesh.store.run_reads.RunReadMethods`;
    ``record_event``, ``record_events``, ``post_events``, ``events`` from
    :class:`~agentmesh.store.events.EventMethods`; the target-set methods (``create_target_set``, ``add_targets``,
    ``remove_targets``, ``list_targets``...) from :class:`~agentmesh.store.targets.TargetMethods`.
    """

    def __init__(self, url: str | None = None) -> None:
        if url is not None and not isinstance(url, str):
            # a pathlib.Path failed in SQLAlchemy's URL parser as "expected string or bytes-like object"
            hint = f" (a SQLite file: 'sqlite:///{url}')" if isinstance(url, os.PathLike) else ""
            raise ConfigError(
                f"Store: expected a database URL such as 'sqlite:///runs.db' or 'postgresql://user@host/db', or None "
                f"(the default store), got {type(url).__name__} {str(url)!r:.80}{hint}"
            )
        resolved = resolve_db_url(url)
        self.url = mask_url(resolved)
        self.engine = make_engine(resolved)
        try:
            ensure_schema(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        self._writer = writer(self.engine)
        self._batch = batch_writer(self.engine)
        self._checkpointer: SQLAlchemyCheckpointSaver | None = None

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    __str__ = __repr__

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Commit the queued writes, stop the writer thread and release the engine's connections."""
        close_engine_writer(self.engine)
        self.engine.dispose()

    def flush(self) -> None:
        """Wait until every write queued so far (e.g. by :meth:`post_events`) is committed."""
        self._batch.flush()

    async def aflush(self) -> None:
        """:meth:`flush` for the event loop."""
        await self._batch.aflush()

    def upgrade(self) -> str:
        """Migrate the database to this agentmesh's schema (a no-op when it is there); returns the revision."""
        return upgrade_engine(self.engine)

    def checkpointer(self) -> SQLAlchemyCheckpointSaver:
        """The LangGraph checkpointer on this store's database (one per store; it is thread-safe)."""
        if self._checkpointer is None:
            from agentmesh.store.checkpointer import SQLAlchemyCheckpointSaver

            self._checkpointer = SQLAlchemyCheckpointSaver(self.engine)
        return self._checkpointer

    # --- deleting runs ---------------------------------------------------------------------------------

    def delete_runs(self, run_ids: Sequence[str], *, force: bool = False) -> int:
        """Delete runs with their events and LangGraph checkpoints, in one transaction; returns their events' count.

        Every id must be a stored run (nothing is deleted otherwise). A ``running`` run is refused unless ``force``:
        another process may still be writing it (or it died mid-run and ``agentmesh resume`` could finish it).
        Forks of a deleted run keep everything of their own (their checkpoints were copied when they were made);
        their link to it is cleared. The database file does not shrink until :meth:`vacuum`.

        A running run deleted with ``force`` while its process still runs it goes on checkpointing until it ends;
        its end then deletes those checkpoints and raises :class:`~agentmesh.errors.RunDeletedError` (see
        :meth:`finish_run`). If that process dies first, :meth:`delete_orphan_threads` (``agentmesh db reclaim``)
        removes what it left.
        """
        ids = list(dict.fromkeys(str(r) for r in run_ids))
        if not ids:
            return 0
        with self._writer.begin() as conn:
            found = dict(conn.execute(sa.select(runs.c.id, runs.c.status).where(runs.c.id.in_(ids))).all())
            missing = [r for r in ids if r not in found]
            if missing:
                raise RunNotFoundError(f"no run {missing[0]!r} in {self.url}; nothing deleted", run_id=missing[0])
            running = [r for r in ids if found[r] == RunStatus.RUNNING.value]
            if running and not force:
                raise running_refused(running[0])
            count = conn.execute(sa.select(sa.func.count()).where(events.c.run_id.in_(ids))).scalar_one()
            from agentmesh.store._checkpoint_rows import delete_threads

            delete_threads(conn, ids)
            conn.execute(sa.update(runs).where(runs.c.parent_run_id.in_(ids)).values(parent_run_id=None))
            conn.execute(sa.delete(events).where(events.c.run_id.in_(ids)))
            conn.execute(sa.delete(runs).where(runs.c.id.in_(ids)))
        return int(count)

    def orphan_threads(self) -> dict[str, int]:
        """LangGraph checkpoint threads with no run of their id, each with its row count (checkpoints, blobs and
        writes together), by thread id.

        agentmesh checkpoints a run under its id (thread = run id), and its end deletes what the run wrote after
        being deleted while it ran (``finish_run(thread_id=...)``); a process that died before its end leaves
        those rows here, for :meth:`delete_orphan_threads`. Threads a program checkpointed through
        :meth:`checkpointer` under ids of its own have no run either: they are listed too."""
        from agentmesh.store._checkpoint_rows import orphan_thread_rows

        self._batch.flush()
        with self.engine.connect() as conn:
            return orphan_thread_rows(conn)

    def delete_orphan_threads(self, thread_ids: Sequence[str] | None = None) -> int:
        """Delete the checkpoints, blobs and writes of threads that have no run of their id (those
        :meth:`orphan_threads` lists, or only ``thread_ids`` of them), in one transaction; the number of rows
        deleted. A thread whose run exists is never touched, even if named: that is checked in the deleting
        statements themselves. The database file does not shrink until :meth:`vacuum`."""
        from agentmesh.store._checkpoint_rows import delete_orphan_threads, orphan_thread_rows

        with self._writer.begin() as conn:
            ids = list(orphan_thread_rows(conn)) if thread_ids is None else [str(t) for t in thread_ids]
            return delete_orphan_threads(conn, ids)

    def vacuum(self) -> None:
        """Give the space of deleted rows back (SQLite: ``VACUUM`` rewrites the file; Postgres: ``VACUUM``)."""
        self._batch.flush()
        # On the driver's connection: VACUUM cannot run inside a transaction, and this engine's connections begin
        # one for every statement (SQLite: the engine's own BEGIN; psycopg: autocommit off).
        pooled = self.engine.raw_connection()
        try:
            driver: Any = pooled.driver_connection
            postgres = self.engine.dialect.name == "postgresql"
            if postgres:
                driver.autocommit = True
            try:
                driver.execute("VACUUM")
                if not postgres:  # WAL mode: the rewritten pages reach the file (and the WAL empties) at a checkpoint
                    driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                if postgres:
                    driver.autocommit = False
        finally:
            pooled.close()


def running_refused(run_id: str) -> StoreError:
    """Why a run marked running is not deleted without ``force`` (one message for the store and the CLI, which
    says it before asking for confirmation)."""
    return StoreError(
        f"run {run_id} is running; nothing deleted (--force, or force=True in Python, deletes it anyway): another "
        "process may still be writing it, or its process died before finishing it and agentmesh resume can finish it",
        run_id=run_id,
    )
