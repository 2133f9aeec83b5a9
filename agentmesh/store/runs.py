"""The run store: runs, their events, and their checkpointer, behind one URL.

A run's writes (its start and end, its events) go through the database's group-committing writer thread
(:mod:`agentmesh.store.writes`): a blocking method returns once its write is committed, so what a caller has been
told is stored survives a crash of the caller a moment later; :meth:`Store.post_events` queues events without
waiting, in order with everything else the run writes. Readers see every write queued before them. Everything
JSON that is written passes through the secret redactor first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Unpack
from uuid import uuid4

import sqlalchemy as sa

from agentmesh.errors import ConfigError, RunNotFoundError, SchemaVersionError, StoreError
from agentmesh.store._checkpoint_rows import delete_threads
from agentmesh.store._redact import mask_secrets
from agentmesh.store.checkpointer import SQLAlchemyCheckpointSaver
from agentmesh.store.engine import make_engine, mask_url, resolve_db_url
from agentmesh.store.events import (
    RUN_EXISTS,
    AppendEvents,
    EventFields,
    EventRowSource,
    _event_row,
    lock_run,
    stored_json,
    stored_text,
)
from agentmesh.store.migrate import ensure_schema, upgrade_engine
from agentmesh.store.owner import OWNER_KEY, current_owner
from agentmesh.store.records import EventKind, EventRecord, RunRecord, RunStatus
from agentmesh.store.schema import SCHEMA_VERSION, events, runs, utcnow
from agentmesh.store.statements import Statement, Tx, result_processors
from agentmesh.store.targets import TargetMethods
from agentmesh.store.writes import Posted, batch_writer, close_engine_writer, writer

_AMBIGUOUS_SHOWN = 5


def zero_totals() -> dict[str, Any]:
    """The totals of a run that has made no call yet."""
    return {
        "calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost_usd": 0.0,
        "estimated_tokens": False,
        "errors": 0,
    }


class Store(TargetMethods):
    """Runs, events, LangGraph checkpoints and unlearning target sets in one database (SQLite file or Postgres).

    ``Store()`` uses ``$AGENTMESH_DB``, else ``.agentmesh/agentmesh.db`` in the working directory. A brand-new
    database gets the schema on first open; one at an older schema raises
    :class:`~agentmesh.errors.SchemaVersionError` until ``agentmesh db upgrade`` has run. Thread-safe; several
    processes may share one database. The target-set methods (``create_target_set``, ``add_targets``,
    ``remove_targets``, ``list_targets``...) come from :class:`~agentmesh.store.targets.TargetMethods`.
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
            self._checkpointer = SQLAlchemyCheckpointSaver(self.engine)
        return self._checkpointer

    # --- runs ------------------------------------------------------------------------------------------

    def create_run(
        self,
        graph: str,
        inputs: Mapping[str, Any],
        *,
        spec_hash: str | None = None,
        model: str | None = None,
        parent_run_id: str | None = None,
        meta: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record a new run as ``running``; returns its id (a fresh uuid4 hex unless ``run_id`` is given)."""
        new_id, op = self._create(graph, inputs, spec_hash, model, parent_run_id, meta, run_id)
        self._batch.run(op)
        return new_id

    async def acreate_run(
        self,
        graph: str,
        inputs: Mapping[str, Any],
        *,
        spec_hash: str | None = None,
        model: str | None = None,
        parent_run_id: str | None = None,
        meta: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """:meth:`create_run` for the event loop: awaits the commit without a worker thread.

        Cancelled while it waits (Ctrl-C, SIGTERM, a batch stopped), the row still commits -- the writer may
        already be committing it, and a write it has taken cannot be taken back -- so the run is then stored as
        interrupted after it: it was left "running" with no process to finish it (a batch stopped while starting
        runs left some so, which ``resume`` refuses on another host, and ``delete`` without ``--force``)."""
        new_id, op = self._create(graph, inputs, spec_hash, model, parent_run_id, meta, run_id)
        created = self._batch.submit(op)
        try:
            await asyncio.shield(asyncio.wrap_future(created))
        except asyncio.CancelledError:
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
        self,
        graph: str,
        inputs: Mapping[str, Any],
        spec_hash: str | None,
        model: str | None,
        parent_run_id: str | None,
        meta: Mapping[str, Any] | None,
        run_id: str | None,
    ) -> tuple[str, Callable[[Tx], None]]:
        new_id = run_id or uuid4().hex
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
            "meta": stored_json({**(meta or {}), OWNER_KEY: current_owner()}, "meta"),
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
    ) -> RunRecord:
        """Close a run with a final status; its totals are summed from its ``model_call`` events."""
        return _run_from(self._batch.run(self._finish(run_id, status, stop_reason, error)))

    async def afinish_run(
        self,
        run_id: str,
        status: RunStatus | str,
        *,
        stop_reason: str | None = None,
        error: str | None = None,
    ) -> RunRecord:
        """:meth:`finish_run` for the event loop: awaits the commit without a worker thread.

        Cancelled while it waits (a second Ctrl-C while a run stores itself as interrupted), the finish is still
        committed: dropped from the writer's queue, it left the run "running" with no process to finish it."""
        finished = asyncio.wrap_future(self._batch.submit(self._finish(run_id, status, stop_reason, error)))
        return _run_from(await asyncio.shield(finished))

    def _finish(
        self, run_id: str, status: RunStatus | str, stop_reason: str | None, error: str | None
    ) -> Callable[[Tx], dict[str, Any]]:
        final = _status(status)
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

        def finish(tx: Tx) -> dict[str, Any]:
            lock_run(tx, run_id, url)
            agg = tx.execute(_CALL_TOTALS, {"run_id": run_id, "kind": EventKind.MODEL_CALL.value}).fetchone()
            totals = {
                "calls": int(agg[0]),
                "prompt_tokens": int(agg[1]),
                "completion_tokens": int(agg[2]),
                "total_tokens": int(agg[3]),
                # unknown when an answered call's price is (a model missing from the price table): a sum of the
                # others would pass for the run's cost, "$0" beside an embedded model's free calls. Failed attempts
                # cost what they recorded, if anything: none answered (or no call at all) is $0, not unknown
                "cost_usd": None if int(agg[7]) else float(agg[4] or 0.0),
                "estimated_tokens": bool(agg[5]),
                "errors": int(agg[6]),
            }
            tx.execute(_FINISH_RUN, {**changes, "totals": totals})
            found = tx.execute(_SELECT_RUN, {"id": run_id}).fetchone()
            return _decoded_run(found, tx.dialect)

        return finish

    def mark_running(self, run_id: str) -> None:
        """Reopen a run that is being resumed: status back to running, its end and error cleared, this process its
        owner (``meta.owner``, see :mod:`agentmesh.store.owner`)."""
        url = self.url
        owner = current_owner()

        def reopen(tx: Tx) -> None:
            lock_run(tx, run_id, url)
            meta = _decoded_run(tx.execute(_SELECT_RUN, {"id": run_id}).fetchone(), tx.dialect)["meta"] or {}
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
        try:
            return bool(await asyncio.shield(asyncio.wrap_future(claimed)))
        except asyncio.CancelledError:
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
            "status": _status(seen.status).value,
            "stop_reason": seen.stop_reason,
            "error": seen.error,
            "finished_at": seen.finished_at,
        }

        def release(tx: Tx) -> bool:
            lock_run(tx, seen.id, url)
            row = _decoded_run(tx.execute(_SELECT_RUN, {"id": seen.id}).fetchone(), tx.dialect)
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
        status, seen_owner = _status(seen.status).value, seen.meta.get(OWNER_KEY)

        def claim(tx: Tx) -> bool:
            lock_run(tx, seen.id, url)
            row = _decoded_run(tx.execute(_SELECT_RUN, {"id": seen.id}).fetchone(), tx.dialect)
            meta = row["meta"] or {}
            if row["status"] != status or meta.get(OWNER_KEY) != seen_owner:
                return False
            changes = {"id": seen.id, "status": RunStatus.RUNNING.value, "meta": {**meta, OWNER_KEY: owner}}
            tx.execute(_REOPEN_RUN, changes)
            return True

        return claim

    def get_run(self, run_id_or_unique_prefix: str) -> RunRecord:
        """The run with this id, or the only run whose id starts with it; :class:`RunNotFoundError` otherwise."""
        key = run_id_or_unique_prefix.strip()
        if not key:
            raise RunNotFoundError("no run id given", url=self.url)
        self._batch.flush()
        with self.engine.connect() as conn:
            exact = conn.execute(sa.select(runs).where(runs.c.id == key)).first()
            if exact is not None:
                return _run_record(exact)
            found = conn.execute(
                sa.select(runs)
                .where(runs.c.id.startswith(key, autoescape=True))
                .order_by(runs.c.created_at.desc())
                .limit(_AMBIGUOUS_SHOWN + 1)
            ).all()
        if not found:
            raise RunNotFoundError(f"no run {key!r} in {self.url}", run_id=key, url=self.url)
        if len(found) > 1:
            shown = ", ".join(r.id for r in found[:_AMBIGUOUS_SHOWN])
            if len(found) > _AMBIGUOUS_SHOWN:
                shown += ", ..."

            raise RunNotFoundError(
                f"run id prefix {key!r} is ambiguous: it matches {shown}; give more characters",
                run_id=key,
                url=self.url,
            )
        return _run_record(found[0])

    def list_runs(
        self,
        *,
        graph: str | None = None,
        status: RunStatus | str | None = None,
        batch: str | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        """Runs, newest first, optionally only of one graph, one status and/or one batch (``meta.batch.id``, as
        ``agentmesh run --input-file`` tags its runs)."""
        if limit < 1:
            raise StoreError(f"limit must be at least 1, got {limit}")
        query = _filtered(sa.select(runs), graph, status, batch)
        query = query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        self._batch.flush()
        with self.engine.connect() as conn:
            return [_run_record(row) for row in conn.execute(query)]

    def count_runs(
        self, *, graph: str | None = None, status: RunStatus | str | None = None, batch: str | None = None
    ) -> int:
        """How many runs :meth:`list_runs` would find without its limit."""
        query = _filtered(sa.select(sa.func.count()).select_from(runs), graph, status, batch)
        self._batch.flush()
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def delete_runs(self, run_ids: Sequence[str], *, force: bool = False) -> int:
        """Delete runs with their events and LangGraph checkpoints, in one transaction; returns their events' count.

        Every id must be a stored run (nothing is deleted otherwise). A ``running`` run is refused unless ``force``:
        another process may still be writing it (or it died mid-run and ``agentmesh resume`` could finish it).
        Forks of a deleted run keep everything of their own (their checkpoints were copied when they were made);
        their link to it is cleared. The database file does not shrink until :meth:`vacuum`.
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
            delete_threads(conn, ids)
            conn.execute(sa.update(runs).where(runs.c.parent_run_id.in_(ids)).values(parent_run_id=None))
            conn.execute(sa.delete(events).where(events.c.run_id.in_(ids)))
            conn.execute(sa.delete(runs).where(runs.c.id.in_(ids)))
        return int(count)

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

    # --- events ----------------------------------------------------------------------------------------

    def record_event(self, run_id: str, kind: str, **fields: Unpack[EventFields]) -> int:
        """Append an event to a run and commit it; returns the event's id. ``fields`` are its fields as keywords,
        each optional (:class:`~agentmesh.store.events.EventFields` names and types them: ``node``, ``agent``,
        ``round``, ``data``...).

        The event's ``seq`` (its position in the run) is assigned inside the insert's transaction while the
        run's row is locked (``SELECT ... FOR UPDATE`` on Postgres, the write lock on SQLite), so concurrent
        writers -- threads or processes -- never collide; ``UNIQUE(run_id, seq)`` guards it regardless.
        """
        return self.record_events(run_id, [_event_row(kind, fields, None, "Store.record_event")])[0]

    def record_events(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Append several events (built with :func:`event_row`) to a run in one transaction; their ids.

        Returns once they are committed. Events queued by several callers at once share one commit (group commit).
        """
        return self._batch.submit(AppendEvents(run_id, rows, self.url)).result() if rows else []

    def post_events(self, run_id: str, rows: Sequence[EventRowSource]) -> Posted[list[int]]:
        """Queue events for a run without waiting; the future resolves with their ids once committed.

        A row may be given as a function that makes it (:data:`EventRowSource`): it is then built in the writer
        thread, and an error building it (a value JSON cannot hold) comes back through the future.

        They commit in order with the run's other writes (its checkpoints, its end), so an event is stored before
        anything queued after it, and at the latest 10 ms after it was posted
        (:data:`~agentmesh.store.writes.POST_DELAY_S`). The ``seq`` of each (its position in the run) is assigned
        inside the commit, with the run's row locked on Postgres and SQLite's write lock held, so concurrent
        writers -- threads or processes -- never collide; ``UNIQUE(run_id, seq)`` guards it regardless.
        """
        return self._batch.post(AppendEvents(run_id, rows, self.url))

    def events(self, run_id: str, *, kind: EventKind | str | None = None) -> list[EventRecord]:
        """A run's events in order (``seq``), optionally only one kind; :class:`RunNotFoundError` if no run."""
        query = sa.select(events).where(events.c.run_id == run_id).order_by(events.c.seq)
        if kind is not None:
            query = query.where(events.c.kind == str(kind))
        self._batch.flush()
        with self.engine.connect() as conn:
            if not _run_exists(conn, run_id):
                raise RunNotFoundError(f"no run {run_id!r} in {self.url}", run_id=run_id, url=self.url)
            rows = conn.execute(query).all()
        return [EventRecord.model_validate(_checked_version(row._asdict(), "event")) for row in rows]


def _status(value: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in RunStatus)
        raise StoreError(f"unknown run status {value!r}; expected one of {allowed}") from None


_INSERT_RUN = Statement.insert(runs, [c.name for c in runs.columns])
_SELECT_RUN = Statement(f"SELECT {', '.join(c.name for c in runs.columns)} FROM runs WHERE id = :id")
_CALL_TOTALS = Statement(
    "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
    "COALESCE(SUM(total_tokens), 0), SUM(cost_usd), "
    "COALESCE(MAX(CASE WHEN usage_estimated THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN error IS NULL AND cost_usd IS NULL THEN 1 ELSE 0 END), 0) "
    "FROM events WHERE run_id = :run_id AND kind = :kind"
)
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
_RUN_READERS: dict[str, list[Any]] = {}


def running_refused(run_id: str) -> StoreError:
    """Why a run marked running is not deleted without ``force`` (one message for the store and the CLI, which
    says it before asking for confirmation)."""
    return StoreError(
        f"run {run_id} is running; nothing deleted (--force, or force=True in Python, deletes it anyway): another "
        "process may still be writing it, or its process died before finishing it and agentmesh resume can finish it",
        run_id=run_id,
    )


def _decoded_run(row: Sequence[Any], dialect: sa.Dialect) -> dict[str, Any]:
    """A ``runs`` row read by the driver, decoded as SQLAlchemy would (JSON, UTC datetimes)."""
    readers = _RUN_READERS.get(dialect.name)
    if readers is None:
        readers = _RUN_READERS[dialect.name] = result_processors(runs, dialect)
    return {
        column.name: value if reader is None or value is None else reader(value)
        for column, reader, value in zip(runs.columns, readers, row, strict=True)
    }


def _filtered(
    query: sa.Select[Any], graph: str | None, status: RunStatus | str | None, batch: str | None
) -> sa.Select[Any]:
    if graph is not None:
        query = query.where(runs.c.graph == graph)
    if status is not None:
        query = query.where(runs.c.status == _status(status).value)
    if batch is not None:
        query = query.where(runs.c.meta["batch"]["id"].as_string() == batch)
    return query


def _checked_version(values: dict[str, Any], what: str) -> dict[str, Any]:
    if values["schema_version"] > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{what} {values['id']} has schema version {values['schema_version']}; this agentmesh reads up to "
            f"{SCHEMA_VERSION}",
            record=str(values["id"]),
        )
    return values


def _run_exists(conn: sa.Connection, run_id: str) -> bool:
    return conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is not None


def _run_record(row: sa.Row[Any]) -> RunRecord:
    return _run_from(row._asdict())


def _run_from(values: dict[str, Any]) -> RunRecord:
    return RunRecord.model_validate(_checked_version(values, "run"))
