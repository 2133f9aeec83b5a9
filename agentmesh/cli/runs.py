"""``agentmesh runs`` and ``agentmesh show``: what is in the store."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from agentmesh.cli._common import DbOption, JsonOption, console, fmt_cost, fmt_seconds, open_store
from agentmesh.store import EventRecord, RunRecord

_STATUS_STYLE = {"succeeded": "green", "failed": "red", "running": "yellow", "interrupted": "magenta"}


def list_runs(
    graph: Annotated[str | None, typer.Option("--graph", "-g", help="Only runs of this graph.")] = None,
    status: Annotated[str | None, typer.Option("--status", "-s", help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List stored runs, newest first."""
    with open_store(db) as store:
        found = store.list_runs(graph=graph, status=status, limit=limit)
    if as_json:
        console.print_json(json.dumps([r.model_dump(mode="json") for r in found]))
        return
    if not found:
        console.print("no runs" + (" matching the filters" if graph or status else " yet"))
        return
    table = Table(title=f"runs ({len(found)})")
    for col in ("id", "graph", "status", "stop reason", "model", "calls", "tokens", "cost", "created"):
        table.add_column(col, overflow="fold")
    for r in found:
        t = r.totals or {}
        table.add_row(
            r.id[:12],
            r.graph,
            _status(r.status),
            r.stop_reason or "",
            r.model or "",
            str(t.get("calls", 0)),
            str(t.get("total_tokens", 0)),
            fmt_cost(t.get("cost_usd")),
            _when(r.created_at),
        )
    console.print(table)


def show(
    run: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    db: DbOption = None,
    as_json: JsonOption = False,
    full: Annotated[bool, typer.Option("--full", help="Print prompts and answers in full.")] = False,
) -> None:
    """Summary of a run, then its events: every model call with tokens, latency, cost and errors."""
    with open_store(db) as store:
        record = store.get_run(run)
        events = store.events(record.id)
    if as_json:
        console.print_json(
            json.dumps({"run": record.model_dump(mode="json"), "events": [e.model_dump(mode="json") for e in events]})
        )
        return
    console.print(_summary(record))
    if not events:
        console.print("no events recorded")
        return
    table = Table(title="events", show_lines=full)
    for col in ("#", "kind", "node", "agent", "round", "call", "try", "tokens", "latency", "cost", "result"):
        table.add_column(col, overflow="fold")
    for e in events:
        table.add_row(
            str(e.seq),
            e.kind,
            e.node or "",
            e.agent or "",
            "" if e.round is None else str(e.round),
            "" if e.call_index is None else str(e.call_index),
            "" if e.attempt is None else str(e.attempt),
            _tokens(e),
            fmt_seconds(e.latency_s),
            fmt_cost(e.cost_usd),
            _result(e, full),
        )
    console.print(table)


def _summary(r: RunRecord) -> Panel:
    t: dict[str, Any] = r.totals or {}
    duration = (r.finished_at - r.created_at).total_seconds() if r.finished_at else None
    lines = [
        f"[bold]run[/] {r.id}",
        f"[bold]graph[/] {r.graph}" + (f"  (spec {r.spec_hash[:12]})" if r.spec_hash else ""),
        f"[bold]status[/] {_status(r.status)}   [bold]stop reason[/] {r.stop_reason or '-'}",
        f"[bold]model[/] {r.model or '-'}",
        f"[bold]inputs[/] {json.dumps(r.inputs, ensure_ascii=False)[:500]}",
        f"[bold]created[/] {_when(r.created_at)}   [bold]finished[/] {_when(r.finished_at)}   "
        f"[bold]duration[/] {fmt_seconds(duration)}",
        f"[bold]calls[/] {t.get('calls', 0)}   [bold]tokens[/] {t.get('prompt_tokens', 0)} in + "
        f"{t.get('completion_tokens', 0)} out{' (some estimated)' if t.get('estimated_tokens') else ''}   "
        f"[bold]cost[/] {fmt_cost(t.get('cost_usd'))}   [bold]errors[/] {t.get('errors', 0)}",
    ]
    if r.parent_run_id:
        lines.append(f"[bold]forked from[/] {r.parent_run_id}")
    if r.error:
        lines.append(f"[bold red]error[/] {r.error}")
    return Panel("\n".join(lines), title=f"{r.graph} run", expand=False)


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
        return f"[red]{e.error}[/]"
    text = ""
    if e.kind == "model_call" and isinstance(e.response, dict):
        choices = e.response.get("choices") or []
        text = " | ".join(str(c.get("text", "")) for c in choices)
    elif e.data is not None:
        text = json.dumps(e.data, ensure_ascii=False)
    text = text.strip()
    if not full and len(text) > 160:
        text = text[:157] + "…"
    return text.replace("[", "\\[")
