"""The typer application and the entry point that turns agentmesh errors into clean messages.

The commands are imported when one is run, not when the application is built: each command's module imports
what it works with (the store and SQLAlchemy, the runtime and LangGraph, model clients, Ray), seconds that every
``agentmesh --help`` and ``agentmesh`` listing paid. :data:`COMMANDS` says where each command lives and the line
the top-level listing shows for it; :class:`_Commands` imports a command's module only when that command is the
one asked for (its options, its own ``--help``, its work).

A command's module is light too: what the command's work needs (the store, the runtime...) it imports in its
functions, so that its ``--help`` does not wait for them, and names in ``WORK_IMPORTS``; those are imported once the
command is about to run, watched for Ctrl-C as the command's module is (:func:`_watched`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from inspect import cleandoc
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_group

from agentmesh.cli._exit import error_exit_code
from agentmesh.cli._signals import SignalInterrupt, imports_done, pressed, watch_imports
from agentmesh.errors import AgentmeshError
from agentmesh.plugins import import_plugins


@dataclass(frozen=True)
class LazyCommand:
    """A top-level command, known without importing it: ``attribute`` of ``agentmesh.cli.<module>`` is the
    command's function, or the ``typer.Typer`` of a group of commands (``db``, ``graph``...).

    ``summary`` is what ``agentmesh --help`` lists for it -- the first paragraph of its help, said here so that the
    listing needs no import. tests/unit/test_cli_lazy.py checks that it is the real command's, word for word."""

    module: str
    attribute: str
    summary: str

    def target(self) -> Any:
        """The command's function or typer application (importing its module: the slow part). ``import_module`` is
        bound at this module's import, so that code replacing ``importlib.import_module`` for its own look-ups (a
        test faking a missing optional library) does not also hide the commands."""
        return getattr(import_module(f"agentmesh.cli.{self.module}"), self.attribute)

    def work_imports(self) -> tuple[str, ...]:
        """The modules the command's work imports (its module's ``WORK_IMPORTS``), heaviest last."""
        return tuple(getattr(import_module(f"agentmesh.cli.{self.module}"), "WORK_IMPORTS", ()))


#: Every top-level command, in the order ``agentmesh --help`` lists them.
COMMANDS: dict[str, LazyCommand] = {
    "ask": LazyCommand("ask", "ask", "Ask one model one question; the call is stored as a run (see agentmesh show)."),
    "runs": LazyCommand("runs", "list_runs", "List stored runs, newest first, with the answer each one ended with."),
    "show": LazyCommand(
        "runs",
        "show",
        "A run as a timeline: each node and round with its calls (answers folded; --full unfolds them, with the "
        "prompts), the agents that were active, pruned or never ran, ratings and importance, the stop reason.",
    ),
    "delete": LazyCommand(
        "runs",
        "delete",
        "Delete runs with their events and checkpoints (all of them or, if one is unknown or running, none); "
        "agentmesh db vacuum then gives the space back.",
    ),
    "models": LazyCommand(
        "models",
        "models",
        "Show provider, model, endpoint, key variable (never the key), limits and price of each reference.",
    ),
    "run": LazyCommand(
        "run",
        "run_graph",
        "Run a graph on inputs and print its answer, with a live view of rounds, agents and answers.",
    ),
    "resume": LazyCommand(
        "run",
        "resume",
        "Continue interrupted or failed runs from their last checkpoints; finished model calls are not made again.",
    ),
    "optimize": LazyCommand(
        "optimize",
        "optimize",
        "Choose the graph's team over --data (DyLAN: by agent importance; SE-Jury: by agreement with human "
        "labels), write the graph with that team and a picture.",
    ),
    "calibrate": LazyCommand(
        "calibrate",
        "calibrate",
        "Measure a MAgICoRe graph's mu and sigma (mean and spread of the first sample's reward) over --data, with "
        "the same Solver and reward models, and write the graph with them set.",
    ),
    "replay": LazyCommand(
        "inspect",
        "replay",
        "Re-execute a stored run with every model response served from the store (zero calls), or fork it.",
    ),
    "diff": LazyCommand(
        "inspect",
        "diff",
        "Where two runs part ways: the first differing call, node answers, calls, tokens and cost side by side.",
    ),
    "report": LazyCommand(
        "inspect",
        "report",
        "One self-contained HTML page: the graph, the agent network, importance scores, the calls over time and "
        "the timeline of a run; or a batch's: how its runs ended, accuracy, calls per item and a row per item.",
    ),
    "export": LazyCommand(
        "inspect",
        "export",
        "A run as versioned JSON (record, events, final outputs; secrets never included), for agentmesh import.",
    ),
    "import": LazyCommand(
        "inspect",
        "import_",
        "Add an exported run to a store (the target of --db): all of it, or nothing if the file is not valid.",
    ),
    "db": LazyCommand("db", "app", "Manage the agentmesh database."),
    "graph": LazyCommand(
        "graph",
        "app",
        "Graph specs: export the JSON Schema, validate files, draw a graph (Mermaid, SVG, PNG).",
    ),
    "targets": LazyCommand(
        "targets",
        "app",
        "Manage ALU's unlearning target sets in the store (each change bumps the set's version).",
    ),
    "eval": LazyCommand(
        "eval",
        "app",
        "Evaluate a system against its baselines, every question a stored, resumable run.",
    ),
}


class InterruptedImport(Exception):
    """Ctrl-C while a command's module was being imported. typer turns a ``KeyboardInterrupt`` out of a command
    into a silent exit 130, so it is carried past typer in this and raised again by :func:`main`: the console
    entry (:func:`agentmesh.cli.main`) then says "aborted", as it does for a Ctrl-C during its own imports."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        super().__init__("interrupted while importing a command")
        self.interrupt = interrupt


class _NotImported(TyperCommand):
    """A command of :data:`COMMANDS` whose module is not imported yet: its name and summary, no options. Only
    :class:`_Commands` hands it out, for the listing; ``get_command`` gives the real command."""


class _Commands(TyperGroup):
    """The command group: it imports a command's module when that command is run (:data:`COMMANDS`), and exits
    with 128 + the signal that interrupted a command's work.

    Why the latter here: typer (0.2x) turns any ``KeyboardInterrupt`` out of a command into exit status 130 (click
    before it, into an abort: "aborted", 130), so a run stopped by SIGTERM -- cleaned up exactly as after Ctrl-C,
    stored as interrupted and resumable -- exited 130 too, where shells and process managers expect 143. The
    interrupt :func:`~agentmesh.cli._common.run_async` raises names its signal; it is read here, before typer sees
    it."""

    _listing = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # every command by name from the start, as click and typer read them (the listing's order, "Did you
        # mean ...?" for a mistyped one); each a stand-in until it is asked for
        for name, lazy in COMMANDS.items():
            self.commands.setdefault(name, _NotImported(name=name, help=lazy.summary))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SignalInterrupt as exc:
            raise typer.Exit(128 + exc.signum) from exc

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command ``cmd_name``, its module imported now if it was not yet; while this group's own help is
        written, a command not imported yet stays the stand-in that has its name and summary (all the listing
        shows)."""
        command = super().get_command(ctx, cmd_name)
        if not isinstance(command, _NotImported) or self._listing:
            return command
        lazy = COMMANDS[cmd_name]
        target = _watched(lazy.target)
        command = _click_command(cmd_name, target)
        _import_before_work(command, lazy.work_imports())
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


T = TypeVar("T")


def _watched(load: Callable[[], T]) -> T:
    """``load()`` (imports), a Ctrl-C meanwhile reported as :class:`InterruptedImport` -- also one an import
    swallowed or turned into another error (see :mod:`agentmesh.cli._signals`); then Python's own Ctrl-C handler
    again, for the command's work."""
    try:
        value = load()
        imports_done()  # (raises a Ctrl-C that an import swallowed: see agentmesh.cli._signals)
    except KeyboardInterrupt as exc:
        raise InterruptedImport(exc) from exc
    except Exception:
        if pressed():  # the Ctrl-C broke the import on its way (pydantic-core's SchemaError): report that
            raise InterruptedImport(KeyboardInterrupt()) from None
        imports_done()  # (an import that failed on its own: the handler is put back all the same)
        raise
    return value


def _import_before_work(command: Any, modules: Sequence[str]) -> None:
    """Have ``command`` (each command of a group) import ``modules`` when it is about to run -- its options parsed,
    so not for its ``--help`` -- watched as its module's import was (:func:`_watched`).

    Why: the command modules import what their work needs inside their functions, so that ``--help`` is quick; a
    second of imports then came once the command ran, where a Ctrl-C was typer's silent exit 130, and one an
    import swallowed was lost (the command went on). Imported here first, a Ctrl-C in them is "aborted", 130, as
    during the command's module's import."""
    if not modules:
        return
    if isinstance(command, TyperGroup):  # (db, graph, targets, eval: what typer builds a group of commands as)
        for sub in command.commands.values():
            _import_before_work(sub, modules)
        return
    invoke = command.invoke

    def invoke_after_imports(ctx: Any) -> Any:
        watch_imports()
        _watched(lambda: [import_module(name) for name in modules])
        return invoke(ctx)

    command.invoke = invoke_after_imports


#: The application's settings, which the commands' own click commands are built with too (:func:`_click_command`).
_SETTINGS: dict[str, Any] = {
    "name": "agentmesh",
    "help": "Declarative graphs of LLM agents over one shared store.",
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_enable": False,
}

app = typer.Typer(cls=_Commands, **_SETTINGS)


def _version(value: bool) -> None:
    if value:
        from agentmesh import __version__

        typer.echo(f"agentmesh {__version__}")
        raise typer.Exit()


@app.callback()
def _plugins(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print agentmesh's version and exit."),
    ] = False,
    imports: Annotated[
        list[str] | None,
        typer.Option(
            "--import",
            "-I",
            envvar="AGENTMESH_IMPORT",
            help="A Python module or .py file to import first (repeatable; $AGENTMESH_IMPORT, space-separated): "
            "it registers your operators, functions and parsers for the graphs the command uses.",
        ),
    ] = None,
) -> None:
    import_plugins(imports or [])


def _click_command(name: str, target: Any) -> Any:
    """The click command typer makes of ``target`` (a command's function, or a group's ``typer.Typer``) as
    ``name`` under this application: registered on a typer application with the same settings, as
    ``app.command(name)`` or ``app.add_typer(target, name=name)`` would have, so that it is built exactly as it
    was when every command was registered on :data:`app` itself."""
    holder = typer.Typer(**_SETTINGS)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    _reflow_help(holder)
    return get_group(holder).commands[name]


def _reflowed(doc: str) -> str:
    """A command's docstring as help text: each paragraph on one line (typer's rich mode keeps a docstring's
    line breaks, which then cut sentences wherever the source wrapped them) and ``code`` without its quotes."""
    paragraphs = cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs).replace("``", "")


def _reflow_help(typer_app: typer.Typer) -> None:
    for command in typer_app.registered_commands:
        if command.help is None and command.callback is not None and command.callback.__doc__:
            command.help = _reflowed(command.callback.__doc__)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


def _prog_name() -> str:
    """The name usage messages give: click guesses it from how Python was started, which under ``python -m``
    (a test runner, say) names that runner's module rather than this program."""
    return "python -m agentmesh" if Path(sys.argv[0]).stem == "__main__" else "agentmesh"


def main() -> None:
    """The command line, once imported (:func:`agentmesh.cli.main` is the console entry point, which imports it):
    an :class:`AgentmeshError` prints its message (no traceback) and exits 2 if the command as given cannot work,
    1 if its work was attempted and failed (:func:`agentmesh.cli._exit.error_exit_code` decides)."""
    try:
        code = app(standalone_mode=False, prog_name=_prog_name())
    except InterruptedImport as exc:
        raise exc.interrupt from None  # "aborted", 130: see InterruptedImport
    except AgentmeshError as exc:
        from rich.markup import escape

        from agentmesh.cli._common import err_console  # (imported already: with the command that raised this)
        from agentmesh.store._redact import mask_secrets

        # the message may quote a prompt, an input or a file ("[/x]" there is text, not markup), or a model
        # reference or URL with a key in it (masked as the store masks it: keys never reach the logs)
        err_console.print(f"[bold red]error:[/] {escape(mask_secrets(str(exc)))}", highlight=False)
        sys.exit(error_exit_code(exc))
    except typer.Abort:
        from agentmesh.cli._common import err_console

        err_console.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click's usage errors (unknown option, bad value) arrive here in non-standalone mode
        # Told apart by what they can do rather than by class: typer >= 0.2x raises its own vendored copy of
        # click's exceptions, which click's ``ClickException`` does not match (a usage error was a traceback).
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise
    # Without standalone mode click *returns* a command's ``typer.Exit(code)`` instead of raising it.
    if isinstance(code, int) and code:
        sys.exit(code)
