"""``agentmesh replay | diff | report | export | import``: looking back at stored runs, for free.

A replay makes no model call (every response is served from the store); a fork (``replay --from``) pays only for
the calls after its step; the report is one HTML page that needs no network to view.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agentmesh._text import counted
from agentmesh.cli._common import (
    DbOption,
    console,
    err_console,
    fmt_cost,
    run_async,
    write_output,
)
from agentmesh.errors import ConfigError
from agentmesh.spec.loader import stored_graph
from agentmesh.spec.stop import budget_limit
from agentmesh.store.records import RunStatus

# The store (SQLAlchemy), the runtime (LangGraph) and the reports are imported by each command when it runs: this
# module is imported for the options alone by ``agentmesh replay --help`` (diff, report, export, import).

#: What this module's commands import when they run (not for their --help): imported first, watched for Ctrl-C
#: as this module's import is (agentmesh.cli.app).
WORK_IMPORTS = (
    "agentmesh.cli._store",
    "agentmesh.cli.batch_store",
    "agentmesh.runtime.replay",
    "agentmesh.timeline",
    "agentmesh.store.transfer",
    "agentmesh.viz.report",
    "agentmesh.viz.batch",
)


def _fork_budget_option(flag: str, *, whole: bool, what: str) -> Any:
    """A fork's ``--max-*`` budget, read and refused in the words ``agentmesh run``'s are (:func:`budget_limit`)."""

    def parse(text: str) -> int | float:
        try:
            return budget_limit(text, whole=whole)
        except ValueError as exc:
            raise ConfigError(f"{flag} {exc}", option=flag) from None

    return typer.Option(
        flag,
        parser=parse,
        metavar="<int> [x>=1]" if whole else "<float> [x>0]",
        help=f"A fork's budget of {what}, instead of the one its parent was given.",
    )


def replay(
    run: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    from_step: Annotated[
        str | None,
        typer.Option("--from", help="Replay up to this step, then go on live (N calls, NODE or NODE@ROUND)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Model reference or alias for the live part of a fork (default: the run's)."
        ),
    ] = None,
    assignments: Annotated[
        list[str] | None, typer.Option("--set", help="Change an input for the fork: key=value (repeatable).")
    ] = None,
    graph: Annotated[
        str | None, typer.Option("--graph", "-g", help="Replay with this graph (default: the run's, as it is now).")
    ] = None,
    max_calls: Annotated[
        int | None, _fork_budget_option("--max-calls", whole=True, what="model calls, served ones counted")
    ] = None,
    max_tokens: Annotated[int | None, _fork_budget_option("--max-tokens", whole=True, what="tokens")] = None,
    max_cost: Annotated[float | None, _fork_budget_option("--max-cost", whole=False, what="USD")] = None,
    max_seconds: Annotated[
        float | None, _fork_budget_option("--max-seconds", whole=False, what="wall time, in seconds")
    ] = None,
    db: DbOption = None,
) -> None:
    """Re-execute a stored run with every model response served from the store (zero calls), or fork it.

    A fork keeps the budget its parent was given (``run --max-*``, ``budget=``) unless ``--max-*`` here replace it:
    a run that a budget cut short forks further with a larger one."""
    from agentmesh.cli._store import open_store
    from agentmesh.cli.run import parse_inputs
    from agentmesh.runtime.replay import afork, areplay
    from agentmesh.spec.stop import Budget

    limits = {"calls": max_calls, "tokens": max_tokens, "cost_usd": max_cost, "wall_s": max_seconds}
    budget = Budget(**limits) if any(v is not None for v in limits.values()) else None
    with open_store(db, existing=True) as store:
        if from_step is None:
            if model or assignments or budget:
                raise ConfigError(
                    "--model, --set and --max-* make a fork: give --from STEP too (e.g. --from 0 to redo all)"
                )
            report = run_async(areplay(run, store=store, graph=graph))
            _print_replay(report)
            if not report.identical:
                raise typer.Exit(1)
            return
        record = store.get_run(run)
        spec = stored_graph(record.meta.get("spec"), record.id)
        values = parse_inputs(spec, assignments or [])
        forked: list[str] = []  # the fork's run id, once it is stored

        def on_start(kind: str, data: dict[str, Any]) -> None:
            if kind == "start":
                forked.append(str(data.get("run_id")))

        try:
            result = run_async(
                afork(
                    record.id,
                    step=from_step,
                    store=store,
                    model=model,
                    set_inputs=values,
                    graph=graph,
                    listeners=[on_start],
                    budget=budget,
                )
            )
        except (Exception, KeyboardInterrupt) as exc:
            if forked:  # it said nothing of the fork it had stored: its id was left to be found with agentmesh runs
                what = "was interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                err_console.print(
                    f"forked run {forked[0]} (from {record.id[:12]} at step {escape(from_step)}) {what}; it is "
                    f"stored: agentmesh show {forked[0][:12]}, and agentmesh resume {forked[0][:12]} continues it "
                    "(finished calls are not made again)",
                    highlight=False,
                )
            raise
    console.print(
        f"forked run [bold]{result.run_id}[/] from {record.id[:12]} at step {escape(from_step)}: "
        f"{counted(result.served_from_record, 'call')} served from the parent, {result.calls} made "
        f"({fmt_cost(result.cost_usd)}); answer {escape(_brief(result.answer))}; "
        f"stop: {escape(result.stop_reason or '-')}",
        highlight=False,
    )


def _answer(value: Any) -> str:
    """A node's answer in the diff: "-" for none (a run cut short read "None", as if it had answered that)."""
    return "-" if value is None else str(value)


def _brief(value: Any, width: int = 60) -> str:
    """An answer on one line of at most ``width`` characters: a code answer (dylan_code's) is many lines, and the
    replay's one-line verdict printed it whole twice, the recorded copy after the new one."""
    text = "-" if value is None else " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _print_held_warnings(warnings: Mapping[str, int]) -> None:
    """The warnings a replay gave again as its run gave them, once each: they came one by one on stderr (MAgICoRe's
    16 unreadable judge replies), as if the replay, which served the run's replies, had found something new."""
    if not warnings:
        return
    total = sum(warnings.values())
    console.print(f"{counted(total, 'warning')} as in the run (each said once):", highlight=False)
    for message, times in warnings.items():
        console.print(f"  {escape(message)}" + (f" ({times} times)" if times > 1 else ""), highlight=False)


def _print_replay(report: object) -> None:
    from agentmesh.runtime.replay import ReplayReport

    assert isinstance(report, ReplayReport)
    head = f"replay of {report.run_id[:12]} ({report.graph}, graph from {report.source}): "
    if report.divergence is not None:
        console.print(
            f"[bold red]{escape(head)}diverged[/] after {counted(report.served, 'served call')}", highlight=False
        )
        console.print(escape(str(report.divergence)), highlight=False)
        _print_held_warnings(report.warnings)
        return
    if report.stopped_at is not None:  # a run cut short: the replay reached where it stopped, nothing diverged
        from agentmesh.timeline import call_place

        where = call_place(report.stopped_at)  # (a loop body's: node 'judge', iteration 2, not 'judge#1')
        console.print(
            f"[bold yellow]{escape(head)}stopped where the run stopped[/]: {counted(report.served, 'call')} served as "
            f"recorded, none diverged; the next call ({escape(where)}) was never made by the run, so its answer and "
            "outputs cannot be compared",
            highlight=False,
        )
        if report.note is not None:
            console.print(f"note: {escape(report.note)}", highlight=False)
        _print_held_warnings(report.warnings)
        return
    state = "[green]identical[/]" if report.identical else "[red]different[/]"
    console.print(
        f"{escape(head)}{state}: {counted(report.served, 'call')} served, {report.calls_made} made; answer "
        f"{escape(_brief(report.answer))} (recorded {escape(_brief(report.recorded_answer))})",
        highlight=False,
    )
    _print_held_warnings(report.warnings)
    if not report.compared:
        console.print("the run has no final state stored to compare with (only its calls were checked)")
    for line in report.differences:
        console.print(f"  [red]{escape(line)}[/]", highlight=False)
    for key in report.unused:
        console.print(f"  [yellow]recorded call never asked for: {escape(str(key))}[/]", highlight=False)


def diff(
    run_a: Annotated[str, typer.Argument(help="First run (id or prefix).")],
    run_b: Annotated[str, typer.Argument(help="Second run (id or prefix).")],
    db: DbOption = None,
) -> None:
    """Where two runs part ways: the first differing call, node answers, calls, tokens and cost side by side."""
    from agentmesh.cli._store import open_store
    from agentmesh.timeline import diff_timelines, load_timeline

    with open_store(db, existing=True) as store:
        result = diff_timelines(load_timeline(store, run_a), load_timeline(store, run_b))
    a, b = result.a.run, result.b.run
    table = Table(title=f"{a.id[:12]} (A) vs {b.id[:12]} (B)")
    for column in ("", "A", "B"):
        table.add_column(column, overflow="fold")
    ta, tb = a.totals or {}, b.totals or {}
    rows = [
        ("graph", a.graph, b.graph),
        ("model", a.model or "-", b.model or "-"),
        # a fork's --set, or two items: what explains a first divergence at the first prompt
        *(
            [("inputs", json.dumps(a.inputs, ensure_ascii=False), json.dumps(b.inputs, ensure_ascii=False))]
            if a.inputs != b.inputs
            else []
        ),
        ("status", str(a.status), str(b.status)),
        ("stop reason", a.stop_reason or "-", b.stop_reason or "-"),
        ("calls", str(ta.get("calls", 0)), str(tb.get("calls", 0))),
        ("tokens", str(ta.get("total_tokens", 0)), str(tb.get("total_tokens", 0))),
        ("cost", fmt_cost(ta.get("cost_usd")), fmt_cost(tb.get("cost_usd"))),
        *((f"answer of {node}", _answer(answer_a), _answer(answer_b)) for node, answer_a, answer_b in result.answers),
    ]
    for row in rows:  # Text: an answer such as "[1, 2]" is not markup
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)
    console.print(f"first divergence: {escape(result.first_divergence or 'none: the runs made the same calls')}")
    console.print(
        f"calls only in A: {len(result.only_a)}, only in B: {len(result.only_b)}, "
        f"same place but different prompt or reply: {len(result.differing_calls)}"
    )


def report(
    html_path: Annotated[Path, typer.Option("--out", "--html", "-o", help="Where to write the HTML page.")],
    run: Annotated[str | None, typer.Argument(help="Run id or a unique prefix of it.")] = None,
    batch: Annotated[
        str | None,
        typer.Option("--batch", "-b", help="A batch's page instead (run --input-file's id, or a unique prefix)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """One self-contained HTML page: the graph, the agent network, importance scores, the calls over time and the
    timeline of a run; or a batch's: how its runs ended, accuracy, calls per item and a row per item."""
    if run is not None and batch is not None:
        raise ConfigError("give a run, or --batch ID, not both")
    if run is None and batch is None:
        raise ConfigError("nothing to report: give a run id (or a unique prefix), or --batch ID")
    from agentmesh.cli._store import open_store
    from agentmesh.cli.batch_store import batch_id, batch_runs
    from agentmesh.runtime.outcome import stored_answers
    from agentmesh.timeline import load_timeline
    from agentmesh.viz.batch import batch_html
    from agentmesh.viz.report import report_html

    with open_store(db, existing=True) as store:
        if batch is not None:
            batch = batch_id(store, batch)  # (a unique prefix: the page names the whole id)
            records = store.with_running_totals(batch_runs(store, batch))  # (a batch in progress: calls so far)
            page = batch_html(batch, records, stored_answers(store, records))
            what = f"batch {batch} ({counted(len(records), 'run')})"
        else:
            story = load_timeline(store, run or "")
            page, what = report_html(story), story.run.id[:12]
    write_output(html_path, page)
    console.print(Text(f"report of {what} written to {html_path}"))


def export(
    run: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    as_json: Annotated[
        bool,
        typer.Option("--json", show_default=False, help="JSON, an export's only format (accepted, not needed)."),
    ] = True,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    db: DbOption = None,
) -> None:
    """A run as versioned JSON (record, events, final outputs; secrets never included), for agentmesh import."""
    from agentmesh.cli._store import open_store
    from agentmesh.runtime.outcome import stored_outputs
    from agentmesh.store.transfer import export_run

    with open_store(db, existing=True) as store:
        record = store.with_running_totals([store.get_run(run)])[0]  # (a running run's: its calls so far, not 0)
        events = store.events(record.id)
        spec = stored_graph(record.meta["spec"], record.id) if isinstance(record.meta.get("spec"), dict) else None
        outputs = stored_outputs(store, spec, record.id) if spec is not None else None
        target_sets = store.pinned_target_sets(record.id)  # what the run read, so that it replays elsewhere
    if record.status == RunStatus.RUNNING:  # said, so that a half run is not taken for a whole one
        err_console.print(
            Text(
                f"note: run {record.id[:12]} is still running: the export holds what it had stored so far, and "
                "import stores it as interrupted"
            )
        )
    document = export_run(record, events, outputs, target_sets)
    text = json.dumps(document, ensure_ascii=False, indent=1)
    if out is None:
        print(text)
    else:
        write_output(out, text)
        err_console.print(Text(f"run {record.id[:12]}: {counted(len(document['events']), 'event')} written to {out}"))


def import_(
    path: Annotated[Path, typer.Argument(help="A file written by agentmesh export.")],
    db: DbOption = None,
    new_id: Annotated[
        bool,
        typer.Option("--new-id", help="Store it under a fresh id (the store has that run already: a copy)."),
    ] = False,
    drop_unknown_fields: Annotated[
        bool,
        typer.Option(
            "--drop-unknown-fields",
            help="Import an export by a newer agentmesh whose fields this version does not know, without them "
            "(they are listed); without this option such an export is refused, and nothing is imported.",
        ),
    ] = False,
) -> None:
    """Add an exported run to a store (the target of --db): all of it, or nothing if the file is not valid."""
    from agentmesh.cli._store import open_store
    from agentmesh.store.schema import SCHEMA_VERSION
    from agentmesh.store.transfer import import_run, unknown_fields

    if not path.is_file():
        raise ConfigError(
            f"{path}: {'a directory' if path.is_dir() else 'no such file'}; expected a file agentmesh export wrote"
        )
    try:
        # -sig: an export opened and saved in a Windows editor starts with a BOM, which is not JSON ("Unexpected
        # UTF-8 BOM (decode using utf-8-sig)" refused it), as the input files of run --input-file accept it
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except UnicodeDecodeError as exc:  # an export is UTF-8 JSON; this was a traceback
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); expected the JSON "
            "file agentmesh export wrote"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    with open_store(db) as store:
        run_id = import_run(
            store,
            document,
            where=str(path),
            new_id=uuid.uuid4().hex if new_id else None,
            drop_unknown_fields=drop_unknown_fields,
        )
    console.print(f"imported run {run_id}")
    dropped = unknown_fields(document) if drop_unknown_fields else []
    if dropped:  # what the copy here lacks, said where a script's stdout (the run's id) does not mix with it
        theirs = document.get("store_schema_version")
        err_console.print(
            Text(
                f"dropped {counted(len(dropped), 'field')} this agentmesh does not know (export's store schema "
                f"version {theirs}, this agentmesh's {SCHEMA_VERSION}): {', '.join(dropped)}"
            )
        )
