"""Progress of long CLI work (a batch of runs, an optimisation job) on a terminal and off it.

On a terminal it is a rich progress bar. Off one -- output sent to a log file, a CI job, ``nohup``, a batch
scheduler -- rich draws nothing until the work is over, so a batch of a thousand items on a real model would be
silent for hours; there, :class:`WorkProgress` prints a plain line instead at every tenth of the work done, and
at most once a :data:`LOG_EVERY_S` while anything else moves (calls made during long items), on stderr so that it
never mixes with the results on stdout. Those lines come only when something moves, and on the embedded model one
call takes minutes: the first line came after 2:50 and the job looked hung. So, off a terminal, a line saying the
job is still working is printed whenever no line has been for :data:`HEARTBEAT_S` (a heartbeat, from a thread of
its own: nothing else runs to print it while every item waits on its model).
"""

from __future__ import annotations

import math
import threading
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

#: Off a terminal, the longest silence (seconds) of any kind: with no line for this long, a line says the work is
#: still going (how far, how many calls so far, for how long). Read at every wait: tests patch it short.
HEARTBEAT_S = 60.0


class WorkProgress:
    """``total`` units of work titled ``title``, with a free-text ``note`` (failures, calls) beside the count.

    ``console`` draws the bar on a terminal; ``log`` receives the plain lines elsewhere. Disabled, it shows
    nothing (``--json``, ``--quiet``). Use as a context manager; :meth:`update` from the event loop's thread.
    Off a terminal, a thread prints the heartbeat (see the module) while the context is open, and the exit stops it
    (an interrupted job's too, before its "interrupted" message: :func:`run_job`).
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
        calls: int | None = None,
    ) -> None:
        self.title = title
        self.total = total
        self.unit = unit
        self.completed = 0
        self.note = ""
        self.calls = calls
        """Model calls made so far, when the caller counts them (0 to start with; :meth:`update` moves it): the
        heartbeat says them (``None``: not counted, not said)."""
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
        # the heartbeat's thread reads what update() writes (and both print): one lock for both
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._heart: threading.Thread | None = None

    def __enter__(self) -> WorkProgress:
        self._bar.__enter__()
        self._task = self._bar.add_task(escape(self.title), total=self.total, note=self.note)  # a name, not markup
        self._started = self._logged_at = time.monotonic()
        if self._log is not None:
            self._stopping.clear()
            self._heart = threading.Thread(target=self._beat, name=f"agentmesh progress heartbeat ({self.title})")
            self._heart.daemon = True  # never what keeps a finished (or killed) process alive
            self._heart.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop_heartbeat()
        self._bar.__exit__(kind, exc, tb)

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat (at once: its thread waits on an event, not a sleep); no line of it comes after."""
        self._stopping.set()
        heart, self._heart = self._heart, None
        if heart is not None and heart is not threading.current_thread():
            heart.join(timeout=5)  # it is between two waits, or printing one line

    def update(
        self,
        *,
        completed: int | None = None,
        advance: int = 0,
        note: str | None = None,
        calls: int | None = None,
    ) -> None:
        """Set (or advance) the units done, the note and the calls made so far; off a terminal, maybe log a line."""
        with self._lock:
            self.completed = (self.completed if completed is None else completed) + advance
            if note is not None:
                self.note = note
            if calls is not None:
                self.calls = calls
            if self._task is not None and self._live:
                self._bar.update(self._task, completed=self.completed, note=self.note)
            if self._log is not None:
                self._maybe_log()

    def _beat(self) -> None:
        """The heartbeat's thread: wait until :data:`HEARTBEAT_S` have passed since the last line, say the work is
        still going, and again, until :meth:`stop_heartbeat`."""
        while not self._stopping.is_set():
            with self._lock:
                # a second at least: the clock (whole seconds) is what tells one heartbeat from the one before
                left = self._logged_at + max(HEARTBEAT_S, 1.0) - time.monotonic()
                if left <= 0:
                    self._print_heartbeat()
                    continue
            self._stopping.wait(left)

    def _print_heartbeat(self) -> None:
        """The line that says the work goes on although nothing moved. Unlike a line of :meth:`_maybe_log`, it may
        say what the last one said (nothing moved): its clock says what changed, at least :data:`HEARTBEAT_S` on."""
        now = time.monotonic()
        self._logged_at = now
        line = f"{self.title}: still working · {self.completed}/{self.total} {self.unit} done"
        if self.calls is not None:
            line += f" · {counted(self.calls, 'model call')} made so far"
        self._print(line, now)

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
        line = f"{self.title}: {self.completed}/{self.total} {self.unit}"
        if self.note:
            line += f" · {self.note}"
        self._print(line, now)

    def _print(self, line: str, now: float) -> None:
        assert self._log is not None
        self._log.print(f"{line} · {_clock(now - self._started)}", highlight=False, markup=False, soft_wrap=True)


def _clock(seconds: float) -> str:
    """``h:mm:ss``, as rich's elapsed column shows it."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def item_note(item: ItemRun, where: str) -> str:
    """The bar's note for a job's finished item: where it is, and whether it failed, was reused or made calls ("1 call":
    every run of eval alu's baselines makes one, and the log read "vanilla r2/none: 1 calls" line after line).

    A resumed item's run counts the calls of its earlier attempts too: the note said "11 calls" for 7 made now, beside
    a count of calls made so far that had grown by 7. It says the calls made now, then the run's total, which is what
    ``agentmesh show`` gives for the run: "7 calls (resumed: 11 in all)"."""
    calls = counted(item.calls - item.earlier_calls, "call")
    if item.earlier_calls:
        calls += f" (resumed: {item.calls} in all)"
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
        bar.stop_heartbeat()  # "still working" after "interrupted" would contradict it
        err_console.print(
            f"interrupted: {bar.completed} of {counted(bar.total, noun.removesuffix('s'), noun)} had finished; run "
            "the same command again to go on "
            f"(finished {noun} are kept, cut-short runs resume without repeating a call)",
            highlight=False,
            markup=False,
        )
        raise
