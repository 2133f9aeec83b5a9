"""Which failures of a database every later write would meet too (:func:`lasting_failure`).

A batch stops starting new lines once its database fails that way (:func:`agentmesh.cli.batch.run_all`): with a
full disk, each of a thousand lines after the first failure went on to start a run, fail to store it and be listed
as failed, when none of them could work until the disk was freed. A failure that may pass (SQLite's "database is
locked" after its busy timeout, a Postgres deadlock or serialization failure, a dropped connection that the pool
makes again) is not lasting: the other lines go on.

Told by the driver's words, as both SQLite and Postgres report these conditions with a generic class
(``sqlite3.OperationalError``, ``psycopg.errors.DiskFull`` aside) and SQLAlchemy wraps them again; the words are
those of SQLite and of Postgres/the OS, the same whatever the locale of the client.
"""

from __future__ import annotations

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
