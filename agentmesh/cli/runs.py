"""``agentmesh runs`` and ``agentmesh show``: what is in the store."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agentmesh._text import counted
from agentmesh.cli._common import (
    NARROW,
    WIDE,
    DbOption,
    JsonOption,
    console,
    err_console,
    fmt_cost,
    fmt_seconds,
    number_option,
)
from agentmesh.errors import ConfigError
from agentmesh.store.records import EventRecord, RunRecord
from agentmesh.viz.numbers import ranked_apart

# The store (SQLAlchemy) and the runtime's reading of stored answers (LangGraph) are imported by the commands when
# they run: ``agentmesh runs --help`` (``show``, ``delete``) imports this module for the options alone.
if TYPE_CHECKING:
    from agentmesh.store import Store
    from agentmesh.timeline import Timeline

#: What this module's commands import when they run (not for their --help): imported first, watched for Ctrl-C
#: as this module's import is (agentmesh.cli.app).
WORK_IMPORTS = ("agentmesh.cli._store", "agentmesh.cli.batch_store", "agentmesh.runtime.outcome", "agentmesh.timeline")

_STATUS_STYLE = {"succeeded": "green", "failed": "red", "running": "yellow", "interrupted": "magenta"}


def list_runs(
    graph: Annotated[str | None, typer.Option("--graph", "-g", help="Only runs of this graph.")] = None,
    status: Annotated[str | None, typer.Option("--status", "-s", help="Only runs with this status.")] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch", "-b", help="Only the runs of this batch (run --input-file names it; a unique prefix will do)."
        ),
    ] = None,
    job: Annotated[
        str | None,
        typer.Option(
            "--job",
            "-j",
            help="Only the runs of this job (the id optimize, calibrate and eval print; a unique prefix will do).",
        ),
    ] = None,
    limit: Annotated[
        int, number_option("--limit", "-n", whole=True, at_least=1, help="At most this many, the newest.")
    ] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List stored runs, newest first, with the answer each one ended with."""
    from agentmesh.cli._store import open_store
    from agentmesh.runtime.outcome import stored_answers

    with open_store(db, existing=True) as store:
        if batch is not None:  # by a unique prefix too, as a run; an unknown one is said, not "no runs"
            batch = _batch_id(store, batch)
        if job is not None:
            job = store.resolve_job(job)
        found = store.with_running_totals(
            store.list_runs(graph=graph, status=status, batch=batch, job=job, limit=limit)
        )
        total = (
            store.count_runs(graph=graph, status=status, batch=batch, job=job) if len(found) == limit else len(found)
        )
        answers = stored_answers(store, found)
    if as_json:
        listed = [{**r.model_dump(mode="json"), "answer": answers.get(r.id)} for r in found]
        console.print_json(json.dumps(listed, default=str))
        return
    if not found:
        console.print("no runs" + (" matching the filters" if graph or status or batch or job else " yet"))
        return
    if console.width < NARROW:  # a few lines per run: as a row, its answer was squeezed out
        console.print(_run_records(found, answers, total))
        return
    # narrower than WIDE: a row per run on one line (the stop reason's kind, no model, tokens, cost or date)
    wide = console.width >= WIDE
    caption = None if wide else "full stop reasons, model, cost, dates: --json or a wider terminal"
    title = f"runs ({len(found)})" if total == len(found) else f"runs: the {len(found)} newest of {total} (--limit)"
    table = Table(title=title, caption=caption)
    columns = ["id", "graph", "status", "answer", "stop reason" if wide else "stop"]
    columns += [*(["model"] if wide else []), "calls", *(["tokens", "cost", "created"] if wide else [])]
    for col in columns:
        fixed = col in ("id", "status", "stop", "calls", "tokens", "cost", "created")
        table.add_column(col, no_wrap=fixed, justify="right" if col in ("calls", "tokens", "cost") else "left")
    for r in found:
        t = r.totals or {}
        answer = answers.get(r.id)
        cells = {
            "id": r.id[:12],
            "graph": escape(r.graph),
            "status": _status(r.status),
            "answer": escape(_short(answer, 40 if wide else 16)) if answer is not None else "-",
            "stop reason": escape(r.stop_reason or ""),
            "stop": escape(_stop_kind(r.stop_reason)),
            "model": escape(r.model or ""),
            "calls": str(t.get("calls", 0)),
            "tokens": str(t.get("total_tokens", 0)),
            "cost": fmt_cost(t.get("cost_usd")),
            "created": _when(r.created_at),
        }
        table.add_row(*(cells[c] for c in columns))
    console.print(table)


def _batch_id(store: Store, batch: str) -> str:
    """``--batch``'s batch (:func:`~agentmesh.cli.batch_store.batch_id`); a job's id given there (``optimize``,
    ``calibrate`` and ``eval`` print one, and it was answered "no batch") is said to be one, with the option that
    takes it."""
    from agentmesh.cli.batch_store import batch_id
    from agentmesh.errors import BatchNotFoundError, JobNotFoundError

    try:
        return batch_id(store, batch)
    except BatchNotFoundError as exc:
        try:
            job = store.resolve_job(batch)
        except JobNotFoundError:
            raise exc from None
        raise BatchNotFoundError(
            f"{exc}; {job} is a job's id (optimize, calibrate and eval print one), not a batch's: agentmesh runs "
            f"--job {batch}",
            **exc.context,
        ) from None


def _run_records(found: list[RunRecord], answers: dict[str, Any], total: int) -> Table:
    """``runs`` on a narrow terminal (:data:`NARROW`): each run on lines of its own (id, status, graph; its
    answer and calls; its stop reason), which fold rather than shrink to nothing."""
    title = f"runs ({len(found)})" if total == len(found) else f"runs: the {len(found)} newest of {total} (--limit)"
    table = Table(title=title, caption="model, cost, dates: --json", box=None, show_header=False, padding=(0, 0))
    table.add_column("run", overflow="fold")
    for r in found:
        calls = (r.totals or {}).get("calls", 0)
        record = Text(f"{r.id[:12]} ")
        record.append(str(r.status), style=_STATUS_STYLE.get(str(r.status), "white"))
        record.append(f" · {r.graph}\n  answer ")
        answer = answers.get(r.id)
        record.append("-" if answer is None else _short(answer, 200))
        record.append(f" · {calls} call{'' if calls == 1 else 's'}")
        record.append(f"\n  {r.stop_reason or '-'}")
        table.add_row(record)
    return table


def delete(
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Run ids or unique prefixes of them.", metavar="RUN...")
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option("--batch", "-b", help="Every run of this batch (run --input-file's id, or a unique prefix)."),
    ] = None,
    db: DbOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Delete runs marked running too (a live one ends with an error saying it was deleted, and removes "
            "what it wrote meanwhile).",
        ),
    ] = False,
) -> None:
    """Delete runs with their events and checkpoints (all of them or, if one is unknown or running, none);
    agentmesh db vacuum then gives the space back."""
    from agentmesh.cli._store import open_store
    from agentmesh.cli.batch_store import batch_runs
    from agentmesh.store.runs import running_refused

    if run_ids and batch is not None:
        raise ConfigError("give the runs to delete, or --batch ID, not both")
    if not run_ids and batch is None:
        raise ConfigError("nothing to delete: give run ids (or unique prefixes), or --batch ID")
    with open_store(db, existing=True) as store:
        if batch is not None:
            records = batch_runs(store, batch, then="; nothing deleted")
        else:
            records = [store.get_run(r) for r in run_ids or []]  # every one resolved before anything is deleted
        records = list({r.id: r for r in records}.values())
        table = Table(title=Text(f"delete {len(records)} run{'s' if len(records) != 1 else ''} from {store.url}"))
        for col in ("id", "graph", "status", "calls", "created"):
            table.add_column(col, no_wrap=True)
        for r in records:
            calls = str((r.totals or {}).get("calls", 0))
            table.add_row(r.id[:12], Text(r.graph), _status(r.status), calls, _when(r.created_at))
        console.print(table)
        running = [r.id for r in records if r.status == "running" and not force]
        if running:  # the store refuses it too; said here before asking
            raise running_refused(running[0])
        if not yes and not _confirmed("Delete them?"):
            console.print("nothing deleted")
            raise typer.Exit(1)
        count = store.delete_runs([r.id for r in records], force=force)
    console.print(f"deleted {len(records)} run(s) and {count} event(s); agentmesh db vacuum gives the space back")
    if any(r.status == "running" for r in records):
        # said, as the run's process will not: it goes on until its end, and only there learns it was deleted
        console.print(
            "a run marked running that is still running elsewhere goes on until its end, which then fails with "
            "'deleted while it was running' and removes the checkpoints it wrote meanwhile; if its process dies "
            "first, agentmesh db reclaim removes them",
            highlight=False,
        )
        if batch is not None:
            # a batch still running starts its remaining lines under its id after this: only its runs of now are gone
            console.print(
                "a batch still running goes on starting its remaining lines under its id: stop it first (Ctrl-C) to "
                "delete all of it; a later agentmesh resume --batch runs the deleted lines again as never started",
                highlight=False,
            )


def _confirmed(question: str) -> bool:
    """The user's yes, or no; no answer at all (stdin at its end: a script, cron, ``< /dev/null``) is a no that
    says how not to be asked. click reads it as an abort: "aborted", exit 130, as if Ctrl-C had been pressed."""
    try:
        return typer.confirm(question, default=False)
    except typer.Abort as exc:
        if not isinstance(exc.__context__, EOFError):  # Ctrl-C at the question: an abort indeed
            raise
        err_console.print("no answer (stdin is closed): -y (--yes) deletes without asking", highlight=False)
        return False


def show(
    run: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    db: DbOption = None,
    as_json: JsonOption = False,
    full: Annotated[bool, typer.Option("--full", help="Print prompts and answers in full.")] = False,
    events: Annotated[bool, typer.Option("--events", help="Every stored event as a table instead.")] = False,
) -> None:
    """A run as a timeline: each node and round with its calls (answers folded; --full unfolds them, with the
    prompts), the agents that were active, pruned or never ran, ratings and importance, the stop reason."""
    from agentmesh.cli._store import open_store
    from agentmesh.timeline import load_timeline

    with open_store(db, existing=True) as store:
        record = store.with_running_totals([store.get_run(run)])[0]
        stored = store.events(record.id)
        story = load_timeline(store, record.id) if not (as_json or events) else None
    if as_json:
        console.print_json(
            json.dumps({"run": record.model_dump(mode="json"), "events": [e.model_dump(mode="json") for e in stored]})
        )
        return
    console.print(_summary(record))
    if not stored:
        console.print("no events recorded")
        return
    if story is None:
        _events_table(stored, full)
        return
    if story.spec_problem:
        err_console.print(
            f"[dim]its spec cannot be read here, so its nodes' kinds and outputs are not shown: "
            f"{escape(story.spec_problem)}[/]",
            highlight=False,
        )
    _print_timeline(story, full)


def _print_timeline(story: Timeline, full: bool) -> None:
    for number, step in enumerate(story.steps, start=1):
        where = f"{step.node}" + (f" ({step.op})" if step.op else "") + step.place
        facts = [f"{len(step.calls)} call{'' if len(step.calls) == 1 else 's'}"] if step.calls else []
        summary = step.summary
        if summary.get("answer") is not None:
            facts.append(f"answer {_short(summary['answer'], 60)}")
        if summary.get("taken"):  # a branch: which way it went (what explains the nodes that follow, or not)
            facts.append(f"took {summary['taken']}")
        if step.scores is not None:
            facts.append(f"scores {step.scores}")
        if step.calls:
            facts.append(f"{counted(step.tokens, 'token')}, {step.duration()}, {fmt_cost(step.cost_usd)}")
        if summary.get("stop") or summary.get("stopped"):
            facts.append(f"stop: {summary.get('stop') or summary.get('stopped')}")
        line = f"[bold cyan]{number:>3}. {escape(where)}[/]  " + escape(" · ".join(facts))
        if summary.get("unfinished"):
            line += (" · " if facts else "") + "[red]unfinished[/]"
        console.print(line, highlight=False)
        for call in step.calls:
            mark = " [dim](replayed)[/]" if call.replayed else ""
            head = f"      {escape(call.agent)}[{call.call_index}]{mark}"
            if call.error:
                console.print(f"{head} [red]error: {escape(call.error)}[/]", highlight=False)
                continue
            tokens = f"{call.tokens('tok')}, {fmt_seconds(call.latency_s)}"
            if full:
                console.print(f"{head} ({tokens})", highlight=False)
                for message in call.messages:
                    content = _indented(message["content"])
                    console.print(f"        [dim]{message['role']}:[/] {content}", highlight=False)
                if call.reasoning:
                    console.print(f"        [dim]reasoning: {_indented(call.reasoning)}[/]", highlight=False)
                console.print(f"        [green]reply:[/] {_indented(call.reply)}", highlight=False)
            else:
                thought = f", reasoned {counted(len(call.reasoning), 'char', spec=',')}" if call.reasoning else ""
                console.print(
                    f"{head} → {escape(_short(call.reply, 110))} [dim]({tokens}{thought})[/]", highlight=False
                )
    for network in story.networks:
        console.print(f"\n[bold]network of {escape(network.node)}[/]")
        for entry in network.history:
            pruned = set()
            ranked = entry.get("ranked")
            if ranked and not ranked.get("reference_compat"):
                pruned = {n["slot"] for n in entry.get("nodes") or [] if n["slot"] not in ranked["kept"]}
            ran = {n["slot"]: n for n in entry.get("nodes") or []}
            parts = []
            for slot, name in enumerate(network.agents):
                if slot not in network.slots_of(entry.get("kind")):
                    continue
                node = ran.get(slot)
                if node is None:
                    parts.append(f"[dim]{escape(name)}: -[/]")
                    continue
                ratings = f" rated {node['ratings']}" if node.get("ratings") is not None else ""
                key, label = node.get("key"), node.get("label")
                # a reply that is no vote (a code writer's, a judge's) is shown by what it gave, as pictures do
                answer = str(key) if key is not None else f"({label})" if label else "no answer"
                text = f"{escape(name)}: {escape(answer)}{escape(ratings)}"
                parts.append(f"[dim strike]{text}[/]" if slot in pruned else text)
            kept = f" · ranker kept {[network.agents[s] for s in ranked['kept']]}" if ranked else ""
            kind = entry.get("kind") or "round"
            cut = " (cut short: the run stopped in it)" if entry.get("cut_short") else ""  # its answers so far
            console.print(f"  {kind} {entry['round']}{cut}: " + "; ".join(parts) + escape(kept), highlight=False)
        if network.importance:
            # written with the decimals that tell close scores apart (0.3334 and 0.3333 both read 0.333)
            ranked = ranked_apart(network.importance, at_least=3)
            console.print("  importance: " + ", ".join(f"{escape(a)} {v}" for a, v in ranked), highlight=False)
    console.print(f"\n[bold]stop reason[/] {escape(story.run.stop_reason or '-')}", highlight=False)


def _indented(text: str) -> str:
    """Escaped text whose later lines stay under the first (a prompt's lines otherwise ran back to the margin,
    where they read as the next call of the timeline)."""
    return escape(text).replace("\n", "\n" + " " * 10)


def _stop_kind(reason: str | None) -> str:
    """A stop reason's first word or words (``consensus``, ``completed``, ``budget``, ``error``): what a narrow
    table has room for."""
    if not reason:
        return "-"
    return re.split(r" \(|:| at | in ", reason, maxsplit=1)[0][:14]


def _short(value: Any, limit: int) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _events_table(stored: list[EventRecord], full: bool) -> None:
    from agentmesh.runtime.recorded_calls import CALL_KINDS

    table = Table(title="events", show_lines=full)
    for col in ("#", "kind", "node", "agent", "round", "call", "try", "tokens", "latency", "cost", "result"):
        table.add_column(col, overflow="fold")
    for e in stored:
        table.add_row(
            str(e.seq),
            escape(e.kind),
            escape(e.node or ""),
            escape(e.agent or ""),
            "" if e.round is None else str(e.round),
            "" if e.call_index is None else str(e.call_index),
            "" if e.attempt is None else str(e.attempt),
            _tokens(e),
            fmt_seconds(e.latency_s),
            fmt_cost(e.cost_usd) if e.kind in CALL_KINDS else "",  # (a node's result costs nothing: not "n/a")
            _result(e, full),
        )
    console.print(table)


def _summary(r: RunRecord) -> Panel:
    t: dict[str, Any] = r.totals or {}
    duration = (r.finished_at - r.created_at).total_seconds() if r.finished_at else None
    lines = [  # every stored value escaped: "[/x]" in an input, an error or a model's name is text, not markup
        f"[bold]run[/] {r.id}",
        f"[bold]graph[/] {escape(r.graph)}" + (f"  (spec {r.spec_hash[:12]})" if r.spec_hash else ""),
        f"[bold]status[/] {_status(r.status)}   [bold]stop reason[/] {escape(r.stop_reason or '-')}",
        f"[bold]model[/] {escape(r.model or '-')}",
        f"[bold]inputs[/] {escape(json.dumps(r.inputs, ensure_ascii=False)[:500])}",
        f"[bold]created[/] {_when(r.created_at)}   [bold]finished[/] {_when(r.finished_at)}   "
        f"[bold]duration[/] {fmt_seconds(duration)}",
        f"[bold]calls[/] {t.get('calls', 0)}   [bold]tokens[/] {t.get('prompt_tokens', 0)} in + "
        f"{t.get('completion_tokens', 0)} out{' (some estimated)' if t.get('estimated_tokens') else ''}   "
        f"[bold]cost[/] {fmt_cost(t.get('cost_usd'))}   [bold]errors[/] {t.get('errors', 0)}",
    ]
    if r.parent_run_id:
        lines.append(f"[bold]forked from[/] {r.parent_run_id}")
    batch = r.meta.get("batch")
    if isinstance(batch, dict) and batch.get("id"):
        where = f"{batch.get('file')} line {batch.get('line')}" if batch.get("file") else ""
        lines.append(
            f"[bold]batch[/] {escape(str(batch['id']))}" + (f"   [bold]item[/] {escape(where)}" if where else "")
        )
    if r.error:
        lines.append(f"[bold red]error[/] {escape(r.error)}")
    return Panel("\n".join(lines), title=Text(f"{r.graph} run"), expand=False)


def _status(status: str) -> str:
    style = _STATUS_STYLE.get(str(status), "white")
    return f"[{style}]{status}[/]"


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _tokens(e: EventRecord) -> str:
    if e.total_tokens is None:
        return ""
    return f"{e.prompt_tokens}+{e.completion_tokens}" + ("~" if e.usage_estimated else "")


def _result(e: EventRecord, full: bool) -> str:
    if e.error:
        return f"[red]{escape(e.error)}[/]"
    text = ""
    if e.kind in ("model_call", "replayed_call") and isinstance(e.response, dict):
        choices = e.response.get("choices") or []
        text = " | ".join(str(c.get("text", "")) for c in choices)
        if full and any(c.get("reasoning") for c in choices):
            text = " | ".join(f"(reasoning: {c['reasoning']}) " for c in choices if c.get("reasoning")) + text
    elif e.data is not None:
        text = json.dumps(e.data, ensure_ascii=False)
    text = text.strip()
    if not full and len(text) > 160:
        text = text[:157] + "…"
    return escape(text)
