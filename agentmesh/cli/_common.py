"""Shared CLI plumbing: consoles, common options, opening the store."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import Coroutine, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from agentmesh.cli._signals import SignalInterrupt
from agentmesh.errors import ConfigError, StoreError
from agentmesh.store import Store
from agentmesh.store._redact import mask_secrets
from agentmesh.store.engine import DB_ENV, mask_url, parse_db_url, resolve_db_url
from agentmesh.store.migrate import refuse_foreign_database

console = Console()
err_console = Console(stderr=True)

#: Terminal columns from which tables of runs (``runs``, a batch's summary) show every column. Narrower, they
#: leave out what ``show`` and ``--json`` have (model, tokens, cost) rather than folding every column into a
#: few characters: ids, statuses and counts stay whole, on one line each.
WIDE = 110

#: Terminal columns below which those tables give each run a few lines of its own instead of a row: a row of the
#: fixed columns (id, status, counts) alone fills ~55 columns, and rich then shrank the answer column to nothing.
NARROW = 72


class Executor(StrEnum):
    """Where many runs (a job's items, a batch's lines) run: in this process, or as Ray tasks."""

    LOCAL = "local"
    RAY = "ray"


ExecutorOption = Annotated[
    Executor,
    typer.Option(
        "--executor",
        "-e",
        help="Where the items run: local (this process) or ray (Ray tasks; pip install 'agentmesh\\[ray]').",
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="The Ray cluster to run on (auto, ray://host:10001); without it Ray starts on this machine for the "
        "work. A cluster needs a Postgres --db that every node reaches.",
    ),
]
#: Ray CPUs an item takes when ``--ray-cpus`` is not given.
RAY_CPUS = 1.0
RayCpusOption = Annotated[
    float | None,
    typer.Option(
        "--ray-cpus",
        min=0.01,
        help=f"Ray CPUs each item takes (default {RAY_CPUS:g}; 0.25: four I/O-bound items per core).",
    ),
]

#: What a JSONL file of items may hold (:func:`agentmesh.datasets.read_items`, which ``run --input-file``,
#: ``optimize`` and ``calibrate`` read with): said alike by each.
ITEM_FORMATS = "the graph's inputs, or MMLU-, MATH-, GSM8K- or HumanEval-style records"

ModelOption = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model reference or alias (default: the graph's model, else 'local')."),
]

#: How many runs a command has in flight by default (``--concurrency``).
CONCURRENCY = 4


def concurrency_option(runs: str) -> Any:
    """The ``--concurrency``/``-c`` option, ``runs`` saying what runs at once ("Items run at once"): one flag, one
    lower bound and one default everywhere, with the noun of each command (its progress bar counts the same ones).

    The default is written into the help rather than shown by typer, because ``run`` declares it ``None`` (one run
    refuses ``-c``, which only makes sense with ``--input-file``) and must read the same as the others."""
    return typer.Option("--concurrency", "-c", min=1, show_default=False, help=f"{runs} (default {CONCURRENCY}).")


def limit_option(source: str) -> Any:
    """The ``--limit``/``-n`` option of a command reading its items from the file of option ``source``."""
    return typer.Option("--limit", "-n", min=1, help=f"Only the first N items of {source} (a quick look first).")


ConfigOption = Annotated[
    str | None,
    typer.Option("--config", help="Settings file (default: $AGENTMESH_CONFIG, else .agentmesh/config.yaml)."),
]
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: $AGENTMESH_DB, else sqlite:///.agentmesh/agentmesh.db)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


T = TypeVar("T")


@contextlib.contextmanager
def open_store(db: str | None, *, existing: bool = False) -> Iterator[Store]:
    """The store at ``db`` (``--db``, else ``$AGENTMESH_DB``, else the default file), closed on leaving.

    ``existing``: for commands that only look at what is stored (runs, show, diff, report, export, replay, resume,
    delete, vacuum). A SQLite file that is not there is then an error naming it and where its URL came from:
    opened, a typo in ``--db`` made a new empty database, said "no runs yet" and left the file behind.

    A database that fails a statement while the command uses it (a SQLite file that cannot be written: read-only,
    on a read-only mount, on a full disk; a Postgres user without the right to write) raised the driver's own
    exception, a traceback ending in "attempt to write a readonly database" that named no database: it is a
    :class:`StoreError` naming the database, what it said and what to do."""
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


def database_failed(url: str, exc: BaseException) -> StoreError:
    """A driver's failure as a :class:`StoreError` naming the database (password masked) and what it said; for a
    database that cannot be written, what to do about it."""
    said = " ".join(str(getattr(exc, "orig", None) or exc).split()) or type(exc).__name__
    hint = ""
    if "readonly" in said.lower() or "read-only" in said.lower():
        hint = (
            ": the database cannot be written here (a read-only file or folder, or mount); agentmesh writes to its "
            "database to run, resume or change runs. Make it writable, or give another with --db or $AGENTMESH_DB"
        )
    return StoreError(f"database {mask_url(url)} failed: {mask_secrets(said)}{hint}", url=mask_url(url))


def check_model(model: str | None, db: str | None) -> None:
    """Resolve a ``--model`` (or ``--judge-model``) before the command opens its store or makes its runs: an unknown
    provider or alias was found only when the job started, after the store was opened, and left an empty database
    file at a new --db. Building a client is cheap (nothing loads until the first call); a ``replay:`` reference
    reads its run from ``db``."""
    if model is not None:
        from agentmesh.runtime.recorded_model import model_for  # (the runtime is heavy; only the job commands need it)

        run_async(model_for(model, db).aclose())


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, where SIGTERM interrupts as Ctrl-C does, and a second Ctrl-C does not break the
    first one's clean-up.

    SIGTERM is what ``kill``, ``timeout``, batch schedulers (SLURM before its kill) and container stops send. By
    default it ends the process on the spot: a run stays "running" and the writes still queued for the store
    are lost. Here it cancels the work instead, so a run is stored as interrupted, with every finished call,
    and ``agentmesh resume`` continues it; the command then goes on as after Ctrl-C (a ``KeyboardInterrupt``, the
    :class:`~agentmesh.cli._signals.SignalInterrupt` naming the signal) and exits with 128 + the signal's number:
    130 after Ctrl-C, 143 after SIGTERM, as shells and process managers expect.

    Ctrl-C is handled here too, by the same handler. asyncio's own cancelled the work on the first press but
    raised ``KeyboardInterrupt`` on the second wherever the loop was, in the middle of the runs' clean-up (people
    press Ctrl-C twice): the batch's message was lost to a traceback, some runs stayed "running", and the process
    could hang waiting for tasks that clean-up had left half done, until a third press. Now a second press
    (or signal) says that the interrupted runs are being stored and that a third quits at once; the third exits
    with 128 + its signal's number without waiting (runs not yet stored as interrupted stay "running" under a dead
    process, which ``agentmesh resume`` continues without ``--force``).
    """
    signals = 0
    first = signal.SIGINT  # the signal that cancelled the work, once one has

    def pressed(signum: int) -> None:
        """Ctrl-C or SIGTERM after the first: say what is going on, then, at the third, quit at once."""
        nonlocal signals
        signals += 1
        if signals == 2:
            os.write(2, _STOPPING.encode())  # from a signal handler too: no console, no lock
        elif signals > 2:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(128 + signum)

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_signal(signum: signal.Signals) -> None:
            nonlocal first
            if signals == 0:
                first = signum
                if task is not None:
                    task.cancel()
            pressed(signum)

        unsupported = (NotImplementedError, RuntimeError, ValueError)  # Windows' loop; not the main thread
        handled = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(*unsupported):
                loop.add_signal_handler(signum, on_signal, signum)
                handled.append(signum)
        try:
            return await main
        finally:
            for signum in handled:
                with contextlib.suppress(*unsupported):
                    loop.remove_signal_handler(signum)
                    if signals:
                        # Interrupted, the command goes on to finish asyncio's tasks, say how far it got and close
                        # the store (its last writes): a Ctrl-C there raised KeyboardInterrupt inside that (a
                        # traceback from the connection pool, a write lost). Until the process ends, further
                        # presses are counted as above instead.
                        signal.signal(signum, lambda got, _frame: pressed(got))

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if not signals:
            raise
        raise SignalInterrupt(first) from None


_STOPPING = (  # on a new line: on a terminal the progress bar's line is still being drawn
    "\nstopping: storing the interrupted runs with every finished call (press Ctrl-C again to quit without waiting; "
    "runs not stored yet stay marked running, and agentmesh resume continues them)\n"
)


def writable(path: Path, option: str) -> Path:
    """``path`` if a file can be written there, for a job command's output file named by ``option`` (``--out``,
    ``--svg``); else a clear error, raised before the job's runs (it was a ``FileNotFoundError`` traceback after
    all of them). Its folder must exist: the file is written by :func:`write_output` with ``option``."""
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; expected a file name")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{option} {path}: not writable")
    return path


def write_output(path: Path, text: str, option: str | None = None) -> None:
    """Write a command's output file; a path that cannot be written is a :class:`ConfigError` naming it (it was a
    traceback, after the work was done).

    Without ``option`` (``graph show``, ``report``, ``export``: work that is cheap to do again), its folder is made
    as ``graph show --svg`` does. With ``option``, the flag that named a job's file (``optimize``'s and
    ``calibrate``'s ``--out``, ``--svg``): :func:`writable` checked the path before the job's runs, and a failure
    now (disk full, the folder removed meanwhile) says that the runs are kept, since they are: the same command
    with another ``option`` writes the file without a model call."""
    try:
        if option is None:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        if option is None:
            said = f"cannot write {path}: {exc.strerror or type(exc).__name__}"
        else:
            said = (
                f"{option} {path}: cannot write it ({exc.strerror or exc}); every run is stored: run the same command "
                f"again with another {option} to write it without repeating a call"
            )
        raise ConfigError(said, file=str(path)) from exc


def fmt_cost(cost: float | None) -> str:
    return "n/a" if cost is None else f"${cost:.6f}"


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
