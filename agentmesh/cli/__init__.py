"""The ``agentmesh`` command line: run, inspect and manage stored runs and models.

:func:`main` is the console entry point (``agentmesh = "agentmesh.cli:main"``). It imports the command line itself
(:mod:`agentmesh.cli.app`: typer and rich; the command that runs then imports SQLAlchemy, the runtime -- seconds)
*inside* its own ``try``: importing it here, with the package, left a Ctrl-C pressed right after the command was
typed nothing to catch it, and Python printed a traceback. The typer application is
:data:`agentmesh.cli.app.app` (this package no longer re-exports it: a name that is also its submodule's would be
the typer object or the module depending on what was imported first).
"""

from __future__ import annotations

import signal
import sys

from agentmesh.cli._signals import exit_status, pressed, raise_if_pressed, watch_imports

__all__ = ["main"]


def main() -> None:
    """Console entry point: run the command line; interrupted at any moment, the imports included, exit with
    128 + the signal's number (130 after Ctrl-C) and one line, no traceback."""
    watch_imports()  # a Ctrl-C swallowed during the imports is raised once they are over (see _signals)
    try:
        try:
            from agentmesh.cli.app import main as run_command_line
        except Exception:
            if pressed():  # the Ctrl-C broke an import on its way (see _signals): it is what to report
                raise KeyboardInterrupt from None
            raise
        raise_if_pressed()
        run_command_line()
    except KeyboardInterrupt as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second press while this line is written changes nothing
        # as click says it later on: a new line (the terminal shows ^C), then "aborted"
        sys.stderr.write("\naborted\n")
        sys.stderr.flush()
        sys.exit(exit_status(exc))
