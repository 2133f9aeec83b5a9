"""Shared CLI plumbing: consoles, common options, running a command's asyncio work, output files.

Light on purpose: every command's module imports this, so a command's ``--help`` imports it too; what needs the
store (SQLAlchemy) is in :mod:`agentmesh.cli._store`, imported by the commands that open a database.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import signal
import sys
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from agentmesh.cli._signals import SignalInterrupt
from agentmesh.errors import ConfigError

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


def number_option(*flags: str, whole: bool, at_least: float, at_most: float | None = None, **options: Any) -> Any:
    """``typer.Option(*flags, **options)`` for a number from ``at_least`` (to ``at_most``): a whole one if
    ``whole``. Anything else is refused as a budget's ``--max-calls`` is, naming the option, what it takes and what
    was given -- ``--concurrency must be a positive whole number (got 0)`` -- as a :class:`ConfigError` (exit 2,
    before any work). typer's range check said it in its own words ("Invalid value for '--concurrency' / '-c':
    Input should be greater than or equal to 1"), unlike the budgets beside it.

    The help shows the range as typer did (``<int range> [x>=1]``). Like a budget, a whole number may be written
    ``2.0``; infinity and NaN are refused."""
    flag = flags[0]
    noun = "whole number" if whole else "number"
    if at_most is not None:
        expected, shown_range = f"a {noun} from {at_least:g} to {at_most:g}", f"[{at_least}<=x<={at_most}]"
    else:
        expected = "a positive whole number" if whole and at_least == 1 else f"a {noun} of at least {at_least:g}"
        shown_range = f"[x>={at_least}]"

    def parse(value: Any) -> int | float:
        number = _number(value)
        if (
            number is not None
            and at_least <= number
            and (at_most is None or number <= at_most)
            and (not whole or float(number).is_integer())
        ):
            return int(number) if whole else float(number)
        shown = repr(value) if number is None else f"{number:g}" if isinstance(number, float) else number
        raise ConfigError(f"{flag} must be {expected} (got {shown})", option=flag)

    metavar = f"<{'int' if whole else 'float'} range> {shown_range}"
    return typer.Option(*flags, parser=parse, metavar=metavar, **options)


def _number(value: Any) -> int | float | None:
    """``value`` (the command line's text, or a default) as a finite number; ``None`` if it is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number: int | float = value
    else:
        text = str(value).strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
    return number if math.isfinite(number) else None


RayCpusOption = Annotated[
    float | None,
    number_option(
        "--ray-cpus",
        whole=False,
        at_least=0.01,
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
    return number_option(
        "--concurrency", "-c", whole=True, at_least=1, show_default=False, help=f"{runs} (default {CONCURRENCY})."
    )


def limit_option(source: str) -> Any:
    """The ``--limit``/``-n`` option of a command reading its items from the file of option ``source``."""
    return number_option(
        "--limit", "-n", whole=True, at_least=1, help=f"Only the first N items of {source} (a quick look first)."
    )


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


def check_model(model: str | None, db: str | None) -> None:
    """Resolve a ``--model`` (or ``--judge-model``) before the command opens its store or makes its runs: an unknown
    provider or alias was found only when the job started, after the store was opened, and left an empty database
    file at a new --db. Building a client is cheap (nothing loads until the first call); a ``replay:`` reference
    reads its run from ``db``."""
    if model is not None:
        from agentmesh.runtime.recorded_model import model_for, reads_a_run  # (heavy; only the job commands need it)

        if reads_a_run(model):
            # its run must be in a database that is there: opened as the store of the new run, a --db without one
            # was made, empty, and left behind by the "no run" error
            from agentmesh.cli._store import open_store

            with open_store(db, existing=True) as store:
                run_async(model_for(model, store).aclose())
            return
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
        _write_whole(path, text)
    except OSError as exc:
        if option is None:
            said = f"cannot write {path}: {exc.strerror or type(exc).__name__}"
        else:
            said = (
                f"{option} {path}: cannot write it ({exc.strerror or exc}); every run is stored: run the same command "
                f"again with another {option} to write it without repeating a call"
            )
        raise ConfigError(said, file=str(path)) from exc


def _write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a write that fails (a full disk) left a truncated file, an
    export that ``import`` then refused as "not valid JSON", and had already emptied the file it replaced. A regular
    file (or a new one) is written beside it and renamed over it; anything else (``/dev/stdout``, a symlink) as is."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        path.write_text(text, encoding="utf-8")
        return
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        part.write_text(text, encoding="utf-8")
        if path.exists():
            shutil.copymode(path, part)
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def fmt_cost(cost: float | None) -> str:
    return "n/a" if cost is None else f"${cost:.6f}"


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
