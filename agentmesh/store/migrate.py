"""Schema revisions: create a new database at head, refuse one this code cannot read, upgrade on request.

The Alembic environment ships inside the package (``agentmesh/store/migrations``) and is driven from here with
a :class:`alembic.config.Config` built in code, so users never see an ``alembic.ini``. Revision ids are the
zero-padded schema version (``0001`` is :data:`~agentmesh.store.schema.SCHEMA_VERSION` 1), which is how a
database's revision and the code's version are compared without a table of correspondences.

Creating or upgrading runs inside one transaction holding a lock (SQLite's write lock via ``BEGIN IMMEDIATE``,
a Postgres advisory lock), so two processes opening a brand-new database at once cannot both try to create
it: the second waits, then finds the schema in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import DBAPIError

from agentmesh.errors import SchemaVersionError, StoreError
from agentmesh.store._redact import mask_secrets
from agentmesh.store.engine import make_engine, mask_url, resolve_db_url
from agentmesh.store.schema import SCHEMA_VERSION, metadata
from agentmesh.store.writes import writer

VERSION_TABLE = "agentmesh_alembic_version"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock key: the bytes of "am_migr8" as a signed 64-bit integer.
_PG_LOCK_KEY = int.from_bytes(b"am_migr8", "big", signed=True)


def revision_for(version: int) -> str:
    """The Alembic revision id that creates schema ``version``."""
    return f"{version:04d}"


def head_revision() -> str:
    """The revision this code reads and writes."""
    return revision_for(SCHEMA_VERSION)


def alembic_config(connection: sa.Connection) -> Config:
    """An Alembic config for the packaged migrations, running on ``connection`` (see ``migrations/env.py``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def current_revision(connection: sa.Connection) -> str | None:
    """The database's revision, or ``None`` for a database agentmesh has never set up."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def check_revision(revision: str, url: str) -> None:
    """:class:`SchemaVersionError` unless ``revision`` is exactly the one this code works with."""
    head = head_revision()
    if revision == head:
        return
    if _is_older_or_current(revision):
        raise SchemaVersionError(
            f"database {url} is at schema revision {revision}; this agentmesh needs {head}. "
            "Run `agentmesh db upgrade` (with --db if the database is not the default) to migrate it.",
            url=url,
            revision=revision,
            expected=head,
        )
    raise SchemaVersionError(
        f"database {url} is at schema revision {revision}, newer than this agentmesh knows (it reads {head}); "
        "upgrade agentmesh to use this database.",
        url=url,
        revision=revision,
        expected=head,
    )


def ensure_schema(engine: sa.Engine) -> str:
    """Create the schema in a brand-new database; check the revision of an existing one. Returns it."""
    url = engine.url.render_as_string(hide_password=True)
    with _translate_errors(url):
        with engine.connect() as connection:
            revision = current_revision(connection)
        if revision is None:
            with _migration_lock(engine) as connection:
                revision = current_revision(connection)
                if revision is None:
                    _refuse_foreign_tables(connection, url)
                    command.upgrade(alembic_config(connection), head_revision())
                    return head_revision()
    check_revision(revision, url)
    return revision


def _refuse_foreign_tables(connection: sa.Connection, url: str) -> None:
    """A database without agentmesh's revision that already has tables of agentmesh's names (``runs``...) is
    someone else's: creating the schema would fail half-way on the first name taken ("table runs already exists")
    or, worse, write into the other application's tables. Refused with what was found; nothing is changed.
    Tables of other names are left alone: a Postgres database shared with other applications is fine."""
    taken = sorted(set(sa.inspect(connection).get_table_names()) & set(metadata.tables))
    if taken:
        raise StoreError(
            f"{url} is not an agentmesh database: it has no agentmesh schema revision but already has tables "
            f"named {', '.join(taken)}; nothing was changed. Give agentmesh its own database (--db, $AGENTMESH_DB).",
            url=url,
        )


def upgrade_engine(engine: sa.Engine) -> str:
    """Migrate the database behind ``engine`` to this code's revision (creating it if new); returns it."""
    url = engine.url.render_as_string(hide_password=True)
    with _translate_errors(url), _migration_lock(engine) as connection:
        revision = current_revision(connection)
        if revision is not None and not _is_older_or_current(revision):
            check_revision(revision, url)  # newer than this code: refuse to touch it
        command.upgrade(alembic_config(connection), head_revision())
    return head_revision()


def upgrade_database(url: str | None = None) -> tuple[str, str]:
    """``agentmesh db upgrade``: migrate the database at ``url`` (resolved as the store does).

    Returns the URL (password masked) and the revision the database is now at. Safe to run repeatedly.
    """
    resolved = resolve_db_url(url)
    engine = make_engine(resolved)
    try:
        return mask_url(resolved), upgrade_engine(engine)
    finally:
        engine.dispose()


def _is_older_or_current(revision: str) -> bool:
    return revision.isdigit() and int(revision) <= SCHEMA_VERSION


@contextmanager
def _migration_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    with writer(engine).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        yield connection


@contextmanager
def _translate_errors(url: str) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        raise StoreError(
            f"cannot open the agentmesh database {url}: {mask_secrets(str(exc.orig))}".strip(), url=url
        ) from exc
