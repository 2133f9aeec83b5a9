"""Running the ``agentmesh`` command line from tests, through its real entry point: in-process (:func:`run_cli`), or
as a child process that can be sent signals (:func:`start_cli`, :func:`wait_until`, :func:`interrupted`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

# The command line's consoles read COLUMNS once, when they are made (on importing agentmesh.cli._common, which
# agentmesh.cli.app imports only with the first command that runs). The first test to run a command would make
# them, and one that narrows the terminal (COLUMNS=50) would leave every later test that width: made here, at
# collection, as a real process makes them.
import agentmesh.cli._common  # noqa: F401
from agentmesh.cli import main
from agentmesh.store import Store

T = TypeVar("T")


def run_cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """``agentmesh <args>`` via :func:`agentmesh.cli.main`: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["agentmesh", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """``agentmesh <args>`` in a child process (so that it can be sent signals), its output captured."""
    command = [sys.executable, "-c", "from agentmesh.cli import main; main()", *args]
    env = {k: v for k, v in os.environ.items() if k != "AGENTMESH_CONFIG"}
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until(db: str, child: subprocess.Popen[bytes], ready: Callable[[Store], T | None], what: str) -> T:
    """``ready(store)`` once it is not ``None``, polling the child's store while the child runs (120 s at most)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()[1].decode()
        if Path(db.removeprefix("sqlite:///")).exists():
            with Store(db) as store:
                found = ready(store)
            if found is not None:
                return found
        time.sleep(0.1)
    raise AssertionError(f"not within 120 s: {what}")


def interrupted(
    args: list[str], cwd: Path, db: str, ready: Callable[[Store], object | None], what: str
) -> tuple[int, str]:
    """Start ``agentmesh <args>``, press Ctrl-C (SIGINT) once ``ready(store)`` holds; (exit code, stderr as one
    line)."""
    child = start_cli(args, cwd)
    try:
        wait_until(db, child, ready, what)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    return child.returncode, " ".join(err.decode().split())
