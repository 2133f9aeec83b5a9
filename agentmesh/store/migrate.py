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

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import DBAPIError

from agentmesh.errors import SchemaVersionError, StoreError
from agentmesh.store._redact import mask_secrets
from agentmesh.store.engine import make_engine, mask_url, parse_db_url, resolve_db_url, shown_url
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
    url = shown_url(engine.url)
    with _translate_errors(url, engine):
        with engine.connect() as connection:
            revision = current_revision(connection)
        if revision is None:
            with _migration_lock(engine) as connection:
                revision = current_revision(connection)
                if revision is None:
                    _refuse_foreign_tables(connection, url)
                    with _ALEMBIC:
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


def refuse_foreign_database(url: str | None, *, writing: bool = False) -> None:
    """For the commands that only read the store: a database agentmesh never set up that already has tables is
    another application's (a wrong ``--db``), and is refused with what it holds, unchanged. Opened as a store,
    agentmesh's eleven tables were created in it beside the application's own, and the command said "no runs
    yet". (A database with no table at all is a new one: the store sets it up as ever.)

    ``writing``: for the commands that store runs (run, ask, import...), which set up a new database themselves:
    one with another application's tables is refused too (``agentmesh run --db app.db`` added agentmesh's tables
    to app.db), and the message says how to put agentmesh's tables there on purpose (``agentmesh db upgrade``)."""
    resolved = resolve_db_url(url)
    masked = mask_url(resolved)
    parsed = parse_db_url(resolved)
    if parsed.drivername.startswith("sqlite"):
        # read-only and with sqlite3 itself: the store's engine would switch the file to WAL on connecting
        try:
            with closing(sqlite3.connect(f"file:{parsed.database}?mode=ro", uri=True)) as plain:
                tables = sorted(r[0] for r in plain.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        except sqlite3.Error:  # the store says what is wrong with it when it opens it
            return
    else:
        engine = make_engine(resolved)
        try:
            with _translate_errors(masked, engine), engine.connect() as connection:
                tables = sorted(sa.inspect(connection).get_table_names())
        finally:
            engine.dispose()
    if VERSION_TABLE in tables:
        return
    if tables:
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise StoreError(
            f"{masked} is not an agentmesh database: it has no agentmesh schema, and tables of its own ({shown}); "
            "nothing was changed. "
            + (
                "Give another database (--db, $AGENTMESH_DB), or, to keep agentmesh's tables in this one beside its "
                f"own, run agentmesh db upgrade --db {masked} once."
                if writing
                else "Give the database your runs are in (--db, $AGENTMESH_DB)."
            ),
            url=masked,
        )


def upgrade_engine(engine: sa.Engine) -> str:
    """Migrate the database behind ``engine`` to this code's revision (creating it if new); returns it."""
    url = shown_url(engine.url)
    with _translate_errors(url, engine), _migration_lock(engine) as connection:
        revision = current_revision(connection)
        if revision is not None and not _is_older_or_current(revision):
            check_revision(revision, url)  # newer than this code: refuse to touch it
        if revision is None:  # as a store's first open does: it said "cannot open ...: table runs already exists"
            _refuse_foreign_tables(connection, url)
        with _ALEMBIC:
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


_ALEMBIC = threading.Lock()
"""Held around every Alembic command of this process. Alembic runs a migration through module globals (its
``context`` and ``op`` proxies, the environment it loads), so two threads migrating two databases at once -- new
stores opened from a thread pool, one per item -- crossed them: "table runs already exists" on one file, a
``KeyError: 'config'`` on another, now and then a crash of the interpreter. Migrations are rare and short; other
processes are kept apart by the database's own locks (SQLite's, a Postgres advisory lock)."""


def _new_alembic_lock_in_child() -> None:
    """After ``fork``: a parent's thread may have held the lock at the fork, and nobody in the child releases it."""
    global _ALEMBIC
    _ALEMBIC = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_alembic_lock_in_child)


def _is_older_or_current(revision: str) -> bool:
    return revision.isdigit() and int(revision) <= SCHEMA_VERSION


@contextmanager
def _migration_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    with writer(engine).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        yield connection


@contextmanager
def _translate_errors(url: str, engine: sa.Engine | None = None) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        hint = (_read_only_hint(engine) + _connection_hint(engine, exc)) if engine is not None else ""
        raise StoreError(
            f"cannot open the agentmesh database {url}: {mask_secrets(str(exc.orig))}".strip() + hint, url=url
        ) from exc


def _connection_hint(engine: sa.Engine, exc: DBAPIError) -> str:
    """What to do about a Postgres server that could not be reached, or a database it does not have. libpq's words
    ("Connection refused", 'database "runs" does not exist') said what but not what to do, and the second read as if
    agentmesh, which sets up its tables in a new database itself, could not use an empty one."""
    if engine.dialect.name != "postgresql" or not isinstance(exc, sa.exc.OperationalError):
        return ""
    said = str(exc.orig).lower()
    where = f"{engine.url.host or 'localhost'}:{engine.url.port or 5432}"
    database = engine.url.database
    if database and f'database "{database.lower()}" does not exist' in said:
        return (
            f" (the server at {where} has no database {database!r}: create it (createdb {database}, or CREATE "
            "DATABASE in psql) and agentmesh sets up its tables on first use, or give the right one with --db or "
            "$AGENTMESH_DB)"
        )
    if any(
        words in said
        for words in (
            "connection refused",
            "could not translate host name",
            "failed to resolve host",
            "timeout expired",
        )
    ):
        return (
            f" (no Postgres server answered at {where}: start it, or give the right host and port with --db or "
            "$AGENTMESH_DB; nothing was read or written)"
        )
    return ""


def _read_only_hint(engine: sa.Engine) -> str:
    """Why SQLite could not open a file that is there: it, or its folder, cannot be written. SQLite's own words,
    "unable to open database file", do not say so; and in WAL mode even reading needs the ``-wal`` and ``-shm``
    files beside the database, so a database on a read-only mount or in a folder of someone else's cannot be
    read in place either."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return ""
    named = Path(engine.url.database).absolute()
    if not named.exists() and named.parent.is_dir() and not os.access(named.parent, os.W_OK):
        # a new database: SQLite said only "unable to open database file", which read like a damaged one
        return (
            f" (its folder {named.parent} cannot be written, so the database cannot be created there; give a "
            "database in a folder you can write with --db or $AGENTMESH_DB)"
        )
    path = named.resolve()
    if not path.is_file():
        return ""
    if not os.access(path.parent, os.W_OK):
        return (
            f" (its folder {path.parent} cannot be written: SQLite keeps the database's -wal and -shm files beside "
            "it, so agentmesh must write there even to read it; copy the file to a folder you can write)"
        )
    if not os.access(path, os.W_OK):
        return f" ({path} is read-only: agentmesh writes to its database even to read it; make it writable or copy it)"
    return ""
