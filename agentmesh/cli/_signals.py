"""Which signal stopped a command, and the exit status that says so.

Why a module of its own, this small: the console entry (:func:`agentmesh.cli.main`) needs it before anything
heavy is imported -- a Ctrl-C during the imports is caught there -- and :func:`agentmesh.cli._common.run_async`
raises its :class:`SignalInterrupt` when SIGINT or SIGTERM cancels a command's work.

Shells and process managers read ``128 + n`` as "ended by signal n": 130 after Ctrl-C (SIGINT), 143 after SIGTERM
(``kill``, ``timeout``, a scheduler, a container stop). A run stopped either way is stored as interrupted and
resumable alike; only the status tells the two apart.
"""

from __future__ import annotations

import signal

#: Exit status after Ctrl-C: 128 + SIGINT.
INTERRUPTED = 128 + signal.SIGINT


class SignalInterrupt(KeyboardInterrupt):
    """The command's work was cancelled by signal ``signum`` (SIGINT or SIGTERM). A ``KeyboardInterrupt``, so that
    every command's clean-up for Ctrl-C (storing its runs as interrupted, saying how to go on) runs for both."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(exc: BaseException) -> int:
    """``128 + n`` for the signal ``n`` behind ``exc`` (an interrupt, or click's ``Abort`` raised from one), found
    along its cause and context; 130, as for Ctrl-C, when no :class:`SignalInterrupt` is there (a plain
    ``KeyboardInterrupt``, a Ctrl-C at a prompt)."""
    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        if isinstance(found, SignalInterrupt):
            return 128 + found.signum
        seen.add(id(found))
        found = found.__cause__ or found.__context__
    return INTERRUPTED
