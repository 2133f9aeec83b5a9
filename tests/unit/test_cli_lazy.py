"""The command line imports a command's module only when that command runs (:data:`agentmesh.cli.app.COMMANDS`).

Building the typer application imported every command module, and with them the store (SQLAlchemy), the runtime
(LangGraph), model clients and Ray: ``agentmesh --help`` took seconds. The top-level listing now comes from
``COMMANDS``' summaries, which must stay the real commands' own words.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.main import get_command

from agentmesh.cli.app import COMMANDS, LazyCommand, app
from tests._cli import run_cli

REPO = Path(__file__).resolve().parents[2]

#: What no command line may import before it knows which command runs: each costs from a tenth of a second to
#: seconds.
HEAVY = ("langgraph", "sqlalchemy", "openai", "ray", "agentmesh.cli._common", "agentmesh.store", "agentmesh.runtime")


def _fresh(argv: list[str], watched: tuple[str, ...]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``agentmesh ARGV`` in a fresh interpreter, through the console entry, from the repository (graphs/...): how
    it ended (it must succeed), and which of ``watched`` (or their submodules) it imported."""
    probe = (
        "import sys\n"
        f"sys.argv = ['agentmesh', *{argv!r}]\n"
        "from agentmesh.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        f"heavy = sorted(m for m in sys.modules for h in {watched!r} if m == h or m.startswith(h + '.'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_")}  # no --import from here
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env | {"COLUMNS": "200"},
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("HEAVY ["), done.stderr
    return done, [m.strip(" '") for m in last.removeprefix("HEAVY [").removesuffix("]").split(",") if m.strip()]


def test_the_top_level_help_imports_no_command() -> None:
    """``agentmesh --help`` in a fresh interpreter, through the console entry: every command listed, nothing
    heavy imported (the application is built and its help written, the path every command takes first)."""
    done, heavy = _fresh(["--help"], HEAVY)
    assert heavy == []
    listed = [line.strip("│ ").split(" ", 1)[0] for line in done.stdout.splitlines() if line.startswith("│ ")]
    assert [name for name in listed if name in COMMANDS] == list(COMMANDS), done.stdout


#: What a command's own help and the quick commands must not import: the store's database layer (SQLAlchemy,
#: Alembic), the runtime's engine (LangGraph, langchain-core), model clients (openai, httpx), Ray. The command
#: modules, the runtime and the store import them where the work needs them.
WORK = ("langgraph", "langchain_core", "sqlalchemy", "alembic", "openai", "httpx", "ray")


@pytest.mark.parametrize(
    "argv",
    [
        *([name, "--help"] for name in COMMANDS),
        ["db", "vacuum", "--help"],
        ["targets", "list", "--help"],
        ["eval", "alu", "--help"],
        ["graph", "validate", "graphs/debate.yaml", "graphs/alu.yaml", "graphs/magicore.yaml", "graphs/sejury.yaml"],
        ["graph", "schema"],
        ["graph", "show", "graphs/debate.yaml"],
        ["models"],
    ],
    ids=" ".join,
)
def test_help_and_quick_commands_import_no_database_or_engine(argv: list[str]) -> None:
    """Every command's ``--help`` and the commands that only read graphs or settings (``graph validate`` of shipped
    graphs, which loads every shipped operator and function; ``graph schema``; ``graph show``; ``models``) import
    none of :data:`WORK`. They did, through the command modules' and the runtime's top-level imports: 1-2.5 s each,
    where they now take about half a second."""
    done, heavy = _fresh(argv, WORK)
    assert heavy == []
    assert done.stdout.strip()  # (it did its work)


def _group() -> tuple[Any, Any]:
    group: Any = get_command(app)
    return group, typer.Context(group, info_name="agentmesh")


def _help(group: Any, capsys: pytest.CaptureFixture[str]) -> str:
    assert group.main(["--help"], prog_name="agentmesh", standalone_mode=False) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_summary_is_the_real_commands_first_paragraph(name: str) -> None:
    """What the listing says of a command without importing it is what it says of the real command: the first
    paragraph of the command's help, as typer lists it."""
    group, ctx = _group()
    stand_in = group.commands[name]
    real = group.get_command(ctx, name)
    assert real is not stand_in and real is group.commands[name]  # imported now, and kept
    assert real.name == name and not real.hidden
    real_summary = inspect.cleandoc(real.short_help or real.help or "").split("\n\n")[0].strip()
    assert COMMANDS[name].summary == real_summary
    if isinstance(COMMANDS[name].target(), typer.Typer):
        assert real.list_commands(typer.Context(real)), name  # a group, with its commands


def test_the_listing_is_the_same_with_every_command_imported(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole ``--help`` page, commands listed from ``COMMANDS`` alone, is the page typer writes from the real
    commands (which, once imported, the listing uses): same names, same order, same words."""
    monkeypatch.setenv("COLUMNS", "120")
    lazy, _ = _group()
    lazy_page = _help(lazy, capsys)
    loaded, ctx = _group()
    for name in loaded.list_commands(ctx):
        loaded.get_command(ctx, name)
    assert loaded.list_commands(ctx) == list(COMMANDS)
    assert _help(loaded, capsys) == lazy_page
    for name in COMMANDS:
        assert name in lazy_page


def test_a_mistyped_command_is_still_given_close_names(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """typer suggests among the group's commands: the ones not imported yet are offered too."""
    code, _, err = run_cli(["rn"], capsys, monkeypatch)
    assert code == 2 and "Did you mean 'run', 'runs'?" in " ".join(err.split()), err


def test_ctrl_c_while_a_command_is_imported_says_aborted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """typer turns a ``KeyboardInterrupt`` into a silent exit 130; during a command's import (the second or so
    after Enter, now that the command line's own imports are quick) it ends as one during those: "aborted"."""

    def interrupted(self: LazyCommand) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(LazyCommand, "target", interrupted)
    handler = signal.getsignal(signal.SIGINT)
    try:
        code, out, err = run_cli(["runs", "--db", "sqlite:///nowhere.db"], capsys, monkeypatch)
    finally:
        signal.signal(signal.SIGINT, handler)  # the entry point ignores further Ctrl-C once it is saying so
    assert (code, out, err) == (130, "", "\naborted\n")
