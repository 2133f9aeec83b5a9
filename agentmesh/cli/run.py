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
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agentmesh import datasets
from agentmesh.cli._common import (
    WIDE,
    DbOption,
    JsonOption,
    console,
    err_console,
    fmt_cost,
    open_store,
    run_async,
)
from agentmesh.cli._live import LiveView, final_panel, snippet
from agentmesh.cli._progress import WorkProgress
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.runtime.context import Listener
from agentmesh.runtime.recorded_model import model_for
from agentmesh.runtime.run import DEFAULT_MODEL, RunResult, aresume, arun, check_inputs, resolve_graph
from agentmesh.spec.graph import GraphSpec, InputSpec
from agentmesh.spec.loader import graph_from_data
from agentmesh.spec.stop import Budget
from agentmesh.store import RunRecord, RunStatus, Store

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


def _positive(value: float | None, flag: str) -> float | None:
    """typer's ``min`` is inclusive; a budget of 0 would stop every run before its first call."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value:g} is not a positive number", param_hint=flag)
    return value


# --- the commands ---------------------------------------------------------------------------------------------


def run_graph(
    graph: Annotated[str, typer.Argument(help="A graph file (YAML) or a built-in graph name such as 'debate'.")],
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            help="An input as key=value, typed from the graph's inputs (key=@file: the file's text); repeatable.",
        ),
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
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, help="Only the first N items of --input-file (a quick look first)."),
    ] = None,
    max_calls: Annotated[
        int | None, typer.Option("--max-calls", min=1, help="Budget of model calls per run (best answer so far).")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Budget of tokens (prompt + completion) per run.")
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost", callback=lambda v: _positive(v, "--max-cost"), help="Budget in USD per run."),
    ] = None,
    max_seconds: Annotated[
        float | None,
        typer.Option("--max-seconds", callback=lambda v: _positive(v, "--max-seconds"), help="Wall time per run."),
    ] = None,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Run a graph on inputs and print its answer, with a live view of rounds, agents and answers.

    The ``--max-*`` budgets are shared by every agent of a run and add to the graph's own: when one is spent, no
    further call starts and the run ends with its best answer so far (its stop reason says which budget)."""
    if as_json and quiet:
        raise ConfigError("--json and --quiet exclude each other: pick one output form")
    spec = resolve_graph(graph)
    given = parse_inputs(spec, inputs or [])
    limits = {"calls": max_calls, "tokens": max_tokens, "cost_usd": max_cost, "wall_s": max_seconds}
    budget = Budget(**limits) if any(v is not None for v in limits.values()) else None
    if input_file is not None:
        # every line checked before any run starts; benchmark formats mapped to the graph's inputs, their
        # reference answers kept aside
        items = datasets.read_items(input_file, spec, given)[:limit]
        _run_batch(
            spec,
            items,
            source=input_file,
            model=model,
            db=db,
            budget=budget,
            concurrency=concurrency,
            as_json=as_json,
            quiet=quiet,
        )
        return
    if limit is not None:
        raise ConfigError("--limit takes the first items of an --input-file; there is none")
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
    runs: Annotated[
        list[str] | None,
        typer.Argument(help="Run ids or unique prefixes of them; several are resumed as a batch.", metavar="RUN..."),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option("--batch", "-b", help="Every interrupted or failed run of this batch (run --input-file's)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model reference or alias (default: each run's model).")
    ] = None,
    db: DbOption = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Runs resumed at once.")] = 4,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Continue interrupted or failed runs from their last checkpoints; finished model calls are not made again."""
    if as_json and quiet:
        raise ConfigError("--json and --quiet exclude each other: pick one output form")
    if bool(runs) == (batch is not None):
        raise ConfigError("give the runs to resume, or --batch ID (not both)")
    with open_store(db) as store:
        if batch is not None:
            records = _unfinished_of(store, batch)
        else:
            records = list({r.id: r for r in (store.get_run(run) for run in runs or [])}.values())
    done = [r.id[:12] for r in records if r.status == "succeeded"]
    if done:  # found before anything is resumed, rather than as one failed row among the others
        raise ConfigError(f"run {', '.join(done)} already succeeded; nothing to resume (nothing was resumed)")
    if len(records) == 1 and batch is None:  # one run: its live view (a batch's keeps its summary, accuracy included)
        (record,) = records
        spec = graph_from_data(record.meta.get("spec"), file=f"run {record.id} (stored spec)")
        _run_one(
            spec,
            lambda listeners, store: aresume(record.id, store=store, model=model, listeners=listeners),
            db=db,
            as_json=as_json,
            quiet=quiet,
            prefill=False,
        )
        return
    # One client for every run when a model is given (one connection pool); else each run its own stored model.
    client = model_for(model, db) if model else None

    def work(store: Store) -> list[tuple[ItemOutcome, Start]]:
        def start(run_id: str) -> Start:
            return lambda listeners: aresume(run_id, store=store, model=client, listeners=listeners)

        def outcome(r: RunRecord) -> ItemOutcome:
            if batch is None:  # runs of anything: named by their graph
                return ItemOutcome(line=None, inputs=dict(r.inputs), label=r.graph, run_id=r.id)
            tag = r.meta.get("batch") or {}  # one batch's items: by their line, as it showed them
            return ItemOutcome(
                line=tag.get("line"), inputs=dict(r.inputs), run_id=r.id, batch=batch, gold=tag.get("gold")
            )

        return [(outcome(r), start(r.id)) for r in records]

    _run_many(
        "resume",
        work,
        noun="runs",
        db=db,
        concurrency=concurrency,
        as_json=as_json,
        quiet=quiet,
        close=None if client is None else client.aclose,
        batch=batch,
    )


def _unfinished_of(store: Store, batch: str) -> list[RunRecord]:
    """The runs of ``batch`` to resume: its interrupted and failed ones, in the batch's order. Runs still marked
    running are left out (another process may be running them; a dead one's can be resumed by id)."""
    found = store.list_runs(batch=batch, limit=1_000_000)
    if not found:
        raise ConfigError(f"no runs of batch {batch!r} in {store.url} (agentmesh show RUN names the batch of a run)")
    todo = [r for r in found if r.status in (RunStatus.INTERRUPTED, RunStatus.FAILED)]
    if not todo:
        counts = Counter(str(r.status) for r in found)
        told = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        raise ConfigError(f"batch {batch}: nothing to resume ({told}); a running run is resumed by its id")
    return sorted(todo, key=lambda r: int((r.meta.get("batch") or {}).get("line") or 0))


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
        raw = _file_or_text(name, raw)
        ispec = spec.inputs.get(name)
        out[name] = raw if ispec is None else _typed(spec, name, ispec, raw)
    return out


def _file_or_text(name: str, raw: str) -> str:
    """``@path`` is the text of that file (a document, a patch, a JSON object: what does not fit a command line,
    as in httpie and curl); ``\\@...`` is a value that starts with ``@``."""
    if raw.startswith("\\@"):
        return raw[1:]
    if not raw.startswith("@"):
        return raw
    path = Path(raw[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(
            f"-i {name}=@{path}: cannot read {path} ({why}); a value starting with @ is read from that file "
            f"(write -i {name}='\\@...' for a value that starts with @)",
            input=name,
            file=str(path),
        ) from exc


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

    The live view is only drawn on a terminal; elsewhere (pipes, tests, CI logs) the same blocks are printed as
    each round finishes, then the final panel, so the output is informative either way.
    """
    shown = not as_json and not quiet
    live = shown and console.is_terminal
    view = LiveView(spec, prefill=prefill, stream=console if shown and not live else None)
    with open_store(db) as store:
        try:
            if live:
                with Live(view, console=console, transient=True, refresh_per_second=8):
                    result: RunResult = run_async(start([view.on_event], store))
            else:
                result = run_async(start([view.on_event], store))
        except (Exception, KeyboardInterrupt) as exc:  # AgentmeshError, or a bug: the run is stored as failed
            if view.run_id is not None:  # the run exists: show how far it got and how to continue it
                what = "was interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                if shown:
                    view.cut_short(f"no answer: the run {what}")
                    console.print(view.rest())
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
        console.print(view.rest())
        console.print(final_panel(result))


# --- many items -----------------------------------------------------------------------------------------------


@dataclass
class ItemOutcome:
    """One run of a batch (a JSONL item's, or a resumed one): its result, or why it failed (the run is stored
    either way, once it started)."""

    line: int | None  # the item's line in its JSONL file (None: a resumed run)
    inputs: dict[str, Any]
    label: str = ""  # what the summary's first column shows instead of the line
    run_id: str | None = None
    result: RunResult | None = None
    error: str | None = None
    totals: dict[str, Any] = field(default_factory=dict)
    batch: str | None = None  # the batch id its run is tagged with (``run --input-file``)
    gold: str | None = None  # the item's reference answer, normalised as answers are, when its line had one

    @property
    def correct(self) -> bool | None:
        """Whether the run's answer is the reference answer (``None``: no reference, or the run did not end)."""
        if self.gold is None or self.result is None:
            return None
        return self.result.answer is not None and str(self.result.answer) == self.gold

    @property
    def over(self) -> bool:
        """The run ended, with a result or an error (not: cut short by an interrupt, or never started)."""
        return self.result is not None or self.error is not None

    @property
    def status(self) -> str:
        return self.result.status if self.result is not None else "failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "line": self.line,
            "inputs": self.inputs,
            "run_id": self.run_id,
            "status": self.status,
            "gold": self.gold,
            "correct": self.correct,
            "error": self.error,
            "result": None if self.result is None else self.result.model_dump(mode="json"),
        }


def _run_batch(
    spec: GraphSpec,
    items: list[datasets.Item],
    *,
    source: Path,
    model: str | None,
    db: str | None,
    budget: Budget | None,
    concurrency: int,
    as_json: bool,
    quiet: bool,
) -> None:
    # One client for every item: one connection pool, and the reference fails here, before any run exists.
    client = model_for(model or spec.model or DEFAULT_MODEL, db)
    # Every run of the batch says where it came from (meta.batch), so that the batch can be found again, whole
    # (agentmesh runs --batch ID), long after its summary scrolled away.
    batch = uuid.uuid4().hex[:12]

    def work(store: Store) -> list[tuple[ItemOutcome, Start]]:
        def start(item: datasets.Item) -> Start:
            where = {"id": batch, "file": str(source.resolve()), "line": item.line, "items": len(items)}
            meta = {"batch": {**where, **({"gold": item.gold} if item.gold is not None else {})}}
            return lambda listeners: arun(
                spec, item.inputs, model=client, store=store, budget=budget, listeners=listeners, meta=meta
            )

        return [
            (ItemOutcome(line=item.line, inputs=item.inputs, batch=batch, gold=item.gold), start(item))
            for item in items
        ]

    _run_many(
        spec.name,
        work,
        noun="items",
        db=db,
        concurrency=concurrency,
        as_json=as_json,
        quiet=quiet,
        close=client.aclose,
        batch=batch,
    )


Start = Callable[[list[Listener]], Coroutine[Any, Any, RunResult]]
"""Starts one run of a batch with the given listeners (``arun`` or ``aresume`` with its arguments bound)."""


def _run_many(
    name: str,
    work: Callable[[Store], list[tuple[ItemOutcome, Start]]],
    *,
    noun: str,
    db: str | None,
    concurrency: int,
    as_json: bool,
    quiet: bool,
    close: Callable[[], Coroutine[Any, Any, None]] | None = None,
    batch: str | None = None,
) -> None:
    """Run a batch (``work`` builds its runs on the opened store) showing its progress, then print its summary;
    exit 1 if a run failed. Interrupted, it says which runs were cut short and how to continue them. ``close``
    (a shared model client's) is awaited on the batch's own event loop once every run is over; ``batch`` is the id
    its runs are tagged with, if any, said at the end."""
    with open_store(db) as store:
        runs = work(store)
        counters = {"failed": 0, "calls": 0}
        progress = WorkProgress(
            name, len(runs), console=console, log=err_console, enabled=not as_json and not quiet, unit=noun
        )

        def note() -> str:
            return f"{counters['failed']} failed · {counters['calls']} calls"

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "call":
                counters["calls"] += 1
                progress.update(note=note())

        def done(outcome: ItemOutcome) -> None:
            if outcome.result is None:
                counters["failed"] += 1
            progress.update(advance=1, note=note())

        try:
            with progress:
                outcomes = run_async(run_all(runs, concurrency, on_event, done, close=close))
        except KeyboardInterrupt:  # each outcome says how far its run got (a resumed one has its id from the start)
            over = sum(o.over for o, _ in runs)
            cut = [o.run_id for o, _ in runs if o.run_id is not None and not o.over]
            err_console.print(
                f"interrupted: {over} of {len(runs)} {noun} had finished, {len(cut)} runs were cut short and "
                f"{len(runs) - over - len(cut)} never started. The cut runs are stored: continue them with "
                "[bold]agentmesh resume RUN...[/] (finished calls are not made again): "
                + (" ".join(r[:12] for r in cut) or "none")
                + (f"; or all the batch's at once: agentmesh resume --batch {batch}" if batch else ""),
                highlight=False,
            )
            raise
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
        title = f"{name}: {len(outcomes)} {noun}"
        if len(outcomes) <= SUMMARY_ROWS:
            console.print(summary_table(title, outcomes))
        else:  # a row per item would bury the failures in a long log: how the runs ended, then each failure
            console.print(digest_table(title, outcomes))
            not_succeeded = [o for o in outcomes if o.status != "succeeded"]
            if not_succeeded:
                shown = not_succeeded[:SUMMARY_ROWS]
                more = len(not_succeeded) - len(shown)
                table = summary_table(f"not succeeded: {len(not_succeeded)} {noun}", shown, reason_chars=60)
                if more:
                    table.caption = f"and {more} more; every {noun[:-1]}: --json"
                console.print(table)
            console.print(f"every {noun[:-1]}'s answer and run: --json", highlight=False)
        score = accuracy_line(outcomes, "items" if noun == "items" else "resumed runs")
        if score:
            console.print(score, highlight=False)
        line = f"{len(outcomes)} {noun}: {len(outcomes) - failed} succeeded, {failed} failed"
        if batch:
            line += f" · batch {batch} (agentmesh runs --batch {batch})"
        if failed:
            line += (
                " · failed runs are stored: see them with agentmesh show <run>, continue with agentmesh resume <run>"
            )
        console.print(line, highlight=False)
    if failed:
        raise typer.Exit(1)


async def run_all(
    runs: list[tuple[ItemOutcome, Start]],
    concurrency: int,
    on_event: Listener,
    on_done: Callable[[ItemOutcome], None],
    *,
    close: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> list[ItemOutcome]:
    """Every run, at most ``concurrency`` at once; a failure is kept in its outcome, never raised. ``close`` is
    awaited at the end, however the runs ended."""
    gate = asyncio.Semaphore(concurrency)

    async def one(outcome: ItemOutcome, start: Start) -> ItemOutcome:
        def started(kind: str, data: dict[str, Any]) -> None:
            if kind == "start":
                outcome.run_id = str(data["run_id"])

        async with gate:
            try:
                outcome.result = await start([started, on_event])
            except Exception as exc:  # one bad run must not sink the batch; the run records it as failed
                outcome.error = str(exc) if isinstance(exc, AgentmeshError) else f"{type(exc).__name__}: {exc}"
        on_done(outcome)
        return outcome

    try:
        return list(await asyncio.gather(*(one(outcome, start) for outcome, start in runs)))
    finally:
        if close is not None:
            await close()


#: A batch's summary has a row per item up to this many items; a larger one is summed up by how its runs ended.
SUMMARY_ROWS = 25


def digest_table(title: str, outcomes: Sequence[ItemOutcome]) -> Table:
    """How a batch's runs ended, one row per status and stop reason (or error), succeeded first and the most
    frequent first within a status: items, calls, tokens and cost of each, and a total."""
    groups: dict[tuple[str, str], list[ItemOutcome]] = {}
    for o in outcomes:
        why = (o.result.stop_reason or "-") if o.result is not None else snippet(o.error or "failed", 160)
        groups.setdefault((o.status, why), []).append(o)
    table = Table(title=Text(title), show_footer=True)
    table.add_column("status", "total", no_wrap=True)
    table.add_column("stop reason / error", overflow="fold")
    usage = [_usage(o) for o in outcomes]
    footers = [
        str(len(outcomes)),
        str(sum(u[0] for u in usage)),
        str(sum(u[1] for u in usage)),
        fmt_cost(_total_cost(u[2] for u in usage)),
    ]
    for column, footer in zip(("items", "calls", "tokens", "cost"), footers, strict=True):
        table.add_column(column, footer, justify="right", no_wrap=True)
    order = {status: i for i, status in enumerate(("succeeded", "stopped", "interrupted", "failed"))}
    for (status, why), members in sorted(groups.items(), key=lambda g: (order.get(g[0][0], 9), -len(g[1]), g[0])):
        usage = [_usage(o) for o in members]
        table.add_row(
            Text(status, style="green" if status == "succeeded" else "red"),
            Text(why, style="" if status == "succeeded" else "red"),
            str(len(members)),
            str(sum(u[0] for u in usage)),
            str(sum(u[1] for u in usage)),
            fmt_cost(_total_cost(u[2] for u in usage)),
        )
    return table


def _gold(o: ItemOutcome) -> Text:
    """The reference answer, ticked when the run found it."""
    if o.gold is None:
        return Text("-")
    mark = {True: (" ✓", "green"), False: (" ✗", "red"), None: ("", "")}[o.correct]
    return Text(o.gold) + Text(mark[0], style=mark[1])


def accuracy_line(outcomes: Sequence[ItemOutcome], noun: str = "items") -> str:
    """How many labelled items the batch got right ("" when no item has a reference answer). A run that failed
    counts as wrong; the share of the runs that finished is given beside it when some failed. (A resumed batch
    says it of the runs it resumed: ``noun``.)"""
    labelled = [o for o in outcomes if o.gold is not None]
    if not labelled:
        return ""
    right = sum(1 for o in labelled if o.correct)
    what = "labelled items" if noun == "items" else f"labelled {noun}"
    line = f"accuracy: {right} of {len(labelled)} {what} right ({right / len(labelled):.1%})"
    ended = [o for o in labelled if o.correct is not None]
    if len(ended) < len(labelled):
        share = f"{right / len(ended):.1%}" if ended else "-"
        line += (
            f"; {len(labelled) - len(ended)} failed, counted as wrong ({right} of the {len(ended)} that ended: {share})"
        )
    return line


def _usage(o: ItemOutcome) -> tuple[int, int, float | None]:
    """(calls, tokens, cost) of a batch's run, from its result or, for a failed one, its stored totals."""
    r = o.result
    if r is not None:
        return r.calls, r.prompt_tokens + r.completion_tokens, r.cost_usd
    return int(o.totals.get("calls", 0)), int(o.totals.get("total_tokens", 0)), o.totals.get("cost_usd")


def _total_cost(costs: Iterable[float | None]) -> float | None:
    """The sum of known costs; unknown (None) only when no cost is known."""
    known = [c for c in costs if c is not None]
    return sum(known) if known else None


def summary_table(title: str, outcomes: Sequence[ItemOutcome], *, reason_chars: int = 160) -> Table:
    """One row per item: its line, run, status, answer, calls (tokens and cost on a wide terminal, see
    :data:`WIDE`), stop reason or error (its first ``reason_chars`` characters)."""
    wide = console.width >= WIDE
    labelled = any(o.gold is not None for o in outcomes)
    table = Table(title=Text(title), caption=None if wide else "tokens, cost: --json")
    columns = ["item", "run", "status", "answer", *(["gold"] if labelled else []), "calls"]
    columns += [*(["tokens", "cost"] if wide else []), "stop reason / error"]
    for column in columns:
        fixed = column in ("item", "run", "status", "calls", "tokens", "cost")
        table.add_column(
            column,
            no_wrap=fixed,
            overflow="fold",
            justify="right" if column in ("calls", "tokens", "cost") else "left",
        )
    for o in outcomes:
        r = o.result
        calls, tokens, cost = _usage(o)
        if r is not None:
            answer, reason = "-" if r.answer is None else str(r.answer), Text(r.stop_reason or "-")
        else:
            answer, reason = "-", Text(snippet(o.error or "failed", reason_chars), style="red")
        cells: dict[str, str | Text] = {
            "item": Text(o.label or f"line {o.line}"),
            "run": o.run_id[:12] if o.run_id else "-",
            "status": Text(o.status, style="green" if o.status == "succeeded" else "red"),
            "answer": Text(answer),
            "gold": _gold(o),
            "calls": str(calls),
            "tokens": str(tokens),
            "cost": fmt_cost(cost),
            "stop reason / error": reason,
        }
        table.add_row(*(cells[c] for c in columns))
    return table
