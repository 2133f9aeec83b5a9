"""Progress of long CLI work (a batch of runs, an optimisation job) on a terminal and off it.

On a terminal it is a rich progress bar. Off one -- output sent to a log file, a CI job, ``nohup``, a batch
scheduler -- rich draws nothing until the work is over, so a batch of a thousand items on a real model would be
silent for hours; there, :class:`WorkProgress` prints a plain line instead at every tenth of the work done, and
at most once a :data:`LOG_EVERY_S` while anything else moves (calls made during long items), on stderr so that it
never mixes with the results on stdout.
"""

from __future__ import annotations

import math
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from agentmesh._text import counted
from agentmesh.cli._common import err_console, run_async

if TYPE_CHECKING:  # (the job runner imports the runtime: not for the job commands' --help)
    from agentmesh.optimize.items import ItemRun

T = TypeVar("T")

#: Off a terminal, the longest silence (seconds) while the work moves without crossing a tenth.
LOG_EVERY_S = 60.0


class WorkProgress:
    """``total`` units of work titled ``title``, with a free-text ``note`` (failures, calls) beside the count.

    ``console`` draws the bar on a terminal; ``log`` receives the plain lines elsewhere. Disabled, it shows
    nothing (``--json``, ``--quiet``). Use as a context manager; :meth:`update` from the event loop's thread.
    """

    def __init__(
        self,
        title: str,
        total: int,
        *,
        console: Console,
        log: Console,
        enabled: bool = True,
        unit: str = "items",
        transient: bool = True,
    ) -> None:
        self.title = title
        self.total = total
        self.unit = unit
        self.completed = 0
        self.note = ""
        self._live = enabled and console.is_terminal
        self._log = log if enabled and not console.is_terminal else None
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            transient=transient,
            disable=not self._live,
        )
        self._task: TaskID | None = None
        self._started = time.monotonic()
        self._logged_at = self._started
        self._logged: tuple[int, str] | None = None
        self._next_tenth = 1

    def __enter__(self) -> WorkProgress:
        self._bar.__enter__()
        self._task = self._bar.add_task(escape(self.title), total=self.total, note=self.note)  # a name, not markup
        self._started = self._logged_at = time.monotonic()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._bar.__exit__(kind, exc, tb)

    def update(self, *, completed: int | None = None, advance: int = 0, note: str | None = None) -> None:
        """Set (or advance) the units done and the note; off a terminal, maybe log a line."""
        self.completed = (self.completed if completed is None else completed) + advance
        if note is not None:
            self.note = note
        if self._task is not None and self._live:
            self._bar.update(self._task, completed=self.completed, note=self.note)
        if self._log is not None:
            self._maybe_log()

    def _maybe_log(self) -> None:
        now = time.monotonic()
        state = (self.completed, self.note)
        crossed = self.total > 0 and self.completed >= math.ceil(self._next_tenth * self.total / 10)
        due = now - self._logged_at >= LOG_EVERY_S and state != self._logged
        if not (crossed or due):
            return
        while (
            self.total > 0
            and self._next_tenth <= 10
            and self.completed >= math.ceil(self._next_tenth * self.total / 10)
        ):
            self._next_tenth += 1
        self._logged, self._logged_at = state, now
        assert self._log is not None
        line = f"{self.title}: {self.completed}/{self.total} {self.unit}"
        if self.note:
            line += f" · {self.note}"
        self._log.print(f"{line} · {_clock(now - self._started)}", highlight=False, markup=False, soft_wrap=True)


def _clock(seconds: float) -> str:
    """``h:mm:ss``, as rich's elapsed column shows it."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def item_note(item: ItemRun, where: str) -> str:
    """The bar's note for a job's finished item: where it is, and whether it failed, was reused or made calls ("1 call":
    every run of eval alu's baselines makes one, and the log read "vanilla r2/none: 1 calls" line after line)."""
    calls = f"{item.calls} call{'' if item.calls == 1 else 's'}"
    if item.not_run:  # the job stopped starting items (its database failed for good): this one never ran
        return f"{where}: not run"
    return f"{where}: " + ("failed" if item.error else "reused" if item.reused else calls)


def run_job(work: Coroutine[Any, Any, T], bar: WorkProgress, noun: str) -> T:
    """Run a resumable job's coroutine under ``bar``; on Ctrl-C (or SIGTERM), say how far it got and how to go on.

    Every job of :func:`agentmesh.optimize.items.run_items` resumes the same way (finished items reused, cut-short
    runs resumed without repeating a call), so every command that runs one says it the same way."""
    try:
        return run_async(work)
    except KeyboardInterrupt:
        err_console.print(
            f"interrupted: {bar.completed} of {counted(bar.total, noun.removesuffix('s'), noun)} had finished; run "
            "the same command again to go on "
            f"(finished {noun} are kept, cut-short runs resume without repeating a call)",
            highlight=False,
            markup=False,
        )
        raise
