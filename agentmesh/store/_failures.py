"""A database's failures: a driver's error as a :class:`~agentmesh.errors.DatabaseFailedError` naming the database
(:func:`database_failed`), and which failures every later write would meet too (:func:`lasting_failure`, and
:func:`lasting_database_failure` for an error and what caused it).

A batch stops starting new lines once its database fails that way, and so does a job (``optimize``, ``calibrate``,
``eval``) its items, here or on Ray (:class:`agentmesh.runtime.stop_starting.StopStarting`): with a
full disk, each of a thousand lines after the first failure went on to start a run, fail to store it and be listed
as failed, when none of them could work until the disk was freed. A failure that may pass (SQLite's "database is
locked" after its busy timeout, a Postgres deadlock or serialization failure, a dropped connection that the pool
makes again) is not lasting: the other lines go on.

Told by the driver's words, as both SQLite and Postgres report these conditions with a generic class
(``sqlite3.OperationalError``, ``psycopg.errors.DiskFull`` aside) and SQLAlchemy wraps them again; the words are
those of SQLite and of Postgres/the OS, the same whatever the locale of the client.
"""

from __future__ import annotations

import contextlib
import sqlite3

from sqlalchemy.exc import DBAPIError

from agentmesh.errors import DatabaseFailedError
from agentmesh.store._redact import mask_secrets
from agentmesh.store.engine import mask_url

#: (words in the driver's message, lowercased; why every later write fails too), first match wins.
_LASTING: tuple[tuple[tuple[str, ...], str], ...] = (
    (("database or disk is full", "no space left on device", "disk full"), "the disk holding it is full"),
    (
        ("readonly database", "read-only", "read only file system", "cannot execute insert in a read-only"),
        "it cannot be written (a read-only file, folder or mount)",
    ),
    (
        (
            "unable to open database file",
            "no such table",
            "disk i/o error",
            "file is not a database",
            "database disk image is malformed",
            "does not exist",
        ),
        "it is gone, moved or damaged (its file or tables cannot be found or read)",
    ),
)


def lasting_failure(said: str) -> str | None:
    """Why every later write to the database would fail as this one did (``said``: the driver's message), or
    ``None`` when the failure may pass (a lock, a deadlock, a dropped connection) or is not recognised."""
    lowered = said.lower()
    for words, why in _LASTING:
        if any(w in lowered for w in words):
            return why
    return None


def _driver_errors() -> tuple[type[BaseException], ...]:
    """What the database drivers raise: SQLAlchemy wraps them, but the store's writer thread runs statements on
    the driver's own connection, so its failures arrive as sqlite3's or psycopg's exceptions."""
    found: list[type[BaseException]] = [sqlite3.Error, DBAPIError]
    with contextlib.suppress(ImportError):  # the postgres extra
        import psycopg

        found.append(psycopg.Error)
    return tuple(found)


#: What the database drivers raise (SQLAlchemy's, sqlite3's, psycopg's when installed).
DRIVER_ERRORS = _driver_errors()


def database_failed(url: str, exc: BaseException) -> DatabaseFailedError:
    """A driver's failure as a :class:`DatabaseFailedError` naming the database (password masked) and what it said;
    for a database that cannot be written, what to do about it. Its ``context['lasting']`` says why every later
    write would fail too, when it would (:func:`lasting_failure`)."""
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
            "$AGENTMESH_DB), then agentmesh resume (--batch ID for a batch) continues the runs it stopped (a job's: "
            "the same command again)"
        )
    return DatabaseFailedError(
        f"database {mask_url(url)} failed: {mask_secrets(said)}{hint}",
        url=mask_url(url),
        lasting=lasting_failure(said),
    )


def lasting_database_failure(exc: BaseException, db_url: str | None) -> DatabaseFailedError | None:
    """The failure of the database, in ``exc`` or what caused it, that every later run would meet too (a full disk,
    a read-only or vanished database: :func:`lasting_failure`), or ``None`` -- a run failing for its own reasons
    (its model, its inputs) or a failure of the database that may pass (a lock). A driver's own error is read as
    the failure of ``db_url`` (none given: it is not read)."""
    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        if isinstance(found, DatabaseFailedError):
            if found.context.get("lasting"):
                return found
        elif db_url is not None and isinstance(found, DRIVER_ERRORS):
            failed = database_failed(db_url, found)
            if failed.context.get("lasting"):
                return failed
        found = found.__cause__ or found.__context__
    return None
