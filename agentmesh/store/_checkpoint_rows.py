"""Row-level helpers for the checkpoint tables: the rows a put writes, the stored checkpoint, deletion, blob collection,
pruning.

They are the rows and SQL behind :class:`~agentmesh.store.checkpointer.SQLAlchemyCheckpointSaver`'s writes (what
its ``put``/``put_writes`` store, built and run by the store's writer thread as prepared statements) and its
maintenance methods (``delete_for_runs``, ``prune``), kept apart so the saver itself reads as the LangGraph
protocol it implements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import ERROR

from agentmesh.errors import SchemaVersionError
from agentmesh.store._jsonable import to_jsonable
from agentmesh.store._redact import mask_secrets, redact_json
from agentmesh.store.schema import (
    SCHEMA_VERSION,
    graph_checkpoint_blobs,
    graph_checkpoint_writes,
    graph_checkpoints,
    runs,
)
from agentmesh.store.statements import Statement, Tx

EMPTY_BLOB = "empty"  # blob type of a versioned channel that holds no value
IN_CHUNK = 500  # tuples per IN (...) list: well under SQLite's and Postgres' bound-parameter limits
DELTA_COUNTERS = "counters_since_delta_snapshot"


@dataclass(frozen=True)
class StoredCheckpoint:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    body: dict[str, Any]
    metadata: dict[str, Any]

    @property
    def versions(self) -> dict[str, Any]:
        versions: dict[str, Any] = self.body.get("channel_versions") or {}
        return versions


def stored_checkpoint(row: sa.Row[Any]) -> StoredCheckpoint:
    if row.schema_version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"checkpoint {row.checkpoint_id} of thread {row.thread_id} has schema version {row.schema_version}; "
            f"this agentmesh reads up to {SCHEMA_VERSION}",
            thread_id=row.thread_id,
        )
    return StoredCheckpoint(
        thread_id=row.thread_id,
        checkpoint_ns=row.checkpoint_ns,
        checkpoint_id=row.checkpoint_id,
        parent_checkpoint_id=row.parent_checkpoint_id,
        body=row.checkpoint,
        metadata=row.metadata,
    )


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


def delete_threads(conn: sa.Connection, thread_ids: Sequence[str]) -> None:
    """Delete every checkpoint, blob and write of these threads (all namespaces), in ``conn``'s transaction."""
    ids = [str(t) for t in thread_ids]
    for table in (graph_checkpoint_writes, graph_checkpoint_blobs, graph_checkpoints):
        conn.execute(sa.delete(table).where(table.c.thread_id.in_(ids)))


_DELETE_THREAD = tuple(
    Statement(f"DELETE FROM {table.name} WHERE thread_id = :thread_id")
    for table in (graph_checkpoint_writes, graph_checkpoint_blobs, graph_checkpoints)
)


def delete_thread_in(tx: Tx, thread_id: str) -> None:
    """:func:`delete_threads` for one thread, in a transaction of the store's writer thread (prepared statements):
    what a run's end does when the run was deleted while it ran, after the checkpoints it wrote meanwhile."""
    for statement in _DELETE_THREAD:
        tx.execute(statement, {"thread_id": str(thread_id)})


def orphan_thread_rows(conn: sa.Connection) -> dict[str, int]:
    """The checkpoint threads that have no run of their id, each with its row count (checkpoints, blobs and
    writes): what a run deleted while its process ran leaves when that process dies before its end."""
    found: dict[str, int] = {}
    for table in (graph_checkpoints, graph_checkpoint_blobs, graph_checkpoint_writes):
        query = (
            sa.select(table.c.thread_id, sa.func.count())
            .where(~sa.exists().where(runs.c.id == table.c.thread_id))
            .group_by(table.c.thread_id)
        )
        for thread_id, count in conn.execute(query):
            found[thread_id] = found.get(thread_id, 0) + int(count)
    return found


def delete_orphan_threads(conn: sa.Connection, thread_ids: Sequence[str]) -> int:
    """Delete the rows of these checkpoint threads that still have no run of their id (checked in the same
    statement: a thread whose run appeared since it was listed is kept); returns the number of rows deleted."""
    deleted = 0
    for table in (graph_checkpoint_writes, graph_checkpoint_blobs, graph_checkpoints):
        for chunk in chunks([str(t) for t in thread_ids]):
            result = conn.execute(
                sa.delete(table).where(table.c.thread_id.in_(chunk), ~sa.exists().where(runs.c.id == table.c.thread_id))
            )
            deleted += int(result.rowcount or 0)
    return deleted


def delete_checkpoints(conn: sa.Connection, keys: Sequence[tuple[str, str, str]]) -> None:
    """Delete checkpoints by ``(thread_id, checkpoint_ns, checkpoint_id)``, with their pending writes."""
    for table in (graph_checkpoint_writes, graph_checkpoints):
        for chunk in chunks(keys):
            conn.execute(
                sa.delete(table).where(
                    sa.tuple_(table.c.thread_id, table.c.checkpoint_ns, table.c.checkpoint_id).in_(chunk)
                )
            )


def collect_blobs(conn: sa.Connection, thread_id: str, checkpoint_ns: str) -> None:
    """Delete the blobs of a thread namespace that no remaining checkpoint refers to."""
    cp, blobs = graph_checkpoints, graph_checkpoint_blobs
    referenced = {
        (channel, str(version))
        for (body,) in conn.execute(
            sa.select(cp.c.checkpoint).where(cp.c.thread_id == thread_id, cp.c.checkpoint_ns == checkpoint_ns)
        )
        for channel, version in (body.get("channel_versions") or {}).items()
    }
    unused = [
        (row.channel, row.version)
        for row in conn.execute(
            sa.select(blobs.c.channel, blobs.c.version).where(
                blobs.c.thread_id == thread_id, blobs.c.checkpoint_ns == checkpoint_ns
            )
        )
        if (row.channel, row.version) not in referenced
    ]
    for chunk in chunks(unused):
        conn.execute(
            sa.delete(blobs).where(
                blobs.c.thread_id == thread_id,
                blobs.c.checkpoint_ns == checkpoint_ns,
                sa.tuple_(blobs.c.channel, blobs.c.version).in_(chunk),
            )
        )


def checkpoints_to_keep(conn: sa.Connection, checkpoints: Sequence[StoredCheckpoint]) -> set[str]:
    """The latest checkpoint of one namespace, plus the ancestors its delta channels are rebuilt from."""
    by_id = {c.checkpoint_id: c for c in checkpoints}
    latest = by_id[max(by_id)]
    keep = {latest.checkpoint_id}
    pending = set(latest.metadata.get(DELTA_COUNTERS) or {})
    if not pending:
        return keep
    blobs = graph_checkpoint_blobs
    stored_types = {
        (row.channel, row.version): row.type
        for row in conn.execute(
            sa.select(blobs.c.channel, blobs.c.version, blobs.c.type).where(
                blobs.c.thread_id == latest.thread_id,
                blobs.c.checkpoint_ns == latest.checkpoint_ns,
                blobs.c.channel.in_(sorted(pending)),
            )
        )
    }

    def seeded_at(c: StoredCheckpoint) -> set[str]:
        return {ch for ch in pending if stored_types.get((ch, str(c.versions.get(ch))), EMPTY_BLOB) != EMPTY_BLOB}

    pending -= seeded_at(latest)
    current = latest
    while pending and current.parent_checkpoint_id in by_id:
        current = by_id[current.parent_checkpoint_id]
        keep.add(current.checkpoint_id)
        pending -= seeded_at(current)
    return keep


# --- the saver's writes (run by the store's writer thread) ---------------------------------------------------

_CHECKPOINT_KEY = "thread_id, checkpoint_ns, checkpoint_id"
_WRITE_KEY = "thread_id, checkpoint_ns, checkpoint_id, task_id, idx"
_INSERT_BLOB = Statement.insert(
    graph_checkpoint_blobs,
    [c.name for c in graph_checkpoint_blobs.columns],
    "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING",
)
_UPSERT_CHECKPOINT = Statement.insert(
    graph_checkpoints,
    [c.name for c in graph_checkpoints.columns],
    f"ON CONFLICT ({_CHECKPOINT_KEY}) DO UPDATE SET checkpoint = excluded.checkpoint, "
    "metadata = excluded.metadata, run_id = excluded.run_id, schema_version = excluded.schema_version",
)
_INSERT_WRITE = Statement.insert(
    graph_checkpoint_writes, [c.name for c in graph_checkpoint_writes.columns], f"ON CONFLICT ({_WRITE_KEY}) DO NOTHING"
)
_UPSERT_WRITE = Statement.insert(
    graph_checkpoint_writes,
    [c.name for c in graph_checkpoint_writes.columns],
    f"ON CONFLICT ({_WRITE_KEY}) DO UPDATE SET channel = excluded.channel, type = excluded.type, "
    "blob = excluded.blob, task_path = excluded.task_path",
)


def put_checkpoint(
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
) -> Callable[[Tx], None]:
    """The rows of a ``put`` and the op writing them: a blob per channel in ``new_versions`` (the others' values
    are found through the versions the body lists), the body without its channel values, the metadata redacted.

    Called by the writer thread when it first runs the write (see ``CheckpointWrite``): serialising is off the
    event loop. The checkpoint is LangGraph's copy, and state values are never changed in place once written.
    """
    configurable = config["configurable"]
    thread_id = str(configurable["thread_id"])
    checkpoint_ns = configurable.get("checkpoint_ns", "")
    values = checkpoint["channel_values"]
    blob_rows = []
    for channel, version in new_versions.items():
        type_, blob = serde.dumps_typed(values[channel]) if channel in values else (EMPTY_BLOB, None)
        blob_rows.append(
            {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "channel": channel,
                "version": str(version),
                "type": type_,
                "blob": blob,
                "schema_version": SCHEMA_VERSION,
            }
        )
    body = to_jsonable({k: v for k, v in checkpoint.items() if k != "channel_values"}, where="checkpoint")
    stored_metadata = redact_json(get_serializable_checkpoint_metadata(config, metadata), where="checkpoint metadata")
    assert isinstance(stored_metadata, dict)
    run_id = stored_metadata.get("run_id")
    checkpoint_row = {
        "thread_id": thread_id,
        "checkpoint_ns": checkpoint_ns,
        "checkpoint_id": checkpoint["id"],
        "parent_checkpoint_id": configurable.get("checkpoint_id"),
        "run_id": None if run_id is None else str(run_id),
        "checkpoint": body,
        "metadata": stored_metadata,
        "schema_version": SCHEMA_VERSION,
    }

    def put(tx: Tx) -> None:
        tx.executemany(_INSERT_BLOB, blob_rows)
        tx.execute(_UPSERT_CHECKPOINT, checkpoint_row)

    return put


def _masked_error(value: Any) -> Any:
    """A failed task's error (LangGraph stores its ``repr``) with credentials masked: it may quote the inputs. The
    masked text is stored in its place (it reads back as the error's message); an error without one is unchanged."""
    if not isinstance(value, BaseException):
        return value
    text = repr(value)
    masked = mask_secrets(text)
    return value if masked == text else masked


def put_pending_writes(
    serde: SerializerProtocol, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
) -> Callable[[Tx], None]:
    """The rows of a ``put_writes`` and the op writing them: one per write, keyed by its index (the special
    channels' fixed ones). Only special channels (error, interrupt...) are replaced, as LangGraph's savers do;
    regular writes are written once, so a retried task does not duplicate them."""
    configurable = config["configurable"]
    statement = _UPSERT_WRITE if all(channel in WRITES_IDX_MAP for channel, _ in writes) else _INSERT_WRITE
    by_idx: dict[int, dict[str, Any]] = {}
    for position, (channel, value) in enumerate(writes):
        idx = WRITES_IDX_MAP.get(channel, position)
        type_, blob = serde.dumps_typed(_masked_error(value) if channel == ERROR else value)
        by_idx[idx] = {
            "thread_id": str(configurable["thread_id"]),
            "checkpoint_ns": configurable.get("checkpoint_ns", ""),
            "checkpoint_id": configurable["checkpoint_id"],
            "task_id": task_id,
            "idx": idx,
            "channel": channel,
            "type": type_,
            "blob": blob,
            "task_path": task_path,
            "schema_version": SCHEMA_VERSION,
        }
    rows = list(by_idx.values())

    def put(tx: Tx) -> None:
        tx.executemany(statement, rows)

    return put
