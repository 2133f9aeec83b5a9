"""Which database, and a SQLAlchemy engine set up so several threads and processes can share it.

One URL names the whole store. SQLite is the zero-setup default; the settings applied to every SQLite
connection are what make one file safe to share between the worker threads of a run and between processes:

* ``journal_mode=WAL`` -- readers never block the writer and the writer never blocks readers;
* ``busy_timeout`` -- a writer that finds the file locked waits for its turn instead of failing at once;
* ``BEGIN IMMEDIATE`` for write transactions (see :mod:`agentmesh.store.writes`) -- a transaction that reads and
  then writes (assigning an event's sequence number, upserting a checkpoint) takes the write lock up front. With
  SQLite's default deferred BEGIN it would take it only at its first write and fail with "database is locked"
  when another connection committed in between, which ``busy_timeout`` cannot wait out;
* ``foreign_keys=ON`` (SQLite leaves them off by default) and ``synchronous=NORMAL`` (durable in WAL mode,
  without an fsync per commit).

Postgres URLs (``postgresql://``, ``postgres://``) are pointed at the psycopg 3 driver.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from agentmesh.errors import ConfigError
from agentmesh.store._redact import is_secret_key

DB_ENV = "AGENTMESH_DB"
SQLITE_BUSY_TIMEOUT_MS = 30_000
BEGIN_OPTION = "agentmesh_sqlite_begin"
_SUPPORTED = "sqlite:///path/to/file.db or postgresql://user@host:port/database"
# "user:password@" in a string too malformed for SQLAlchemy to parse.
_USERINFO_PASSWORD = re.compile(r"([^\s:/@]+:)[^\s@]*@")


def default_db_url() -> str:
    """``sqlite:///<cwd>/.agentmesh/agentmesh.db``, creating the ``.agentmesh`` folder where it can.

    A folder that cannot be made here (a read-only working directory, a file named ``.agentmesh``) is left to the
    engine, which says so naming the database: resolving the URL raised ``OSError`` with a traceback, before even
    the commands that only read a store could say there is no database there."""
    folder = Path.cwd() / ".agentmesh"
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'agentmesh.db'}"


def resolve_db_url(url: str | None) -> str:
    """The database URL to use: ``url`` if given, else ``$AGENTMESH_DB``, else the default SQLite file."""
    return url or os.environ.get(DB_ENV) or default_db_url()


def mask_url(url: str) -> str:
    """``url`` with its password replaced, for messages and ``repr``: the URL may come from a user's env."""
    try:
        return shown_url(make_url(url))
    except (ArgumentError, ValueError):
        return _USERINFO_PASSWORD.sub(r"\1***@", url)


def shown_url(url: URL) -> str:
    """``url`` as messages show it: its password, and query parameters holding one (libpq's ``password`` and
    ``sslpassword``), replaced by ``***``; a Postgres URL without the ``+psycopg`` that :func:`parse_db_url` adds
    (the same database read ``postgresql+psycopg://`` in one error and ``postgresql://`` in the next)."""
    hidden = {k: "***" for k in url.query if "pass" in k.lower() or is_secret_key(k)}
    if url.drivername == "postgresql+psycopg":  # the driver parse_db_url chose: shown as users write the URL
        url = url.set(drivername="postgresql")
    return (url.update_query_dict(hidden) if hidden else url).render_as_string(hide_password=True)


def parse_db_url(url: str) -> URL:
    """Parse and normalise a store URL; :class:`ConfigError` (password masked) for anything unusable."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: e.g. a port that is not a number
        raise ConfigError(f"invalid database URL {mask_url(url)!r}: expected {_SUPPORTED}", url=mask_url(url)) from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver in ("", "psycopg"):
            # libpq's ?password= is the URL's password: hidden in messages, refused where none may go (Ray tasks)
            password = parsed.query.get("password")
            if isinstance(password, str) and parsed.password is None:
                parsed = parsed.set(password=password).difference_update_query(["password"])
            return parsed.set(drivername="postgresql+psycopg")
        raise ConfigError(
            f"database URL {mask_url(url)!r} asks for the {driver!r} driver; agentmesh uses psycopg 3 "
            "(write postgresql://... and install agentmesh[postgres])",
            url=mask_url(url),
        )
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConfigError(
                f"database URL {mask_url(url)!r} is not a SQLite file: the store is shared by several "
                "connections and processes, so it needs a path (sqlite:///path/to/file.db)",
                url=mask_url(url),
            )
        return parsed
    raise ConfigError(
        f"unsupported database {backend!r} in {mask_url(url)!r}: expected {_SUPPORTED}", url=mask_url(url)
    )


def make_engine(url: str) -> sa.Engine:
    """A SQLAlchemy engine for ``url`` with the per-connection settings described in the module docstring."""
    parsed = parse_db_url(url)
    if parsed.drivername.startswith("sqlite"):
        return _sqlite_engine(parsed)
    try:
        return sa.create_engine(parsed, json_serializer=_json_dumps, pool_pre_ping=True)
    except ImportError as exc:
        raise ConfigError(
            f"database URL {mask_url(url)!r} needs the Postgres driver psycopg 3: "
            f"pip install 'agentmesh[postgres]' ({exc})",
            url=mask_url(url),
        ) from exc


def _sqlite_engine(parsed: URL) -> sa.Engine:
    database = Path(parsed.database or "")
    _make_folder(database)
    engine = sa.create_engine(parsed, json_serializer=_json_dumps)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module, which would otherwise emit its own deferred
        # BEGIN lazily; SQLAlchemy's "begin" event below emits the right BEGIN instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _make_folder(database: Path) -> None:
    """Create the folder of a SQLite ``database``, or say why it cannot be: a folder on a read-only mount, or a
    path through a file, was an ``OSError`` traceback from ``mkdir`` naming only the folder, in every command."""
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if isinstance(exc, FileExistsError | NotADirectoryError):
            why = f"a file is in the way: {exc.filename} or a folder above it is not a folder"
        else:
            why = f"{exc.strerror or type(exc).__name__}: {exc.filename}"
        raise ConfigError(
            f"cannot create the folder {database.parent.resolve()} of the SQLite database {database.resolve()} "
            f"({why}); give a database in a folder that can be written with --db or ${DB_ENV} (the default is "
            ".agentmesh/agentmesh.db in the working directory)",
            url=f"sqlite:///{database}",
        ) from exc


def _enable_wal(cursor: Any) -> None:
    """Put the database in WAL mode, waiting out other connections as ``busy_timeout`` would.

    The mode is stored in the file, so once one connection has set it the others only need to see it. Setting it
    takes an exclusive lock for which SQLite does not call the busy handler: when several processes open a new
    database at once, the losers get "database is locked" straight away. They retry, for as long as
    ``busy_timeout`` would have waited, and stop as soon as another connection has done it.
    """

    def attempt() -> None:
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            cursor.execute("PRAGMA journal_mode = WAL")

    for try_ in Retrying(
        retry=retry_if_exception(_is_locked),
        stop=stop_after_delay(SQLITE_BUSY_TIMEOUT_MS / 1000),
        wait=wait_random_exponential(multiplier=0.005, max=0.25),
        reraise=True,
    ):
        with try_:
            attempt()


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def _json_dumps(value: Any) -> str:
    """The JSON text of a column value: orjson, twenty times faster than ``json`` on a prompt-sized document (the
    store serialises every model call's request and response), with ``json`` as the fallback for what orjson
    refuses (integers beyond 64 bits). Values reaching the engine were made JSON-safe by the store (finite
    numbers, string keys); both give the same JSON value, and reading back stays with ``json`` (exact integers).
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
