"""Alembic environment for the agentmesh store, driven from code (no ``alembic.ini`` on the user's side).

:mod:`agentmesh.store.migrate` opens the connection (and the transaction and lock around it) and hands it over
in ``config.attributes["connection"]``; this module only tells Alembic what to migrate it with.
"""

from __future__ import annotations

from alembic import context

from agentmesh.store.migrate import VERSION_TABLE
from agentmesh.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
