"""Schema version 2: unlearning target sets, their targets, aliases, embeddings, and the versions runs read.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Only adds tables, so a version-1 database keeps every run, event and checkpoint as it was. Spelled out column by
column (see ``0001_initial.py``): this migration must keep creating *its* version after ``schema.py`` moves on.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _json(*, nullable: bool) -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=nullable).with_variant(JSONB(none_as_null=nullable), "postgresql")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "target_sets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_target_sets"),
        sa.UniqueConstraint("name", name="uq_target_sets_name"),
    )
    op.create_table(
        "targets",
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("aliases", _json(nullable=False), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("added_in_version", sa.Integer(), nullable=False),
        sa.Column("removed_in_version", sa.Integer(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("set_id", "id", name="pk_targets"),
        sa.ForeignKeyConstraint(
            ["set_id"], ["target_sets.id"], name="fk_targets_set_id_target_sets", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "target_aliases",
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("norm_alias", sa.String(), nullable=False),
        sa.Column("first_token", sa.String(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("set_id", "target_id", "norm_alias", name="pk_target_aliases"),
        sa.ForeignKeyConstraint(
            ["set_id", "target_id"],
            ["targets.set_id", "targets.id"],
            name="fk_target_aliases_targets",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_target_aliases_set_id_first_token", "target_aliases", ["set_id", "first_token"])
    op.create_table(
        "target_embeddings",
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("embedder_id", sa.String(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("set_id", "target_id", "embedder_id", name="pk_target_embeddings"),
        sa.ForeignKeyConstraint(
            ["set_id", "target_id"],
            ["targets.set_id", "targets.id"],
            name="fk_target_embeddings_targets",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "target_pins",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("node", sa.String(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "node", "set_id", name="pk_target_pins"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_target_pins_run_id_runs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["set_id"], ["target_sets.id"], name="fk_target_pins_set_id_target_sets", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("target_pins")
    op.drop_table("target_embeddings")
    op.drop_index("ix_target_aliases_set_id_first_token", table_name="target_aliases")
    op.drop_table("target_aliases")
    op.drop_table("targets")
    op.drop_table("target_sets")
