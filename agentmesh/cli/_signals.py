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
import sys
from typing import Any

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


# --- Ctrl-C during the command line's imports -----------------------------------------------------------------------
#
# A Ctrl-C is raised as ``KeyboardInterrupt`` wherever the interpreter happens to be when its handler runs. During
# the imports that is sometimes inside a C extension calling back into Python (pydantic-core building a validator,
# a GC callback), where an exception cannot propagate: Python prints "Exception ignored in ..." and goes on, and the
# command then ran as if no key had been pressed (measured: about one Ctrl-C in twenty during `agentmesh runs`'s
# imports), or pydantic-core turned it into a ``SchemaError`` (a traceback, exit 1). So while the command line is
# imported, the handler also *remembers* the press: the end of the imports raises it again if it was swallowed on
# the way, an import that failed after it is reported as the interrupt it was, and Python's report of a swallowed
# one ("Exception ignored", a traceback) is left out, as the interrupt is not lost.

_pressed = False
_unraisable_hook = sys.unraisablehook


def _quiet_about_interrupts(unraisable: Any) -> None:
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        _unraisable_hook(unraisable)


def _remember_and_raise(signum: int, frame: object) -> None:
    global _pressed
    _pressed = True
    raise KeyboardInterrupt


def watch_imports() -> None:
    """Remember a Ctrl-C from now on (see above); only where Python's own handler is in place (the main thread,
    nobody else's handler installed), which it keeps doing otherwise: raising ``KeyboardInterrupt``."""
    global _unraisable_hook
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _remember_and_raise)
            _unraisable_hook, sys.unraisablehook = sys.unraisablehook, _quiet_about_interrupts
    except ValueError:  # not the main thread: signals are not ours to handle
        pass


def pressed() -> bool:
    """Whether Ctrl-C was pressed since :func:`watch_imports` (an import that failed since then failed of it)."""
    return _pressed


def raise_if_pressed() -> None:
    """Raise the ``KeyboardInterrupt`` of a Ctrl-C pressed since :func:`watch_imports` and swallowed on the way."""
    global _pressed
    if _pressed:
        _pressed = False
        raise KeyboardInterrupt


def imports_done() -> None:
    """The imports are over: Python's own Ctrl-C handler again (the command's work handles signals as it always
    did), after raising a press that was swallowed during them."""
    try:
        if signal.getsignal(signal.SIGINT) is _remember_and_raise:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            sys.unraisablehook = _unraisable_hook
    except ValueError:
        pass
    raise_if_pressed()
