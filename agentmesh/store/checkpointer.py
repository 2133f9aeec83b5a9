"""LangGraph checkpoints in the agentmesh database: a ``BaseCheckpointSaver`` on the store's SQLAlchemy engine.

Layout (after LangGraph's Postgres saver), three tables:

* ``graph_checkpoints`` -- one row per checkpoint: its body *without* channel values (ids, channel versions,
  versions seen), its metadata as JSON, its parent;
* ``graph_checkpoint_blobs`` -- channel values keyed by ``(thread_id, checkpoint_ns, channel, version)``.
  :meth:`put` writes blobs only for the channels in ``new_versions``; a checkpoint finds the values of the
  others through the versions it lists. Storage grows with what changed, not with steps x state size;
* ``graph_checkpoint_writes`` -- pending writes of tasks, per checkpoint.

Channel versions are strings ``"<counter>.<random>"`` (:meth:`get_next_version`), so two branches forked from one
checkpoint never produce the same blob key for different values.

Serialization is LangGraph's ``JsonPlusSerializer`` in strict mode: msgpack, no pickle fallback, and on load
only LangGraph's built-in safe types are rebuilt (nothing is imported by a path read from the database). Other
classes in a graph's state come back as their plain data unless allowlisted with
``saver.with_allowlist([("my.module", "MyModel")])``. Checkpoint bodies and metadata are plain JSON;
metadata goes through the store's secret redactor. Channel values are not redacted here: state must come back
exactly as it was saved, so the runtime masks what enters a run's state instead (its inputs, each reply, what a
user's function or operator returns; providers read keys from the environment, never from state).

Writes (:meth:`put`, :meth:`put_writes`) go through the database's group-committing writer thread
(:mod:`agentmesh.store.writes`), in order with the run's events: ``aput`` awaits the commit without occupying a
worker thread, and a step's checkpoint shares its commit with whatever else was queued. Reads wait for the queued
writes first. The other async methods run the sync ones in a worker thread (``asyncio.to_thread``) because
SQLAlchemy's sync engine blocks, and the event loop must keep serving the graph's other tasks meanwhile.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import functools
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, cast

import sqlalchemy as sa
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    writes_sort_key,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from agentmesh.errors import StoreError
from agentmesh.store._checkpoint_rows import (
    EMPTY_BLOB,
    StoredCheckpoint,
    checkpoints_to_keep,
    chunks,
    collect_blobs,
    delete_checkpoints,
    delete_threads,
    put_checkpoint,
    put_pending_writes,
    stored_checkpoint,
)
from agentmesh.store._compress import CompressingSerde
from agentmesh.store.schema import (
    graph_checkpoint_blobs,
    graph_checkpoint_writes,
    graph_checkpoints,
)
from agentmesh.store.statements import Tx
from agentmesh.store.writes import Posted, batch_writer, writer

_HYDRATE_BATCH = 64  # checkpoints loaded per round trip when listing
_PRUNE_STRATEGIES = ("keep_latest", "delete")

_Insert = postgresql.Insert | sqlite.Insert


class CheckpointWrite:
    """A checkpoint write (:meth:`~SQLAlchemyCheckpointSaver.put` or ``put_writes``) queued on the store's writer.

    Its rows are built -- channel values serialised, metadata redacted -- by :meth:`prepare`, which the writer
    thread calls when it first runs the write: off the event loop, and once, even when the write runs again alone
    after its batch failed. A named type rather than a closure so that the write can be told apart from the
    others in a queue (``bench/bench_breakdown.py`` measures what each kind of write costs).
    """

    __slots__ = ("_build", "_ready")

    def __init__(self, build: Callable[[], Callable[[Tx], None]]) -> None:
        self._build = build
        self._ready: Callable[[Tx], None] | None = None

    def prepare(self) -> Callable[[Tx], None]:
        """The statements to run, built on first use."""
        if self._ready is None:
            self._ready = self._build()
        return self._ready

    def __call__(self, tx: Tx) -> None:
        self.prepare()(tx)


class SQLAlchemyCheckpointSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpointer on an agentmesh store engine (see the module docstring for the layout).

    The engine must point at a database whose schema the store created (``Store(url).checkpointer()`` does
    both). Safe to share between threads and event loops: every call opens its own short transaction.
    """

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(
            serde=CompressingSerde(JsonPlusSerializer(pickle_fallback=False, allowed_msgpack_modules=None))
        )
        self.engine = engine
        self._writer = writer(engine)
        self._batch = batch_writer(engine)
        self._new_threads: set[str] = set()
        self._defer = False
        self._failures: dict[str, BaseException] = {}

    def mark_new_thread(self, thread_id: str) -> None:
        """Declare that ``thread_id`` has no checkpoint yet (a run just created under a fresh id), so that
        LangGraph's lookup of its latest checkpoint at the start of the run is answered without a query.
        The mark goes with the thread's first :meth:`put`."""
        self._new_threads.add(str(thread_id))

    def _known_empty(self, config: RunnableConfig) -> bool:
        """Whether ``config`` asks for the latest checkpoint of a thread marked new (there is none)."""
        return not get_checkpoint_id(config) and str(config["configurable"]["thread_id"]) in self._new_threads

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> SQLAlchemyCheckpointSaver:
        """A clone that also rebuilds the allow-listed classes on load (LangGraph's hook, through our compression)."""
        serde = self.serde
        if isinstance(serde, CompressingSerde) and isinstance(serde.inner, JsonPlusSerializer):
            inner = serde.inner.with_msgpack_allowlist(extra_allowlist)
            if inner is serde.inner:
                return self
            clone = copy.copy(self)
            clone.serde = CompressingSerde(inner)
            return clone
        return cast(SQLAlchemyCheckpointSaver, super().with_allowlist(extra_allowlist))

    # --- reading ---------------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its ``checkpoint_id``), else the thread's latest; ``None`` if none."""
        if self._known_empty(config):
            return None
        configurable = config["configurable"]
        checkpoint_id = get_checkpoint_id(config)
        cp = graph_checkpoints
        query = sa.select(cp).where(
            cp.c.thread_id == str(configurable["thread_id"]),
            cp.c.checkpoint_ns == configurable.get("checkpoint_ns", ""),
        )
        if checkpoint_id:
            query = query.where(cp.c.checkpoint_id == checkpoint_id)
        else:
            query = query.order_by(cp.c.checkpoint_id.desc()).limit(1)
        self._batch.flush()
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            return self._hydrate(conn, [stored_checkpoint(row)])[0]

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints matching ``config`` (thread, namespace, id), metadata ``filter`` and ``before``, newest first.

        A metadata filter matches a checkpoint when every key's value equals the stored one (JSON equality).
        """
        stored = self._select(config, filter, before, limit)
        for start in range(0, len(stored), _HYDRATE_BATCH):
            yield from self._hydrate_batch(stored[start : start + _HYDRATE_BATCH])

    # --- writing ---------------------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store ``checkpoint``, writing values only for the channels in ``new_versions``."""
        op, saved = self._put(config, checkpoint, metadata, new_versions)
        self._batch.run(op)
        return saved

    def _put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[CheckpointWrite, RunnableConfig]:
        """The write of :meth:`put` and the config it returns.

        The rows are serialised and redacted by the write itself, in the writer thread: for a deferred put that
        is off the event loop's critical path, as LangGraph's own async savers serialise in a background task."""
        configurable = config["configurable"]
        self._new_threads.discard(str(configurable["thread_id"]))
        checkpoint_ns = configurable.get("checkpoint_ns", "")
        build = functools.partial(put_checkpoint, self.serde, config, checkpoint, metadata, new_versions)
        saved: RunnableConfig = {
            "configurable": {
                "thread_id": configurable["thread_id"],
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        return CheckpointWrite(build), saved

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes against the checkpoint in ``config``.

        Regular writes are written once (a retried task does not duplicate them); the special channels (error,
        interrupt, resume, scheduled) are replaced, as LangGraph's savers do.
        """
        if writes:
            self._batch.run(self._put_writes(config, writes, task_id, task_path))

    def _put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> CheckpointWrite:
        """The write of :meth:`put_writes`; like :meth:`_put`'s, it serialises its values in the writer thread."""
        build = functools.partial(put_pending_writes, self.serde, config, list(writes), task_id, task_path)
        return CheckpointWrite(build)

    # --- maintenance -----------------------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, blob and write of ``thread_id`` (all namespaces)."""
        with self._writer.begin() as conn:
            delete_threads(conn, [thread_id])

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) that the given runs created; drop blobs nothing uses."""
        if not run_ids:
            return
        cp = graph_checkpoints
        with self._writer.begin() as conn:
            doomed = [
                (row.thread_id, row.checkpoint_ns, row.checkpoint_id)
                for row in conn.execute(
                    sa.select(cp.c.thread_id, cp.c.checkpoint_ns, cp.c.checkpoint_id).where(
                        cp.c.run_id.in_([str(r) for r in run_ids])
                    )
                )
            ]
            delete_checkpoints(conn, doomed)
            for thread_id, checkpoint_ns in {(t, ns) for t, ns, _ in doomed}:
                collect_blobs(conn, thread_id, checkpoint_ns)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob and write of one thread to a new thread (which must not exist yet)."""
        source, target = str(source_thread_id), str(target_thread_id)
        cp = graph_checkpoints
        with self._writer.begin() as conn:
            taken = conn.execute(sa.select(cp.c.checkpoint_id).where(cp.c.thread_id == target).limit(1)).first()
            if taken is not None:
                raise StoreError(
                    f"cannot copy thread {source!r} to {target!r}: the target thread already has checkpoints",
                    thread_id=target,
                )
            for table in (graph_checkpoints, graph_checkpoint_blobs, graph_checkpoint_writes):
                columns = [
                    sa.literal(target, sa.String).label("thread_id") if c.name == "thread_id" else c
                    for c in table.columns
                ]
                rows = sa.select(*columns).where(table.c.thread_id == source)
                conn.execute(
                    _insert(conn, table).from_select([c.name for c in table.columns], rows).on_conflict_do_nothing()
                )

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Shrink threads: ``"delete"`` removes them; ``"keep_latest"`` keeps the newest checkpoint per namespace.

        ``keep_latest`` also keeps the ancestors a ``DeltaChannel`` needs to rebuild its value: a delta channel
        with updates since its last snapshot (``counters_since_delta_snapshot`` in the latest metadata) stores
        nothing at the latest checkpoint, so the checkpoints back to its snapshot, and their writes, stay.
        Blobs no remaining checkpoint refers to are deleted.
        """
        if strategy not in _PRUNE_STRATEGIES:
            raise StoreError(f"unknown prune strategy {strategy!r}; expected one of {_PRUNE_STRATEGIES}")
        if strategy == "delete":
            for thread_id in thread_ids:
                self.delete_thread(thread_id)
            return
        cp = graph_checkpoints
        for thread_id in thread_ids:
            with self._writer.begin() as conn:
                rows = [
                    stored_checkpoint(row)
                    for row in conn.execute(sa.select(cp).where(cp.c.thread_id == str(thread_id)))
                ]
                by_ns: dict[str, builtins.list[StoredCheckpoint]] = defaultdict(builtins.list)
                for stored in rows:
                    by_ns[stored.checkpoint_ns].append(stored)
                for checkpoint_ns, checkpoints in by_ns.items():
                    keep = checkpoints_to_keep(conn, checkpoints)
                    doomed = [c for c in checkpoints if c.checkpoint_id not in keep]
                    delete_checkpoints(conn, [(c.thread_id, c.checkpoint_ns, c.checkpoint_id) for c in doomed])
                    collect_blobs(conn, str(thread_id), checkpoint_ns)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """``"<counter>.<random>"``: increasing, and distinct across branches forked from one checkpoint."""
        if current is None:
            counter = 0
        elif isinstance(current, int):
            counter = current
        else:
            counter = int(str(current).split(".")[0])
        return f"{counter + 1:032}.{random.random():016}"

    # --- async -----------------------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async :meth:`get_tuple`."""
        if self._known_empty(config):  # answered here: no worker thread for nothing
            return None
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list`: selects in one worker-thread call, then loads values batch by batch."""
        stored = await asyncio.to_thread(self._select, config, filter, before, limit)
        for start in range(0, len(stored), _HYDRATE_BATCH):
            batch = await asyncio.to_thread(self._hydrate_batch, stored[start : start + _HYDRATE_BATCH])
            for item in batch:
                yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async :meth:`put`: awaits the commit on the event loop (the writer thread does the I/O); on a
        :meth:`deferring` saver, queues it and returns (see there)."""
        op, saved = self._put(config, checkpoint, metadata, new_versions)
        await self._write(str(config["configurable"]["thread_id"]), op)
        return saved

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`: awaits the commit on the event loop (the writer thread does the I/O); on a
        :meth:`deferring` saver, queues it and returns (see there)."""
        if writes:
            op = self._put_writes(config, writes, task_id, task_path)
            await self._write(str(config["configurable"]["thread_id"]), op)

    def deferring(self) -> SQLAlchemyCheckpointSaver:
        """A clone whose async writes are queued rather than awaited: ``aput``/``aput_writes`` return at once and
        the write commits with the store's next commit (or within the writer's delay for posted writes), in
        order with everything else. For LangGraph's default ``durability="async"``, where no step waits for its
        checkpoint anyway: the run then spends no wake-up of the writer thread per step. A write that failed is
        raised by the thread's next write and by :meth:`check_writes`, which a run calls once its end is
        committed (after every write it queued)."""
        clone = copy.copy(self)
        clone._defer = True
        clone._failures = {}
        return clone

    def check_writes(self, thread_id: str) -> None:
        """Raise the first of the thread's queued writes already known to have failed."""
        self._raise_failure(str(thread_id))

    async def _write(self, thread_id: str, op: CheckpointWrite) -> None:
        if not self._defer:
            await self._batch.arun(op)
            return
        self._raise_failure(thread_id)
        future = self._batch.post(op)
        future.add_done_callback(lambda done: self._note_failure(thread_id, done))

    def _note_failure(self, thread_id: str, done: Posted[Any]) -> None:
        exc = done.exception()
        if exc is not None:
            self._failures.setdefault(thread_id, exc)

    def _raise_failure(self, thread_id: str) -> None:
        exc = self._failures.pop(thread_id, None)
        if exc is not None:
            raise StoreError(
                f"a checkpoint of thread {thread_id!r} could not be stored: {type(exc).__name__}: {exc}",
                thread_id=thread_id,
            ) from exc

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async :meth:`prune`."""
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)

    # --- internals -------------------------------------------------------------------------------------

    def _select(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> builtins.list[StoredCheckpoint]:
        """Checkpoint rows (without values) for :meth:`list`, filtered and limited, newest first."""
        cp = graph_checkpoints
        query = sa.select(cp)
        if config is not None:
            configurable = config["configurable"]
            query = query.where(cp.c.thread_id == str(configurable["thread_id"]))
            if configurable.get("checkpoint_ns") is not None:
                query = query.where(cp.c.checkpoint_ns == configurable["checkpoint_ns"])
            if checkpoint_id := get_checkpoint_id(config):
                query = query.where(cp.c.checkpoint_id == checkpoint_id)
        if before is not None and (before_id := get_checkpoint_id(before)):
            query = query.where(cp.c.checkpoint_id < before_id)
        predicates, residual = _metadata_predicates(self.engine.dialect.name, filter or {})
        query = query.where(*predicates).order_by(cp.c.checkpoint_id.desc(), cp.c.thread_id, cp.c.checkpoint_ns)
        if limit is not None and not residual:
            query = query.limit(limit)
        self._batch.flush()
        with self.engine.connect() as conn:
            stored = [stored_checkpoint(row) for row in conn.execute(query)]
        if residual:
            stored = [s for s in stored if all(s.metadata.get(k) == v for k, v in residual.items())]
        return stored if limit is None else stored[:limit]

    def _hydrate_batch(self, stored: Sequence[StoredCheckpoint]) -> builtins.list[CheckpointTuple]:
        with self.engine.connect() as conn:
            return self._hydrate(conn, stored)

    def _hydrate(self, conn: sa.Connection, stored: Sequence[StoredCheckpoint]) -> builtins.list[CheckpointTuple]:
        """Checkpoint tuples for ``stored`` rows: their channel values and pending writes, in one query each."""
        values: dict[tuple[str, str], dict[tuple[str, str], tuple[str, bytes | None]]] = {}
        writes: dict[tuple[str, str, str], builtins.list[tuple[str, int, str, str, str, bytes]]] = defaultdict(
            builtins.list
        )
        groups: dict[tuple[str, str], builtins.list[StoredCheckpoint]] = defaultdict(builtins.list)
        for s in stored:
            groups[(s.thread_id, s.checkpoint_ns)].append(s)
        blobs, w = graph_checkpoint_blobs, graph_checkpoint_writes
        for (thread_id, checkpoint_ns), members in groups.items():
            pairs = sorted({(ch, str(ver)) for s in members for ch, ver in s.versions.items()})
            found: dict[tuple[str, str], tuple[str, bytes | None]] = {}
            for chunk in chunks(pairs):
                for blob in conn.execute(
                    sa.select(blobs.c.channel, blobs.c.version, blobs.c.type, blobs.c.blob).where(
                        blobs.c.thread_id == thread_id,
                        blobs.c.checkpoint_ns == checkpoint_ns,
                        sa.tuple_(blobs.c.channel, blobs.c.version).in_(chunk),
                    )
                ):
                    found[(blob.channel, blob.version)] = (blob.type, blob.blob)
            values[(thread_id, checkpoint_ns)] = found
            for ids in chunks(sorted({s.checkpoint_id for s in members})):
                for row in conn.execute(
                    sa.select(
                        w.c.checkpoint_id, w.c.task_id, w.c.idx, w.c.task_path, w.c.channel, w.c.type, w.c.blob
                    ).where(w.c.thread_id == thread_id, w.c.checkpoint_ns == checkpoint_ns, w.c.checkpoint_id.in_(ids))
                ):
                    writes[(thread_id, checkpoint_ns, row.checkpoint_id)].append(
                        (row.task_id, row.idx, row.task_path, row.channel, row.type, row.blob)
                    )
        return [
            self._tuple(
                s,
                values[(s.thread_id, s.checkpoint_ns)],
                writes.get((s.thread_id, s.checkpoint_ns, s.checkpoint_id), []),
            )
            for s in stored
        ]

    def _tuple(
        self,
        s: StoredCheckpoint,
        blobs: dict[tuple[str, str], tuple[str, bytes | None]],
        writes: Iterable[tuple[str, int, str, str, str, bytes]],
    ) -> CheckpointTuple:
        channel_values: dict[str, Any] = {}
        for channel, version in s.versions.items():
            found = blobs.get((channel, str(version)))
            if found is not None and found[0] != EMPTY_BLOB:
                channel_values[channel] = self.serde.loads_typed((found[0], found[1] or b""))
        pending: list[PendingWrite] = [
            (task_id, channel, self.serde.loads_typed((type_, blob)))
            for task_id, _idx, _path, channel, type_, blob in sorted(
                writes, key=lambda r: writes_sort_key(r[2], r[0], r[1])
            )
        ]
        checkpoint = cast(Checkpoint, {**s.body, "channel_values": channel_values})
        config: RunnableConfig = {
            "configurable": {
                "thread_id": s.thread_id,
                "checkpoint_ns": s.checkpoint_ns,
                "checkpoint_id": s.checkpoint_id,
            }
        }
        parent: RunnableConfig | None = None
        if s.parent_checkpoint_id:
            parent = {
                "configurable": {
                    "thread_id": s.thread_id,
                    "checkpoint_ns": s.checkpoint_ns,
                    "checkpoint_id": s.parent_checkpoint_id,
                }
            }
        metadata = cast(CheckpointMetadata, s.metadata)
        return CheckpointTuple(config, checkpoint, metadata, parent, pending)


def _insert(conn: sa.Connection, table: sa.Table) -> _Insert:
    """``INSERT`` in the dialect that has ``ON CONFLICT`` (both supported backends spell it the same)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _metadata_predicates(dialect: str, filter: dict[str, Any]) -> tuple[list[sa.ColumnElement[bool]], dict[str, Any]]:
    """SQL predicates for the scalar entries of a metadata filter, and the entries left to check in Python.

    Scalars (str, int, float, bool) compare exactly in SQL on both backends (JSONB containment on Postgres,
    ``json_extract`` on SQLite). ``None``, lists and objects are matched in Python, where "equal" is plain.
    """
    metadata = graph_checkpoints.c.metadata
    predicates: list[sa.ColumnElement[bool]] = []
    residual: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    for key, value in filter.items():
        if isinstance(value, str | int | float) and (dialect == "postgresql" or '"' not in key):
            scalars[key] = value
        else:
            residual[key] = value
    if scalars and dialect == "postgresql":
        predicates.append(sa.type_coerce(metadata, JSONB).contains(scalars))
    else:
        for key, value in scalars.items():
            predicates.append(sa.func.json_extract(metadata, f'$."{key}"') == value)
    return predicates, residual
