"""The store's tables (SQLAlchemy Core) and the schema version every row carries.

``SCHEMA_VERSION`` is the one number to bump when the schema changes: the Alembic revision that creates that
schema is named after it (``0001`` for version 1, see :mod:`agentmesh.store.migrate`), and every row written
records it, so a reader can tell which shape a record has even after it has been exported or copied.

Checkpoint tables follow LangGraph's Postgres saver: channel values live in ``graph_checkpoint_blobs`` keyed by
``(thread_id, checkpoint_ns, channel, version)``, so a checkpoint row references the versions it needs and a
channel that did not change is not written again. (Their names carry a ``graph_`` prefix so that they cannot
collide with tables of LangGraph's own savers in a shared database.)

Unlearning targets (schema version 2, alu.md §3.1) live in ``target_sets`` / ``targets`` with two side tables:
``target_aliases`` (normalised aliases keyed by first token, what a matcher scans instead of every target) and
``target_embeddings`` (raw float32 vectors, never pickle). ``target_pins`` records which version of a set a run
read, so that a resumed or replayed run reads the same targets after the set has changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from agentmesh.store._compress import CompressedJSON

SCHEMA_VERSION = 3

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    Postgres has ``timestamptz``; SQLite stores text and hands back naive datetimes, which would silently
    compare wrong against aware ones. Values are converted to UTC on the way in and tagged UTC on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps timezone-aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


def json_column(*, nullable: bool) -> sa.types.TypeEngine[Any]:
    """JSON (JSONB on Postgres). Nullable columns keep Python ``None`` as SQL NULL, not the JSON ``null``."""
    return sa.JSON(none_as_null=nullable).with_variant(JSONB(none_as_null=nullable), "postgresql")


def payload_column(*, nullable: bool) -> sa.types.TypeEngine[Any]:
    """JSON for large payloads (events' requests, responses, data): compressed when large on SQLite, where
    nothing else would (Postgres compresses large ``jsonb`` itself)."""
    return CompressedJSON(none_as_null=nullable).with_variant(JSONB(none_as_null=nullable), "postgresql")


def _schema_version() -> sa.Column[int]:
    return sa.Column("schema_version", sa.Integer, nullable=False)


# SQLite only auto-increments an INTEGER PRIMARY KEY; Postgres gets a 64-bit identity.
_EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("graph", sa.String, nullable=False, index=True),
    sa.Column("spec_hash", sa.String, nullable=True),
    sa.Column("inputs", json_column(nullable=False), nullable=False),
    sa.Column("status", sa.String, nullable=False, index=True),
    sa.Column("stop_reason", sa.Text, nullable=True),
    sa.Column(
        "parent_run_id", sa.String, sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True, index=True
    ),  # indexed: deleting a run looks up the runs it is the parent of (schema version 3)
    sa.Column("model", sa.String, nullable=True),
    sa.Column("totals", json_column(nullable=False), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("meta", json_column(nullable=False), nullable=False),
    _schema_version(),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", _EVENT_ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("node", sa.String, nullable=True),
    sa.Column("agent", sa.String, nullable=True),
    sa.Column("round", sa.Integer, nullable=True),
    sa.Column("call_index", sa.Integer, nullable=True),
    sa.Column("attempt", sa.Integer, nullable=True),
    sa.Column("request", payload_column(nullable=True), nullable=True),
    sa.Column("request_hash", sa.String, nullable=True),
    sa.Column("response", payload_column(nullable=True), nullable=True),
    sa.Column("prompt_tokens", sa.Integer, nullable=True),
    sa.Column("completion_tokens", sa.Integer, nullable=True),
    sa.Column("total_tokens", sa.Integer, nullable=True),
    sa.Column("usage_estimated", sa.Boolean, nullable=False),
    sa.Column("latency_s", sa.Float, nullable=True),
    sa.Column("cost_usd", sa.Float, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("data", payload_column(nullable=True), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    _schema_version(),
    # Orders a run's events and, as its leading column is run_id, serves every "events of this run" lookup.
    sa.UniqueConstraint("run_id", "seq"),
    # Replay and resume find a recorded call by where it was made.
    sa.Index(None, "run_id", "node", "agent", "round", "call_index"),
)

graph_checkpoints = sa.Table(
    "graph_checkpoints",
    metadata,
    sa.Column("thread_id", sa.String, primary_key=True),
    sa.Column("checkpoint_ns", sa.String, primary_key=True),
    sa.Column("checkpoint_id", sa.String, primary_key=True),
    sa.Column("parent_checkpoint_id", sa.String, nullable=True),
    # metadata["run_id"], lifted into a column so delete_for_runs is an indexed delete.
    sa.Column("run_id", sa.String, nullable=True, index=True),
    # The checkpoint without its channel values (those are in graph_checkpoint_blobs).
    sa.Column("checkpoint", json_column(nullable=False), nullable=False),
    sa.Column("metadata", json_column(nullable=False), nullable=False),
    _schema_version(),
)

graph_checkpoint_blobs = sa.Table(
    "graph_checkpoint_blobs",
    metadata,
    sa.Column("thread_id", sa.String, primary_key=True),
    sa.Column("checkpoint_ns", sa.String, primary_key=True),
    sa.Column("channel", sa.String, primary_key=True),
    sa.Column("version", sa.String, primary_key=True),
    # The serializer's type tag ("msgpack", "bytes", "null"...), or "empty" for a channel with no value.
    sa.Column("type", sa.String, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=True),
    _schema_version(),
)

graph_checkpoint_writes = sa.Table(
    "graph_checkpoint_writes",
    metadata,
    sa.Column("thread_id", sa.String, primary_key=True),
    sa.Column("checkpoint_ns", sa.String, primary_key=True),
    sa.Column("checkpoint_id", sa.String, primary_key=True),
    sa.Column("task_id", sa.String, primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("type", sa.String, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=False),
    sa.Column("task_path", sa.String, nullable=False),
    _schema_version(),
)

# --- unlearning targets (schema version 2) ---------------------------------------------------------------------

target_sets = sa.Table(
    "target_sets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String, nullable=False, unique=True),
    # Bumped by every change (add, remove, import): a query reads it once and uses that snapshot throughout.
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    _schema_version(),
)

targets = sa.Table(
    "targets",
    metadata,
    sa.Column("set_id", sa.Integer, sa.ForeignKey("target_sets.id", ondelete="CASCADE"), primary_key=True),
    # The tie-breaker everywhere (lexical positions, semantic scores); unique within its set, never reused.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("aliases", json_column(nullable=False), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("added_in_version", sa.Integer, nullable=False),
    # Soft delete: active at version V iff added_in_version <= V < removed_in_version (or this is null).
    sa.Column("removed_in_version", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    _schema_version(),
)

target_aliases = sa.Table(
    "target_aliases",
    metadata,
    sa.Column("set_id", sa.Integer, primary_key=True),
    sa.Column("target_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("norm_alias", sa.String, primary_key=True),
    sa.Column("first_token", sa.String, nullable=False),
    _schema_version(),
    sa.ForeignKeyConstraint(
        ["set_id", "target_id"], ["targets.set_id", "targets.id"], ondelete="CASCADE", name="fk_target_aliases_targets"
    ),
    # A text's tokens are looked up here: the cost of matching follows the text, not the number of targets.
    sa.Index(None, "set_id", "first_token"),
)

target_embeddings = sa.Table(
    "target_embeddings",
    metadata,
    sa.Column("set_id", sa.Integer, primary_key=True),
    sa.Column("target_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("embedder_id", sa.String, primary_key=True),
    sa.Column("dim", sa.Integer, nullable=False),
    # Raw little-endian float32 bytes (4 * dim): compact, portable, and nothing executes on load.
    sa.Column("vector", sa.LargeBinary, nullable=False),
    _schema_version(),
    sa.ForeignKeyConstraint(
        ["set_id", "target_id"],
        ["targets.set_id", "targets.id"],
        ondelete="CASCADE",
        name="fk_target_embeddings_targets",
    ),
)

target_pins = sa.Table(
    "target_pins",
    metadata,
    sa.Column("run_id", sa.String, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("node", sa.String, primary_key=True),
    sa.Column("set_id", sa.Integer, sa.ForeignKey("target_sets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    _schema_version(),
)
