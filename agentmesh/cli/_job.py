"""The options every command running many runs shares, and what it turns them into.

``optimize`` (DyLAN and SE-Jury), ``calibrate``, ``eval alu`` and ``run --input-file`` each run a set of items as
stored, resumable runs, several at once, here or on Ray, under a progress bar, with ``--json`` for scripts. Their
options are declared once (the aliases of :mod:`agentmesh.cli._common`) and collected into a :class:`JobOptions`
from the parameters of those names (:meth:`JobOptions.given`), checked once (the Ray options need ``--executor
ray``), which gives the job functions (:func:`agentmesh.optimize.items.run_items` and those built on it) their
keyword arguments and opens their store and progress bar alike: so a flag means one thing, is checked one way and
reads the same in every command's ``--help``. (``run --input-file`` takes the options too, but its runs are a
batch, not a job: they are not reused when run again, and :func:`agentmesh.cli.batch.run_many` shows their progress
and summary.) The jobs that write a file name it alike when ``--out`` is not given (:func:`out_file`), and every job
says its failed items in the same words (:func:`print_failures`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar

import typer
from rich.markup import escape

from agentmesh.cli._common import CONCURRENCY, RAY_CPUS, Executor, err_console, writable
from agentmesh.cli._progress import WorkProgress, item_note, run_job
from agentmesh.errors import ConfigError

# The job runner (the runtime, LangGraph) and the store (SQLAlchemy) are imported when a job runs: the job
# commands import this module for their options, their ``--help`` too.
if TYPE_CHECKING:
    from agentmesh.optimize.items import Executor as ExecutorName
    from agentmesh.optimize.items import ItemRun
    from agentmesh.store import Store

T = TypeVar("T")


class JobKwargs(TypedDict):
    """The keyword arguments :func:`agentmesh.optimize.items.run_items` (and ``aoptimize``, both ``acalibrate``)
    take for how a job runs."""

    model: str | None
    concurrency: int
    executor: ExecutorName
    ray_address: str | None
    ray_cpus_per_item: float


@dataclass(frozen=True)
class JobOptions:
    """How a command's runs run and report: ``--model``, ``--concurrency``, ``--executor``, ``--ray-address``,
    ``--ray-cpus``, ``--db`` and ``--json``, as the user gave them."""

    model: str | None
    concurrency: int
    executor: Executor
    ray_address: str | None
    ray_cpus: float | None  # None: not given (RAY_CPUS)
    db: str | None
    as_json: bool

    @classmethod
    def given(cls, ctx: typer.Context) -> JobOptions:
        """The options as the command of ``ctx`` parsed them: each field is its parameter of the same name (the
        aliases of :mod:`agentmesh.cli._common`), so that an option added here is read in one place rather than
        passed on by hand in every job command. ``--concurrency`` not given is :data:`CONCURRENCY` (``run``
        declares it without a default: one run refuses it)."""
        params = ctx.params
        missing = [f.name for f in fields(cls) if f.name not in params]
        if missing:  # a job command that does not declare every option: a programming error, said plainly
            raise TypeError(
                f"command {ctx.command_path!r} has no parameter {', '.join(missing)}: a job command declares every "
                "field of JobOptions as a parameter of that name"
            )
        found = {f.name: params[f.name] for f in fields(cls)}
        if found["concurrency"] is None:
            found["concurrency"] = CONCURRENCY
        return cls(**found)

    def __post_init__(self) -> None:
        # the items run on Ray only with --executor ray: an address alone ran every item here, silently, and a
        # SQLite --db a cluster cannot reach was not refused (it is, with --executor ray)
        given = [
            f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"
            for flag, value in (("--ray-address", self.ray_address), ("--ray-cpus", self.ray_cpus))
            if value is not None
        ]
        if given and self.executor is not Executor.RAY:
            raise ConfigError(
                f"{', '.join(given)}: the items run on Ray only with --executor ray; add it (without it they would "
                "all run here, in this process)"
            )

    @property
    def cpus_per_item(self) -> float:
        """Ray CPUs each item takes: ``--ray-cpus``, else :data:`RAY_CPUS`."""
        return RAY_CPUS if self.ray_cpus is None else self.ray_cpus

    @property
    def executor_name(self) -> ExecutorName:
        return "ray" if self.executor is Executor.RAY else "local"

    def kwargs(self, *, model: str | None = None) -> JobKwargs:
        """The job function's keyword arguments; ``model``, when given, replaces ``--model`` (``eval alu``'s judge
        model)."""
        return JobKwargs(
            model=model or self.model,
            concurrency=self.concurrency,
            executor=self.executor_name,
            ray_address=self.ray_address,
            ray_cpus_per_item=self.cpus_per_item,
        )

    @contextlib.contextmanager
    def session(self, title: str, total: int, *, unit: str = "items") -> Iterator[JobSession]:
        """The opened ``--db`` and a progress bar of ``total`` ``unit`` on stderr (none with ``--json``: stdout is
        the JSON, and stderr stays free for errors), closed when the job is over.

        On a terminal the bar stays once the job is over (its count, last note and time: what the job did), for
        every job command alike: ``optimize`` asked for it and ``calibrate`` and ``eval alu`` took the default of
        :class:`WorkProgress` (a batch's, which erases it), so one job's bar stayed and the other's vanished."""
        from agentmesh.cli._store import open_store

        with (
            open_store(self.db) as store,
            WorkProgress(
                title,
                total,
                console=err_console,
                log=err_console,
                enabled=not self.as_json,
                unit=unit,
                transient=False,
                # counted by JobSession.call_made; not on Ray, whose workers' calls are not told here: the heartbeat
                # said "0 model calls made so far" of a job whose items had made hundreds
                calls=None if self.executor is Executor.RAY else 0,
            ) as bar,
        ):
            yield JobSession(store, bar)


@dataclass
class JobSession:
    """A job's store and progress bar, while it runs."""

    store: Store
    bar: WorkProgress
    calls: int = 0
    """Model calls the job's runs made here so far (:meth:`call_made`)."""

    def call_made(self) -> None:
        """A job's run made a model call (the job functions' ``on_call``): the bar's note counts them. The bar moved
        only when an item ended, so a job on the embedded model (minutes an item) sat at 0/2 with nothing to say it
        was working, and off a terminal (a log, nohup, CI) printed no line at all until its first item ended; a
        changing note is logged there at least once a minute."""
        self.calls += 1
        self.bar.update(note=f"{self.calls} model call{'' if self.calls == 1 else 's'} made so far", calls=self.calls)

    def item_done(self, item: ItemRun, done: int, total: int) -> None:
        """A job function's ``progress``: the bar at ``done`` items, its note naming the item that just ended (and
        its run, or why it failed)."""
        self.bar.update(completed=done, note=item_note(item, f"line {item.line}"), calls=self.calls)

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run the job's coroutine; interrupted, say how many of the bar's units finished and how to go on
        (:func:`agentmesh.cli._progress.run_job`)."""
        return run_job(work, self.bar, self.bar.unit)


def out_file(out: Path | None, graph: str, name: str, suffix: str) -> Path:
    """A job's ``--out``, checked by :func:`writable` before any run; not given, a file here named after the graph
    as the user gave it, with ``suffix`` (``_top2.yaml``, ``_team.yaml``, ``_calibrated.yaml``): a graph file's own
    stem, else the built-in's ``name``. A copy of a shipped graph keeps the shipped one's name, and must not take
    (and overwrite) the file its job writes."""
    stem = Path(graph).stem if Path(graph).is_file() else name
    return writable(out or Path(f"{stem}{suffix}"), "--out")


def distinct_files(outputs: Mapping[str, Path], inputs: Mapping[str, Path | str]) -> None:
    """Refuse, before any run, a job whose output files (``--out``, ``--svg``) are one file, or one of its input
    files (``--data``, the graph's file): ``--out team.svg`` wrote the graph, then the picture over it, and said "run
    it: agentmesh run team.svg"; ``--out items.jsonl`` replaced the user's data with a graph. ``inputs`` that are
    not files (a built-in graph's name) are left out."""
    named = [(flag, path, True) for flag, path in outputs.items()]
    named += [(what, Path(path), False) for what, path in inputs.items() if Path(path).is_file()]
    for index, (flag, path, written) in enumerate(named):
        for other, other_path, _ in named[index + 1 :]:
            if written and _same_file(path, other_path):
                raise ConfigError(
                    f"{flag} {path} is the same file as {other} {other_path}: one would be written over the other; "
                    f"give {flag} another file"
                )


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


class FailedItem(Protocol):
    """An item of a job's result, which may have failed: DyLAN's (``optimize``), SE-Jury's or MAgICoRe's
    calibration (``optimize``, ``calibrate``)."""

    @property
    def line(self) -> int: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...


def print_failures(items: Iterable[FailedItem]) -> None:
    """A line on stderr for each failed item of a job: its data line, its run (to show or resume) and its error, in
    the same words after every job. The items the job did not start, as its database had failed for good, are said
    in one line (:func:`print_not_run`), not one each: a thousand lines saying the same."""
    from agentmesh.runtime.stop_starting import NOT_STARTED

    stored = False
    not_run: list[FailedItem] = []
    for item in items:
        if not item.run_id and str(item.error or "").startswith(NOT_STARTED):
            not_run.append(item)
            continue
        # an item refused before its run was stored (its inputs, a system's input check) has no run to name
        where = f"run {item.run_id}" if item.run_id else "no run stored"
        stored = stored or bool(item.run_id)
        err_console.print(f"[red]line {item.line} failed[/] ({where}): {escape(str(item.error))}")
    if not_run:
        print_not_run(str(not_run[0].error), [item.line for item in not_run])
    elif stored:
        print_retry_hint()


def print_not_run(reason: str, lines: list[int], *, of: str = "") -> None:
    """After a job that stopped starting items once its database failed for good
    (:func:`agentmesh.optimize.items.run_items`): why (``reason``, an item's error), which ``lines`` (``of``: whose,
    when a command runs several jobs) were not run, and how to go on once the database is fixed."""
    from agentmesh.cli.batch_store import line_list
    from agentmesh.runtime.stop_starting import NOT_STARTED

    err_console.print(
        f"[red]stopped[/]: {escape(reason.removeprefix(NOT_STARTED))}. {len(lines)} item"
        f"{'' if len(lines) == 1 else 's'} not run{escape(of)}: {line_list(lines)}; once the database can be written "
        f"again, {NOT_RUN_HINT}",
        highlight=False,
    )


def print_retry_hint() -> None:
    """After a job's failed items whose runs are stored: how to go on (an interrupted job says it; a failed one,
    a model server that went down say, left the user to find out)."""
    err_console.print(RETRY_HINT)


RETRY_HINT = (
    "once the cause is fixed, run the same command again: finished items are kept and the failed runs resume "
    "without repeating a finished call"
)

NOT_RUN_HINT = (
    "run the same command again: finished items are kept, the failed runs resume without repeating a finished call, "
    "and the items not run are started"
)
"""How to go on after a job that stopped starting items (:func:`print_not_run`)."""
