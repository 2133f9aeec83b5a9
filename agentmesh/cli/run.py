"""``agentmesh run`` and ``agentmesh resume``: run a graph on inputs (one item, or many from a JSONL file) and
watch it work.

One item gets a live view fed by the runtime's listener events: per round of each node, its agents and their
answers as they arrive, the node's stop notes, then a final panel with the answer, the stop reason and where the
run is stored. Many items run concurrently (each its own stored run) under a progress bar and end with a summary
table; one failing item does not stop the others, but makes the exit code 1.

Everything the user could get wrong (graph, inputs, the JSONL file, the model reference) is checked before the
first run is created, so a typo never leaves half a batch in the store.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agentmesh.cli._common import DbOption, JsonOption, console, err_console, fmt_cost, open_store
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.models import ModelClient, get_model
from agentmesh.runtime.context import Listener
from agentmesh.runtime.run import DEFAULT_MODEL, RunResult, aresume, arun, check_inputs, resolve_graph
from agentmesh.spec.graph import GraphSpec, InputSpec
from agentmesh.spec.loader import graph_from_data
from agentmesh.spec.operators import CallParams, RoundsParams, TeamParams
from agentmesh.spec.stop import Budget
from agentmesh.store import Store

ModelOption = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model reference or alias (default: the graph's model, else 'local')."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the answer.")]

_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}
_EXAMPLES = {
    "integer": "an integer like 3",
    "number": "a number like 0.5",
    "boolean": "true or false",
    "list": "a JSON list like [1, 2]",
    "object": 'a JSON object like {"k": 1}',
}


# --- the commands ---------------------------------------------------------------------------------------------


def run_graph(
    graph: Annotated[str, typer.Argument(help="A graph file (YAML) or a built-in graph name such as 'debate'.")],
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="An input as key=value, typed from the graph's inputs; repeatable."),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input-file",
            help="JSONL file, one object of inputs per line; each line is its own run (-i values are defaults).",
        ),
    ] = None,
    model: ModelOption = None,
    db: DbOption = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Items run at once.")] = 4,
    max_calls: Annotated[
        int | None, typer.Option("--max-calls", min=1, help="Budget of model calls per run (best answer so far).")
    ] = None,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Run a graph on inputs and print its answer, with a live view of rounds, agents and answers."""
    if as_json and quiet:
        raise ConfigError("--json and --quiet exclude each other: pick one output form")
    spec = resolve_graph(graph)
    given = parse_inputs(spec, inputs or [])
    budget = Budget(calls=max_calls) if max_calls is not None else None
    if input_file is not None:
        items = read_items(input_file, spec, given)
        _run_batch(
            spec, items, model=model, db=db, budget=budget, concurrency=concurrency, as_json=as_json, quiet=quiet
        )
        return
    check_inputs(spec, given)  # also done by arun; here so that a bad input never starts the live view
    _run_one(
        spec,
        lambda listeners, store: arun(spec, given, model=model, store=store, budget=budget, listeners=listeners),
        db=db,
        as_json=as_json,
        quiet=quiet,
        prefill=True,
    )


def resume(
    run: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model reference or alias (default: the run's model).")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Continue an interrupted or failed run from its last checkpoint; finished model calls are not made again."""
    if as_json and quiet:
        raise ConfigError("--json and --quiet exclude each other: pick one output form")
    with open_store(db) as store:
        record = store.get_run(run)
    spec = graph_from_data(record.meta.get("spec"), file=f"run {record.id} (stored spec)")
    _run_one(
        spec,
        lambda listeners, store: aresume(record.id, store=store, model=model, listeners=listeners),
        db=db,
        as_json=as_json,
        quiet=quiet,
        prefill=False,
    )


# --- inputs ---------------------------------------------------------------------------------------------------


def parse_inputs(spec: GraphSpec, pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs typed by the graph's declared inputs.

    The shell only gives strings; the graph says what each input is, so ``-i n=3`` becomes the integer 3 and
    ``-i tags='["a"]'`` a list. Undeclared keys stay strings: :func:`check_inputs` then names them as unknown
    together with what the graph does take.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"-i {pair!r}: expected key=value (e.g. -i question='What is 17*3?')")
        if name in out:
            raise ConfigError(f"-i {name}: input {name!r} given more than once")
        ispec = spec.inputs.get(name)
        out[name] = raw if ispec is None else _typed(spec, name, ispec, raw)
    return out


def _typed(spec: GraphSpec, name: str, ispec: InputSpec, raw: str) -> Any:
    kind = ispec.type
    value: Any = None
    if kind == "string":
        return raw
    if kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            pass
    elif kind == "number":
        try:
            value = float(raw.strip())
        except ValueError:
            value = None
        if value is not None and math.isfinite(value):
            return int(value) if value.is_integer() and "." not in raw and "e" not in raw.lower() else value
    elif kind == "boolean":
        lowered = raw.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
    else:  # list, object: JSON
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list if kind == "list" else dict):
            return value
    raise ConfigError(
        f"-i {name}={raw!r}: input {name!r} of graph {spec.name!r} is of type {kind}; expected {_EXAMPLES[kind]}",
        graph=spec.name,
        input=name,
        expected=kind,
    )


def read_items(path: Path, spec: GraphSpec, defaults: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The items of a JSONL file as ``(line number, checked inputs)``, every line checked before any run starts.

    A batch that fails on line 900 after 899 runs were paid for is the failure this prevents: bad JSON, a line
    that is not an object, a missing or mistyped input all stop here, naming the line.
    """
    if not path.is_file():
        raise ConfigError(f"input file {path} does not exist", file=str(path))
    items: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line.strip())
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})", file=str(path), line=lineno
                ) from exc
            if not isinstance(data, dict):
                raise ConfigError(
                    f"{path}:{lineno}: expected a JSON object of inputs, got {type(data).__name__}",
                    file=str(path),
                    line=lineno,
                )
            try:
                items.append((lineno, check_inputs(spec, {**defaults, **data})))
            except ConfigError as exc:
                raise ConfigError(f"{path}:{lineno}: {exc}", file=str(path), line=lineno) from exc
    if not items:
        raise ConfigError(f"{path}: no items (expected one JSON object of inputs per line)", file=str(path))
    return items


# --- one run: live view and final panel -------------------------------------------------------------------


def _run_one(
    spec: GraphSpec,
    start: Callable[[list[Listener], Store], Coroutine[Any, Any, RunResult]],
    *,
    db: str | None,
    as_json: bool,
    quiet: bool,
    prefill: bool,
) -> None:
    """Run ``start(listeners, store)`` (a coroutine factory: arun or aresume) with the live view, then report.

    The live view is only drawn on a terminal; elsewhere (pipes, tests, CI logs) the same transcript and final
    panel are printed once at the end, so the output is informative either way.
    """
    view = LiveView(spec, prefill=prefill)
    live = not as_json and not quiet and console.is_terminal
    with open_store(db) as store:
        try:
            if live:
                with Live(view, console=console, transient=True, refresh_per_second=8):
                    result: RunResult = asyncio.run(start([view.on_event], store))
            else:
                result = asyncio.run(start([view.on_event], store))
        except (Exception, KeyboardInterrupt) as exc:  # AgentmeshError, or a bug: the run is stored as failed
            if view.run_id is not None:  # the run exists: show how far it got and how to continue it
                if not as_json and not quiet:
                    console.print(view.transcript())
                what = "was interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                err_console.print(
                    f"run {view.run_id} {what}; it is stored: continue it with [bold]agentmesh resume "
                    f"{view.run_id[:12]}[/] (finished calls are not made again)",
                    highlight=False,
                )
            raise
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    elif quiet:
        typer.echo("" if result.answer is None else str(result.answer))
    else:
        console.print(view.transcript())
        console.print(final_panel(result))


@dataclass
class _Row:
    slot: int
    agent: str
    key: str | None = None
    text: str = ""
    state: str = "pending"  # pending | ok | error | skipped
    error: str | None = None


@dataclass
class _Block:
    node: str
    round: int
    op: str
    rows: dict[int, _Row] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    finished: bool = False

    @property
    def title(self) -> str:
        return f"{self.node} · round {self.round}" if self.round else self.node


class LiveView:
    """What ``agentmesh run`` draws, built from the run's listener events.

    Events arrive on the event loop's thread while rich redraws from its own refresh thread, so every change
    and every render happens under one lock. Rows of a round are created as pending (``…``) from the spec when
    the round starts, because the runtime reports a call only when it completes: the user sees who is still
    thinking, not just who has answered.
    """

    def __init__(self, spec: GraphSpec, *, prefill: bool = True) -> None:
        self.spec = spec
        self.run_id: str | None = None
        self.model: str | None = None
        self.resumed = False
        self.calls = 0
        self.stop_reason: str | None = None
        self.started = time.monotonic()
        self.blocks: list[_Block] = []
        self._lock = threading.Lock()
        if prefill:
            structure = spec.structure()
            for node in spec.nodes:
                if structure.in_degree(node) == 0:
                    self._open(node, self._first_round(node))

    # events

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        """The :data:`~agentmesh.runtime.context.Listener` to pass to the run."""
        with self._lock:
            if kind == "start":
                self.run_id = str(data.get("run_id"))
                self.model = data.get("model")
                self.resumed = bool(data.get("resumed"))
            elif kind == "call":
                self._on_call(data)
            elif kind == "node":
                self._on_node(data)
            elif kind == "stop":
                self.stop_reason = data.get("reason")
                # rounds announced as pending that never ran (the run stopped first) are not part of the story
                self.blocks = [
                    b for b in self.blocks if b.finished or any(r.state != "pending" for r in b.rows.values())
                ]

    def _on_call(self, data: Mapping[str, Any]) -> None:
        self.calls += 1
        block = self._block(str(data["node"]), int(data.get("round") or 0))
        slot = int(data.get("slot") or 0)
        row = block.rows.get(slot) or _Row(slot=slot, agent=str(data.get("agent")))
        row.agent = str(data.get("agent"))
        row.key = data.get("key")
        row.text = str(data.get("text") or "")
        row.state = "ok" if data.get("ok", True) else "error"
        row.error = data.get("error")
        block.rows[slot] = row

    def _on_node(self, data: Mapping[str, Any]) -> None:
        node = str(data["node"])
        block = self._block(node, int(data.get("round") or 0), prefill=False)
        answered = {a.get("slot") for a in data.get("answers") or []}
        for row in block.rows.values():
            if row.state == "pending":
                row.state = "ok" if row.slot in answered else "skipped"
        block.notes = _notes(data)
        block.finished = True
        params = self.spec.nodes[node].params if node in self.spec.nodes else None
        rounds_left = isinstance(params, RoundsParams) and not data.get("done") and not data.get("stopped")
        if rounds_left and self.stop_reason is None:
            self._open(node, block.round + 1)

    # blocks

    def _first_round(self, node: str) -> int:
        return 1 if isinstance(self.spec.nodes[node].params, RoundsParams) else 0

    def _expected(self, node: str) -> list[str]:
        """The agents a node calls in one round, by slot, when the spec says so (else rows appear as they come)."""
        params = self.spec.nodes[node].params if node in self.spec.nodes else None
        if isinstance(params, RoundsParams | TeamParams):
            return list(params.agents)
        if isinstance(params, CallParams):
            return [params.agent]
        return []

    def _open(self, node: str, round_no: int, *, prefill: bool = True) -> _Block:
        op = self.spec.nodes[node].op if node in self.spec.nodes else "?"
        block = _Block(node=node, round=round_no, op=op)
        if prefill:
            block.rows = {i: _Row(slot=i, agent=a) for i, a in enumerate(self._expected(node))}
        self.blocks.append(block)
        return block

    def _block(self, node: str, round_no: int, *, prefill: bool = True) -> _Block:
        """The open block of ``node`` at ``round_no``; a node that runs again (in a loop) gets a new block."""
        for block in reversed(self.blocks):
            if block.node == node and block.round == round_no and not block.finished:
                return block
        return self._open(node, round_no, prefill=prefill)

    # rendering

    def header(self) -> Text:
        text = Text()
        text.append(f"{self.spec.name}", style="bold")
        if self.run_id:
            text.append(f" · run {self.run_id}" + (" (resumed)" if self.resumed else ""))
        if self.model:
            text.append(f" · {self.model}")
        text.append(f" · {self.calls} call{'s' if self.calls != 1 else ''} · {time.monotonic() - self.started:.1f} s")
        return text

    def transcript(self) -> RenderableType:
        """Every block, in order: what is printed once the run is over."""
        with self._lock:
            return Group(self.header(), *(_render_block(b) for b in self.blocks))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The live frame: the header and as many of the latest blocks as fit the terminal."""
        with self._lock:
            budget = max(options.size.height - 2, 6)
            shown: list[_Block] = []
            used = 1
            for block in reversed(self.blocks):
                height = len(block.rows) + 6 if block.rows else 1
                if shown and used + height > budget:
                    break
                shown.append(block)
                used += height
            hidden = len(self.blocks) - len(shown)
            parts: list[RenderableType] = [self.header()]
            if hidden:
                parts.append(Text(f"… {hidden} earlier block{'s' if hidden != 1 else ''}", style="dim"))
            parts.extend(_render_block(b) for b in reversed(shown))
        yield Group(*parts)


def _notes(data: Mapping[str, Any]) -> list[str]:
    """A node's summary as short notes: its answer, why it stopped, whether it continues."""
    notes: list[str] = []
    if data.get("answer") is not None:
        notes.append(f"answer {data['answer']}")
    if data.get("stop"):
        notes.append(f"stop: {data['stop']}")
    if data.get("stopped"):
        notes.append(f"stopped: {data['stopped']}")
    if "taken" in data:
        notes.append(f"took {data['taken']}")
    if "kept" in data:
        notes.append(f"kept {data['kept']}")
    if data.get("scores") is not None:
        notes.append("scores " + ", ".join("-" if s is None else f"{s:g}" for s in data["scores"]))
    if "done" in data and data.get("round"):
        notes.append("done" if data["done"] else "continues")
    return notes


_STATE = {
    "pending": Text("calling", style="yellow"),
    "ok": Text("ok", style="green"),
    "skipped": Text("not called", style="dim"),
}


def _render_block(block: _Block) -> RenderableType:
    notes = " · ".join(block.notes)
    if not block.rows:
        line = Text()
        line.append(block.title, style="bold")
        line.append(f" ({block.op})", style="dim")
        line.append(f": {notes}" if notes else (" …" if not block.finished else ""))
        return line
    table = Table(title=Text(block.title, style="bold"), title_justify="left", expand=False)
    for column in ("slot", "agent", "answer", "status", "reply"):
        table.add_column(column, overflow="fold", max_width=60 if column == "reply" else None)
    for slot in sorted(block.rows):
        row = block.rows[slot]
        answer = (
            Text("…", style="yellow")
            if row.state == "pending"
            else Text(_snippet(str(row.key), 40) if row.key else "-")
        )
        state = _STATE.get(row.state) or Text(f"error: {row.error or 'unparsed'}", style="red")
        table.add_row(str(slot), Text(row.agent), answer, state, Text(_snippet(row.text, 60), style="dim"))
    if not notes:
        return table
    return Group(table, Text(f"  ↳ {notes}", style="italic"))


def _snippet(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def final_panel(result: RunResult) -> Panel:
    """The answer and where it came from: stop reason, stored run, spend, and how to look at it again."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("answer", Text("-" if result.answer is None else str(result.answer), style="bold green"))
    if result.text and result.text.strip() != str(result.answer):
        grid.add_row("reply", Text(_snippet(result.text, 300)))
    grid.add_row("stop reason", Text(result.stop_reason or "-"))
    grid.add_row("run", Text(f"{result.run_id} ({result.status})"))
    calls = str(result.calls)
    if result.served_from_record:
        calls += f" ({result.served_from_record} served from the record, not made again)"
    grid.add_row("calls", calls)
    grid.add_row("tokens", f"{result.prompt_tokens} in + {result.completion_tokens} out")
    grid.add_row("cost", fmt_cost(result.cost_usd))
    grid.add_row("details", Text(f"agentmesh show {result.run_id[:12]}", style="cyan"))
    return Panel(grid, title=f"{result.graph} · {result.status}", title_align="left", expand=False)


# --- many items -----------------------------------------------------------------------------------------------


@dataclass
class ItemOutcome:
    """One JSONL item's run: its result, or why it failed (the run is stored either way, once it started)."""

    line: int
    inputs: dict[str, Any]
    run_id: str | None = None
    result: RunResult | None = None
    error: str | None = None
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.result.status if self.result is not None else "failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "inputs": self.inputs,
            "run_id": self.run_id,
            "status": self.status,
            "error": self.error,
            "result": None if self.result is None else self.result.model_dump(mode="json"),
        }


def _run_batch(
    spec: GraphSpec,
    items: list[tuple[int, dict[str, Any]]],
    *,
    model: str | None,
    db: str | None,
    budget: Budget | None,
    concurrency: int,
    as_json: bool,
    quiet: bool,
) -> None:
    # One client for every item: one connection pool, and the reference fails here, before any run exists.
    client = get_model(model or spec.model or DEFAULT_MODEL)
    show_progress = not as_json and not quiet
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed · {task.fields[calls]} calls"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show_progress,
    )
    with open_store(db) as store, progress:
        task = progress.add_task(f"{spec.name}: {len(items)} items", total=len(items), failed=0, calls=0)
        counters = {"failed": 0, "calls": 0}

        def on_call(kind: str, data: dict[str, Any]) -> None:
            if kind == "call":
                counters["calls"] += 1
                progress.update(task, calls=counters["calls"])

        def done(outcome: ItemOutcome) -> None:
            if outcome.result is None:
                counters["failed"] += 1
            progress.update(task, advance=1, failed=counters["failed"])

        outcomes = asyncio.run(run_items(spec, items, client, store, budget, concurrency, on_call, done))
        for outcome in outcomes:
            if outcome.result is None and outcome.run_id is not None:
                outcome.totals = store.get_run(outcome.run_id).totals or {}
    failed = sum(1 for o in outcomes if o.result is None)
    if as_json:
        typer.echo(json.dumps([o.to_json() for o in outcomes], indent=2, ensure_ascii=False))
    elif quiet:
        for o in outcomes:
            typer.echo("" if o.result is None or o.result.answer is None else str(o.result.answer))
    else:
        console.print(summary_table(spec, outcomes))
        line = f"{len(outcomes)} items: {len(outcomes) - failed} succeeded, {failed} failed"
        if failed:
            line += (
                " · failed runs are stored: see them with agentmesh show <run>, continue with agentmesh resume <run>"
            )
        console.print(line, highlight=False)
    if failed:
        raise typer.Exit(1)


async def run_items(
    spec: GraphSpec,
    items: list[tuple[int, dict[str, Any]]],
    client: ModelClient,
    store: Store,
    budget: Budget | None,
    concurrency: int,
    on_event: Listener,
    on_done: Callable[[ItemOutcome], None],
) -> list[ItemOutcome]:
    """Run every item, at most ``concurrency`` at once; a failure is kept in its outcome, never raised."""
    gate = asyncio.Semaphore(concurrency)

    async def one(line: int, inputs: dict[str, Any]) -> ItemOutcome:
        outcome = ItemOutcome(line=line, inputs=inputs)

        def started(kind: str, data: dict[str, Any]) -> None:
            if kind == "start":
                outcome.run_id = str(data["run_id"])

        async with gate:
            try:
                outcome.result = await arun(
                    spec, inputs, model=client, store=store, budget=budget, listeners=[started, on_event]
                )
            except Exception as exc:  # one bad item must not sink the batch; the run records it as failed
                outcome.error = str(exc) if isinstance(exc, AgentmeshError) else f"{type(exc).__name__}: {exc}"
        on_done(outcome)
        return outcome

    try:
        return list(await asyncio.gather(*(one(line, inputs) for line, inputs in items)))
    finally:
        await client.aclose()


def summary_table(spec: GraphSpec, outcomes: Sequence[ItemOutcome]) -> Table:
    table = Table(title=f"{spec.name}: {len(outcomes)} items")
    for column in ("item", "run", "status", "answer", "calls", "tokens", "cost", "stop reason / error"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        r = o.result
        if r is not None:
            calls, tokens, cost = r.calls, r.prompt_tokens + r.completion_tokens, r.cost_usd
            answer, reason = "-" if r.answer is None else str(r.answer), Text(r.stop_reason or "-")
        else:
            calls, tokens, cost = (
                int(o.totals.get("calls", 0)),
                int(o.totals.get("total_tokens", 0)),
                o.totals.get("cost_usd"),
            )
            answer, reason = "-", Text(_snippet(o.error or "failed", 160), style="red")
        status = Text(o.status, style="green" if o.status == "succeeded" else "red")
        table.add_row(
            f"line {o.line}",
            o.run_id[:12] if o.run_id else "-",
            status,
            Text(answer),
            str(calls),
            str(tokens),
            fmt_cost(cost),
            reason,
        )
    return table
