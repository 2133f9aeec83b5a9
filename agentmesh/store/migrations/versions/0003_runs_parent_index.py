"""Schema version 3: an index on ``runs.parent_run_id``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

Deleting a run makes the database find the runs that name it as their parent (the foreign key's ``ON DELETE SET
NULL``); without an index that is a scan of every run for each run deleted, so ``agentmesh delete --batch`` of 3,000
runs in a store of 12,000 took over a minute on SQLite. Only adds the index: a version-2 database keeps every row.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])


def downgrade() -> None:
    op.drop_index("ix_runs_parent_run_id", table_name="runs")
