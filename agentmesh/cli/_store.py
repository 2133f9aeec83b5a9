"""Opening the store for a command: :func:`open_store`, and a database driver's failure as a clear error.

Apart from :mod:`agentmesh.cli._common` (the options, consoles and helpers every command shares, which its
``--help`` imports) because it imports the store and SQLAlchemy: only the commands that open a database import
this, when they run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from agentmesh.errors import ConfigError
from agentmesh.store import Store
from agentmesh.store._failures import DRIVER_ERRORS, database_failed
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
        except DRIVER_ERRORS as exc:
            raise database_failed(store.url, exc) from exc


#: (database_failed is :mod:`agentmesh.store._failures`'s, named from here too)
__all__ = ["database_failed", "open_store"]
