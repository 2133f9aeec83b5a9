"""Opening the store for a command: :func:`open_store`, and a database driver's failure as a clear error.

Apart from :mod:`agentmesh.cli._common` (the options, consoles and helpers every command shares, which its
``--help`` imports) because it imports the store and SQLAlchemy: only the commands that open a database import
this, when they run.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from agentmesh.errors import ConfigError, DatabaseFailedError
from agentmesh.store import Store
from agentmesh.store._failures import lasting_failure
from agentmesh.store._redact import mask_secrets
from agentmesh.store.engine import DB_ENV, mask_url, parse_db_url, resolve_db_url
from agentmesh.store.migrate import refuse_foreign_database


@contextlib.contextmanager
def open_store(db: str | None, *, existing: bool = False) -> Iterator[Store]:
    """The store at ``db`` (``--db``, else ``$AGENTMESH_DB``, else the default file), closed on leaving.

    ``existing``: for commands that only look at what is stored (runs, show, diff, report, export, replay, resume,
    delete, vacuum). A SQLite file that is not there is then an error naming it and where its URL came from:
    opened, a typo in ``--db`` made a new empty database, said "no runs yet" and left the file behind.

    A database that fails a statement while the command uses it (a SQLite file that cannot be written: read-only,
    on a read-only mount, on a full disk; a Postgres user without the right to write) raised the driver's own
    exception, a traceback ending in "attempt to write a readonly database" that named no database: it is a
    :class:`DatabaseFailedError` naming the database, what it said and what to do."""
    if existing:
        url = resolve_db_url(db)
        parsed = parse_db_url(url)
        path = Path(parsed.database or "")
        if parsed.drivername.startswith("sqlite") and not path.is_file():
            source = "--db" if db else (f"${DB_ENV}" if os.environ.get(DB_ENV) else "the default database")
            raise ConfigError(
                f"no agentmesh database at {path.resolve()} ({source}): nothing was stored there; give the "
                f"database your runs are in with --db or ${DB_ENV}",
                url=mask_url(url),
            )
        refuse_foreign_database(url)
    else:
        refuse_foreign_database(db, writing=True)  # (a new database, with no table at all, is set up as ever)
    with Store(db) as store:
        try:
            yield store
        except _DRIVER_ERRORS as exc:
            raise database_failed(store.url, exc) from exc


def _driver_errors() -> tuple[type[BaseException], ...]:
    """What the database drivers raise: SQLAlchemy wraps them, but the store's writer thread runs statements on
    the driver's own connection, so its failures arrive as sqlite3's or psycopg's exceptions."""
    found: list[type[BaseException]] = [sqlite3.Error, DBAPIError]
    with contextlib.suppress(ImportError):  # the postgres extra
        import psycopg

        found.append(psycopg.Error)
    return tuple(found)


_DRIVER_ERRORS = _driver_errors()


def database_failed(url: str, exc: BaseException) -> DatabaseFailedError:
    """A driver's failure as a :class:`DatabaseFailedError` naming the database (password masked) and what it said;
    for a database that cannot be written, what to do about it. Its ``context['lasting']`` says why every later
    write would fail too, when it would (:func:`~agentmesh.store._failures.lasting_failure`)."""
    said = " ".join(str(getattr(exc, "orig", None) or exc).split()) or type(exc).__name__
    hint = ""
    if "readonly" in said.lower() or "read-only" in said.lower():
        hint = (
            ": the database cannot be written here (a read-only file or folder, or mount); agentmesh writes to its "
            "database to run, resume or change runs. Make it writable, or give another with --db or $AGENTMESH_DB"
        )
    elif "disk is full" in said.lower() or "no space left" in said.lower():  # SQLite's words, then Postgres's
        hint = (
            ": the disk holding the database is full; free space there (or give another database with --db or "
            "$AGENTMESH_DB), then agentmesh resume (--batch ID for a batch) continues the runs it stopped"
        )
    return DatabaseFailedError(
        f"database {mask_url(url)} failed: {mask_secrets(said)}{hint}",
        url=mask_url(url),
        lasting=lasting_failure(said),
    )
