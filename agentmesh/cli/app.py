"""The typer application and the entry point that turns agentmesh errors into clean messages."""

from __future__ import annotations

import sys
from inspect import cleandoc
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from agentmesh.cli import ask, calibrate, db, graph, inspect, models, optimize, run, runs, targets
from agentmesh.cli import eval as eval_
from agentmesh.cli._common import err_console
from agentmesh.cli._signals import SignalInterrupt
from agentmesh.errors import AgentmeshError
from agentmesh.plugins import import_plugins


class _Commands(TyperGroup):
    """The command group, which exits with 128 + the signal that interrupted a command's work.

    Why here: typer (0.2x) turns any ``KeyboardInterrupt`` out of a command into exit status 130 (click before it,
    into an abort: "aborted", 130), so a run stopped by SIGTERM -- cleaned up exactly as after Ctrl-C, stored as
    interrupted and resumable -- exited 130 too, where shells and process managers expect 143. The interrupt
    :func:`~agentmesh.cli._common.run_async` raises names its signal; it is read here, before typer sees it."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SignalInterrupt as exc:
            raise typer.Exit(128 + exc.signum) from exc


app = typer.Typer(
    cls=_Commands,
    name="agentmesh",
    help="Declarative graphs of LLM agents over one shared store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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


app.command("ask")(ask.ask)
app.command("runs")(runs.list_runs)
app.command("show")(runs.show)
app.command("delete")(runs.delete)
app.command("models")(models.models)
app.command("run")(run.run_graph)
app.command("resume")(run.resume)
app.command("optimize")(optimize.optimize)
app.command("calibrate")(calibrate.calibrate)
app.command("replay")(inspect.replay)
app.command("diff")(inspect.diff)
app.command("report")(inspect.report)
app.command("export")(inspect.export)
app.command("import")(inspect.import_)
app.add_typer(db.app, name="db")
app.add_typer(graph.app, name="graph")
app.add_typer(targets.app, name="targets")
app.add_typer(eval_.app, name="eval")


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


_reflow_help(app)


def _prog_name() -> str:
    """The name usage messages give: click guesses it from how Python was started, which under ``python -m``
    (a test runner, say) names that runner's module rather than this program."""
    return "python -m agentmesh" if Path(sys.argv[0]).stem == "__main__" else "agentmesh"


def main() -> None:
    """The command line, once imported (:func:`agentmesh.cli.main` is the console entry point, which imports it):
    an :class:`AgentmeshError` prints its message (no traceback) and exits 2."""
    try:
        code = app(standalone_mode=False, prog_name=_prog_name())
    except AgentmeshError as exc:
        # the message may quote a prompt, an input or a file ("[/x]" there is text, not markup)
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except typer.Abort:
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
