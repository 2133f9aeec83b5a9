"""Schema version 1: runs, events and LangGraph checkpoint tables.

Revision ID: 0001
Revises:
Create Date: 2025-11-23

Spelled out column by column rather than built from ``schema.metadata``: a migration must keep creating the
schema of *its* version after ``schema.py`` has moved on. ``tests/unit/test_store.py`` checks that a database
migrated to head matches ``schema.metadata`` exactly.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _json(*, nullable: bool) -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=nullable).with_variant(JSONB(none_as_null=nullable), "postgresql")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("graph", sa.String(), nullable=False),
        sa.Column("spec_hash", sa.String(), nullable=True),
        sa.Column("inputs", _json(nullable=False), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("parent_run_id", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("totals", _json(nullable=False), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("finished_at", _when(), nullable=True),
        sa.Column("meta", _json(nullable=False), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(["parent_run_id"], ["runs.id"], name="fk_runs_parent_run_id_runs", ondelete="SET NULL"),
    )
    op.create_index("ix_runs_graph", "runs", ["graph"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_created_at", "runs", ["created_at"])

    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("node", sa.String(), nullable=True),
        sa.Column("agent", sa.String(), nullable=True),
        sa.Column("round", sa.Integer(), nullable=True),
        sa.Column("call_index", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("request", _json(nullable=True), nullable=True),
        sa.Column("request_hash", sa.String(), nullable=True),
        sa.Column("response", _json(nullable=True), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("total_tokens", sa.Integer(), nullable=True),
        sa.Column("usage_estimated", sa.Boolean(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("data", _json(nullable=True), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_events_run_id_runs", ondelete="CASCADE"),
        sa.UniqueConstraint("run_id", "seq", name="uq_events_run_id_seq"),
    )
    op.create_index(
        "ix_events_run_id_node_agent_round_call_index", "events", ["run_id", "node", "agent", "round", "call_index"]
    )

    op.create_table(
        "graph_checkpoints",
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("checkpoint_ns", sa.String(), nullable=False),
        sa.Column("checkpoint_id", sa.String(), nullable=False),
        sa.Column("parent_checkpoint_id", sa.String(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("checkpoint", _json(nullable=False), nullable=False),
        sa.Column("metadata", _json(nullable=False), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("thread_id", "checkpoint_ns", "checkpoint_id", name="pk_graph_checkpoints"),
    )
    op.create_index("ix_graph_checkpoints_run_id", "graph_checkpoints", ["run_id"])

    op.create_table(
        "graph_checkpoint_blobs",
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("checkpoint_ns", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("thread_id", "checkpoint_ns", "channel", "version", name="pk_graph_checkpoint_blobs"),
    )

    op.create_table(
        "graph_checkpoint_writes",
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("checkpoint_ns", sa.String(), nullable=False),
        sa.Column("checkpoint_id", sa.String(), nullable=False),
        sa.Column("task_id", sa.String(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("task_path", sa.String(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx", name="pk_graph_checkpoint_writes"
        ),
    )


def downgrade() -> None:
    op.drop_table("graph_checkpoint_writes")
    op.drop_table("graph_checkpoint_blobs")
    op.drop_index("ix_graph_checkpoints_run_id", table_name="graph_checkpoints")
    op.drop_table("graph_checkpoints")
    op.drop_index("ix_events_run_id_node_agent_round_call_index", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_runs_created_at", table_name="runs")
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_index("ix_runs_graph", table_name="runs")
    op.drop_table("runs")
