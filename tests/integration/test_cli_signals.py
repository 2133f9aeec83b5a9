"""The ``agentmesh`` command stopped by a signal, as a real child process: a Ctrl-C during its first seconds (the
imports) and what the exit status says.

Importing the command line takes seconds (typer, rich, SQLAlchemy, the runtime, LangGraph). The console script
imported all of it before :func:`agentmesh.cli.main` ran, so a Ctrl-C pressed right after typing a command could
only print a traceback (and the process died of the signal). The entry point now imports the command line inside
its own ``try``; :mod:`agentmesh` itself imports nothing heavy.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

_SCRIPT = Path(sys.executable).parent / "agentmesh"


def _entry(kind: str) -> list[str]:
    if kind == "script":
        if not _SCRIPT.exists():
            pytest.skip(f"no console script at {_SCRIPT} (agentmesh not installed in this environment)")
        return [str(_SCRIPT)]
    return [sys.executable, "-m", "agentmesh"]


def _child(command: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """``command`` with Python's import profile on (``-X importtime``, one stderr line per finished import): the
    test sees how far the imports have got, with nothing added to agentmesh for it."""
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTMESH_CONFIG", "AGENTMESH_IMPORT")}
    env["PYTHONPROFILEIMPORTTIME"] = "1"
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _python(probe: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``probe`` run by a fresh interpreter in ``cwd``, its output captured as text: a process of its own, so what it
    imports and the signals it sends itself touch nothing of the test's."""
    return subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _lines(stream: IO[bytes], into: list[str], seen: threading.Event) -> None:
    for raw in stream:
        line = raw.decode(errors="replace")
        into.append(line)
        if _IMPORTED.search(line):
            seen.set()


#: The import profile's line for the first finished langchain-core module: the command (here ``runs``, its module
#: imported once the command line knows which command it runs) is importing what its work needs (its module's
#: WORK_IMPORTS: the store, then the runtime with LangGraph and langchain-core) -- most of a second more of imports
#: on an idle machine, watched for Ctrl-C as the command's module's import is. (Not SQLAlchemy's first module, as
#: when the command's module imported the store itself: 0.2 s after it is now Alembic's import, which builds its
#: functions with exec(), and CPython 3.11 ends a process by SIGINT, exit -2, when a Ctrl-C was raised in code
#: run by exec(), even once handled. Waiting for agentmesh's first module instead, then 0.2 s, landed after the
#: command line's own quick imports, in typer's parsing of the arguments: typer turns a Ctrl-C there into exit 130
#: without a word.)
_IMPORTED = re.compile(r"^import time:.*\|\s*langchain_core\b")


@pytest.mark.parametrize("kind", ["module", "script"])
def test_ctrl_c_during_the_imports_exits_130_with_one_line(kind: str, tmp_path: Path) -> None:
    """Ctrl-C 0.2 s after the command's heavy imports reached langchain-core's first module: they take most of a
    second more, so the signal lands in them, where it is caught and said in one line."""
    child = _child([*_entry(kind), "runs", "--db", f"sqlite:///{tmp_path / 'runs.db'}"], tmp_path)
    assert child.stderr is not None
    err: list[str] = []
    seen = threading.Event()
    reader = threading.Thread(target=_lines, args=(child.stderr, err, seen), daemon=True)
    reader.start()
    try:
        assert seen.wait(120), "".join(err[-20:])
        time.sleep(0.2)
        before = list(err)  # what was imported by then (an interrupted import is listed too, after the signal)
        child.send_signal(signal.SIGINT)
        child.wait(timeout=60)
        out = child.stdout.read() if child.stdout is not None else b""
        reader.join(timeout=60)
    finally:
        child.kill()
    # the signal came while the command's imports were going on (agentmesh.cli.app imports its command's module,
    # here agentmesh.cli.runs, once it knows which, then what its work needs: the store and runtime, the timeline
    # last), not once the command ran
    assert not any(re.search(r"\|\s*agentmesh\.timeline$", line.rstrip()) for line in before), "imports were over"
    assert out == b""
    said = "".join(line for line in err if not line.startswith("import time:"))
    assert child.returncode == 130, said
    assert "Traceback" not in said and "KeyboardInterrupt" not in said, said
    assert said.strip() == "aborted", said


_SWALLOWED_PROBE = """
import os, signal, sys

import agentmesh.cli.app as app
from agentmesh.cli import main

real_target = app.LazyCommand.target


class LandsInDel:
    # Python runs a signal's handler at its next instruction: here inside __del__, where the KeyboardInterrupt it
    # raises cannot propagate -- as inside pydantic-core building a validator during the imports
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))


def target(self):
    if {mode!r} == "swallowed":
        LandsInDel()
    else:  # turned into another error on its way out, as pydantic-core's SchemaError does
        try:
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))
        except KeyboardInterrupt:
            raise RuntimeError("Error building validator: KeyboardInterrupt") from None
    return real_target(self)


app.LazyCommand.target = target
sys.argv = ["agentmesh", "models"]
main()
"""


@pytest.mark.parametrize("mode", ["swallowed", "turned_into_an_error"])
def test_a_ctrl_c_an_import_swallows_or_turns_into_an_error_still_exits_130(mode: str, tmp_path: Path) -> None:
    """A Ctrl-C raised where it cannot propagate (a C extension's callback, ``__del__``) was lost and the command
    ran; one pydantic-core turned into a ``SchemaError`` was a traceback and exit 1 (seen about once in twenty
    Ctrl-Cs during the imports). Either is remembered, and reported as the interrupt it was."""
    done = _python(_SWALLOWED_PROBE.format(mode=mode), tmp_path)
    assert done.returncode == 130, done.stderr
    assert done.stdout == ""  # the command did not run
    assert done.stderr.strip() == "aborted", done.stderr


_WORK_PROBE = """
import importlib, os, signal, sys

import agentmesh.cli.app as app
from agentmesh.cli import main


class LandsInDel:
    def __del__(self):  # (as in the probe above: a Ctrl-C where it cannot propagate)
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))


def import_module(name):
    if name == "agentmesh.cli._store":  # the first of the runs command's WORK_IMPORTS
        print("work imports", file=sys.stderr)
        LandsInDel()
    return importlib.import_module(name)


app.import_module = import_module
sys.argv = ["agentmesh", *{argv!r}]
main()
"""


@pytest.mark.parametrize("argv", [["runs", "--db", "sqlite:///nowhere.db"], ["runs", "--help"]], ids=" ".join)
def test_a_ctrl_c_swallowed_in_a_commands_work_imports_still_exits_130(argv: list[str], tmp_path: Path) -> None:
    """What a command's work needs is imported once it is about to run (its module's ``WORK_IMPORTS``), watched
    as the command's module's import is: a Ctrl-C an import swallows there is "aborted", 130, and the command does
    not run (it said that there is no database at nowhere.db). Its ``--help`` imports none of it."""
    done = _python(_WORK_PROBE.format(argv=argv), tmp_path)
    if "--help" in argv:
        assert done.returncode == 0, done.stderr
        assert "work imports" not in done.stderr and "--db" in done.stdout
        return
    assert done.returncode == 130, done.stderr
    assert done.stdout == ""
    assert done.stderr.split() == ["work", "imports", "aborted"], done.stderr


def test_every_work_import_is_a_module() -> None:
    """A misspelt name in a command module's ``WORK_IMPORTS`` would fail every run of its commands."""
    import importlib

    from agentmesh.cli.app import COMMANDS

    for lazy in COMMANDS.values():
        for name in lazy.work_imports():
            assert importlib.util.find_spec(name) is not None, (lazy.module, name)


def test_the_command_line_is_not_imported_with_the_package(tmp_path: Path) -> None:
    """What makes the Ctrl-C above catchable: the console script's ``from agentmesh.cli import main`` imports
    nothing heavy; the command line (and the runtime under it) is imported inside ``main``'s ``try``."""
    probe = (
        "import sys\n"
        "from agentmesh.cli import main\n"
        "import agentmesh.__main__\n"
        "heavy = sorted(m for m in ('agentmesh.cli.app', 'agentmesh.runtime', 'agentmesh.systems', 'typer', "
        "'sqlalchemy', 'langgraph') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    done = _python(probe, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_third_sigterm_quits_at_once_with_143(tmp_path: Path) -> None:
    """The third signal during a command's clean-up quits without waiting: with 128 + that signal's number (it
    was 130 whatever the signal), as the first one's exit would have said."""
    probe = (
        "import asyncio, os, signal\n"
        "from agentmesh.cli._common import run_async\n"
        "async def work():\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        await asyncio.sleep(30)\n"
        "    except asyncio.CancelledError:\n"  # a clean-up that takes long: two more signals come meanwhile
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        await asyncio.sleep(0.2)\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        await asyncio.sleep(30)\n"
        "        print('not quit')\n"
        "run_async(work())\n"
    )
    done = _python(probe, tmp_path)
    assert done.returncode == 143, done.stderr
    assert "not quit" not in done.stdout
    assert "stopping: storing the interrupted runs" in done.stderr
