"""Many runs at once: ``agentmesh run --input-file`` (one run per JSONL item) and ``agentmesh resume`` of several
runs or of a batch.

They run concurrently up to a limit (each its own stored run, tagged with the batch's id) while their progress
shows, on a terminal and off it (:mod:`agentmesh.cli._progress`), then end with a summary: a row per item, or for a
large batch how its runs ended and each run that did not succeed, with the accuracy on the items that carry a
reference answer. One failing item does not stop the others, but makes the exit code 1; an interrupted batch says
which runs to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agentmesh import datasets
from agentmesh.cli._common import NARROW, WIDE, Executor, console, err_console, fmt_cost, open_store, run_async
from agentmesh.cli._job import JobOptions
from agentmesh.cli._live import snippet
from agentmesh.cli._progress import WorkProgress
from agentmesh.errors import AgentmeshError, ConfigError, RunNotFoundError
from agentmesh.models import load_settings
from agentmesh.plugins import imported
from agentmesh.runtime.context import Listener
from agentmesh.runtime.on_ray import RunOnRay, job_payload, run_there, start_ray, worker_db_url
from agentmesh.runtime.recorded_model import model_for
from agentmesh.runtime.run import DEFAULT_MODEL, RunResult, arun
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.loader import graph_from_data
from agentmesh.spec.stop import Budget
from agentmesh.store import RunRecord, RunStatus, Store
from agentmesh.store.owner import OWNER_KEY, current_owner, describe_owner, owner_alive


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
    elsewhere: str | None = None  # left to another process that took the run first (two resumes at once)
    ended: str | None = None  # the status the store has for a run cut as it ended (its result never came back)

    @property
    def correct(self) -> bool | None:
        """Whether the run's answer is the reference answer (``None``: no reference, or the run did not end)."""
        if self.gold is None or self.result is None:
            return None
        return datasets.matches_gold(self.result.answer, self.gold)

    @property
    def over(self) -> bool:
        """The run ended, with a result or an error (not: cut short by an interrupt, or never started)."""
        return self.result is not None or self.error is not None or self.elsewhere is not None or self.ended is not None

    @property
    def failed(self) -> bool:
        """The run ended without a result here (not: left to another process, which is no failure of this one)."""
        return self.result is None and self.elsewhere is None

    @property
    def status(self) -> str:
        if self.result is not None:
            return self.result.status
        return "skipped" if self.elsewhere is not None else "failed"

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
            "skipped": self.elsewhere,
            "result": None if self.result is None else self.result.model_dump(mode="json"),
        }


def run_batch(
    spec: GraphSpec,
    items: list[datasets.Item],
    options: JobOptions,
    *,
    source: Path,
    budget: Budget | None,
    quiet: bool,
    given: Mapping[str, Any] | None = None,
    limit: int | None = None,
    graph_source: str | None = None,
) -> None:
    """Run ``items`` (the lines of ``source`` read with the ``-i`` values ``given``, the first ``limit``) as one
    batch, as ``options`` say (model, concurrency, executor, store, ``--json``). Each run is tagged with the batch,
    its line, and what it takes to read the file again the same way (``given``, ``limit``, the file's hash), so
    that ``resume --batch`` can also start the lines an interruption kept from starting.

    ``graph_source`` (:func:`agentmesh.runtime.run.graph_source` of the graph as the user named it) is stored as
    each run's ``meta.source``, as ``run`` stores it for one run: a replay of a batch's run then checks the graph
    file as it is today. Without it, a replay fell back on the spec stored with the run and said "identical"
    after any edit of the file."""
    # One client for every item: one connection pool, and the reference fails here, before any run exists.
    reference = options.model or spec.model or DEFAULT_MODEL
    client = model_for(reference, options.db)
    # Every run of the batch says where it came from (meta.batch), so that the batch can be found again, whole
    # (agentmesh runs --batch ID), long after its summary scrolled away.
    batch = uuid.uuid4().hex[:12]
    release: Callable[[], None] | None = None
    read_again = {
        "file": str(source.resolve()),
        "items": len(items),
        "given": dict(given or {}),
        "limit": limit,
        "sha256": _file_hash(source),
    }

    def work(store: Store) -> list[tuple[ItemOutcome, Start]]:
        nonlocal release
        on_ray: Callable[[datasets.Item, dict[str, Any]], Start] | None = None
        if options.executor is Executor.RAY:
            shared = job_payload(
                spec,
                reference,
                load_settings(),
                worker_db_url(store, cluster=options.ray_address is not None),
                imported(),
                options.cpus_per_item,
            )
            run_on_ray, release = start_ray(options.ray_address, options.cpus_per_item)
            on_ray = _ray_start(spec, shared, run_on_ray, store, budget)

        def start(item: datasets.Item) -> Start:
            where = {"id": batch, "line": item.line, **read_again}
            meta: dict[str, Any] = {"batch": {**where, **({"gold": item.gold} if item.gold is not None else {})}}
            if graph_source is not None:
                meta["source"] = graph_source
            if on_ray is not None:
                return on_ray(item, meta)
            run_id = batch_run_id(batch, item.line)
            return lambda listeners: start_line(
                store,
                run_id,
                item.line,
                lambda: arun(
                    spec,
                    item.inputs,
                    model=client,
                    store=store,
                    budget=budget,
                    listeners=listeners,
                    meta=meta,
                    run_id=run_id,
                ),
            )

        return [
            (ItemOutcome(line=item.line, inputs=item.inputs, batch=batch, gold=item.gold), start(item))
            for item in items
        ]

    async def close() -> None:
        await client.aclose()
        if release is not None:
            release()

    run_many(
        spec.name,
        work,
        noun="items",
        db=options.db,
        concurrency=options.concurrency,
        as_json=options.as_json,
        quiet=quiet,
        close=close,
        batch=batch,
        source=source,
    )


def _ray_start(
    spec: GraphSpec, shared: dict[str, Any], run_on_ray: RunOnRay, store: Store, budget: Budget | None
) -> Callable[[datasets.Item, dict[str, Any]], Start]:
    """A batch's items as Ray tasks (:mod:`agentmesh.runtime.on_ray`): each run is named here, so the batch can say
    which runs an interruption cut short, and waits for them to be stored as interrupted."""

    def on_ray(item: datasets.Item, meta: dict[str, Any]) -> Start:
        async def start(listeners: list[Listener]) -> RunResult:
            run_id = batch_run_id(str(meta["batch"]["id"]), item.line)
            told = {"run_id": run_id, "graph": spec.name, "model": shared["model"], "resumed": False}
            for listener in listeners:
                listener("start", told)
            try:
                result = await run_there(
                    run_on_ray, store, shared, run_id, inputs=item.inputs, meta=meta, budget=budget
                )
            except AgentmeshError as exc:
                if exc.context.get("run") is None:  # the worker failed before storing the run
                    for listener in listeners:
                        listener("unstored", {"run_id": run_id})
                raise
            for listener in listeners:
                listener("calls", {"count": result.calls - result.served_from_record})
            return result

        return start

    return on_ray


class Elsewhere(Exception):
    """Raised by a batch's :data:`Start` when another process took its run first (it resumed the run, or started
    the line): the outcome is then skipped, neither run here nor failed."""


def batch_run_id(batch: str, line: int) -> str:
    """The id of the run of a batch's line: the same in every process, so that a line is started once however many
    processes start it (the batch itself, and a ``resume --batch`` of it elsewhere while it runs, or two at once):
    the second one's run is refused by the store as already there, rather than run again beside it."""
    return uuid.uuid5(_BATCH_RUNS, f"{batch}:{line}").hex


_BATCH_RUNS = uuid.UUID("6f1d3c52-4a53-4c53-9a0e-0d7a2b1e5b10")


async def start_line(
    store: Store, run_id: str, line: int, run: Callable[[], Coroutine[Any, Any, RunResult]]
) -> RunResult:
    """``run()`` (a batch line's first run, under its :func:`batch_run_id`), or :class:`Elsewhere` when it failed
    because another process had stored that run first: the line is that process's, not a failure here."""
    try:
        return await run()
    except Exception as failure:
        try:
            found = await asyncio.to_thread(store.get_run, run_id)
        except AgentmeshError:
            # not stored: the run failed on its own, before its row was written (a database that refuses writes).
            # Its own error is the one to say: a bare ``raise`` here re-raised the lookup's "no run '<id>'".
            raise failure from None
        owner = found.meta.get(OWNER_KEY)
        if owner == current_owner():  # this process stored it: its own failure
            raise
        raise Elsewhere(
            f"line {line}: {describe_owner(owner)} started it first (run {run_id[:12]}, {found.status}); left to it"
        ) from None


async def resume_claimed(
    store: Store, record: RunRecord, resume: Callable[[], Coroutine[Any, Any, RunResult]]
) -> RunResult:
    """``resume()`` once this process has claimed the run as ``record`` read it (:meth:`Store.aclaim_run`), or
    :class:`Elsewhere` when another process resumed or finished it meanwhile. ``resume`` must not refuse the run
    for being running: claimed, it is, by this process (``aresume(..., force=True)``)."""
    if not await store.aclaim_run(record):
        now = await asyncio.to_thread(store.get_run, record.id)
        raise Elsewhere(
            f"run {record.id[:12]}: {describe_owner(now.meta.get(OWNER_KEY))} resumed it first (it is {now.status} "
            "now); left to it"
        )
    try:
        return await resume()
    except BaseException:
        # failed or cut before it began (a model that does not resolve, a cancel before its first step): the run is
        # given back as it was, not left "running" under this process; one that began was finished by its resume
        with contextlib.suppress(AgentmeshError):  # the store failing too: its first error is the one to say
            store.release_claim(record)
        raise


Start = Callable[[list[Listener]], Coroutine[Any, Any, RunResult]]
"""Starts one run of a batch with the given listeners (``arun`` or ``aresume`` with its arguments bound). A run made
elsewhere (a Ray worker) tells them ``start`` when it is sent, ``calls`` (``count``: the calls it made) when it is
over, and ``unstored`` if its worker failed before storing it."""


def run_many(
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
    source: Path | None = None,
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
            if kind == "call" and not data.get("served"):  # a resumed run's recorded calls are not made again
                counters["calls"] += 1
                progress.update(note=note())
            elif kind == "calls":  # a run made elsewhere (a Ray worker) says its calls once it is over
                counters["calls"] += int(data["count"])
                progress.update(note=note())

        def done(outcome: ItemOutcome) -> None:
            if outcome.failed:
                counters["failed"] += 1
            progress.update(advance=1, note=note())

        try:
            with progress:
                outcomes = run_async(run_all(runs, concurrency, on_event, done, close=close, keep_outputs=as_json))
        except KeyboardInterrupt:  # each outcome says how far its run got (a resumed one has its id from the start)
            if batch is not None:
                _name_runs_stored_unannounced(store, batch, [o for o, _ in runs])
            _mark_runs_that_ended(store, [o for o, _ in runs])
            over = sum(o.over for o, _ in runs)
            cut = [o.run_id for o, _ in runs if o.run_id is not None and not o.over]
            # an item that never started has no stored run: resuming the runs by id does not reach it, resuming the
            # batch does (it reads the file again); its lines are named either way
            unstarted = [o.line for o, _ in runs if o.run_id is None and not o.over and o.line is not None]
            err_console.print(
                f"interrupted: {over} of {len(runs)} {noun} had finished, {len(cut)} runs were cut short and "
                f"{len(runs) - over - len(cut)} never started. The cut runs are stored: continue them with "
                "[bold]agentmesh resume RUN...[/] (finished calls are not made again): "
                + (" ".join(r[:12] for r in cut) or "none")
                + (
                    f"; or the whole batch at once, the lines that never started too: agentmesh resume --batch {batch}"
                    if batch
                    else ""
                )
                + (
                    f". Never started: {_lines(unstarted)}"
                    + (f" of {escape(str(source))}" if source is not None else "")
                    if unstarted
                    else ""
                ),
                highlight=False,
            )
            raise
        for outcome in outcomes:
            if outcome.failed and outcome.run_id is not None:
                try:
                    outcome.totals = store.get_run(outcome.run_id).totals or {}
                except RunNotFoundError:  # deleted while it ran (delete --force): the summary goes on without it
                    outcome.error = f"{outcome.error or 'failed'} (the run is no longer stored: deleted while it ran)"
    failed = sum(1 for o in outcomes if o.failed)
    skipped = sum(1 for o in outcomes if o.elsewhere is not None)
    if as_json:
        typer.echo(json.dumps([o.to_json() for o in outcomes], indent=2, ensure_ascii=False))
    elif quiet:
        for o in outcomes:
            typer.echo("" if o.result is None or o.result.answer is None else str(o.result.answer))
    else:
        title = f"{name}: {_count(len(outcomes), noun)}"
        if len(outcomes) <= SUMMARY_ROWS:
            console.print(summary_table(title, outcomes))
        else:  # a row per item would bury the failures in a long log: how the runs ended, then each failure
            console.print(digest_table(title, outcomes))
            not_succeeded = [o for o in outcomes if o.status != "succeeded" and o.elsewhere is None]
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
        line = f"{_count(len(outcomes), noun)}: {len(outcomes) - failed - skipped} succeeded, {failed} failed"
        if skipped:
            line += f", {skipped} skipped (another process took them first)"
        if batch:
            line += f" · batch {batch} (agentmesh runs --batch {batch})"
        if any(o.failed and o.run_id is not None for o in outcomes):  # a run that failed before it was stored
            line += (  # has no run to show or resume ("-" in its row, its error beside it)
                " · failed runs are stored: see them with agentmesh show <run>, continue with agentmesh resume <run>"
            )
        console.print(line, highlight=False)
    if failed:
        raise typer.Exit(1)


def _name_runs_stored_unannounced(store: Store, batch: str, outcomes: Sequence[ItemOutcome]) -> None:
    """Give the outcomes of an interrupted batch the runs the store has for them that they never heard of.

    An interruption that lands while a run is being created stores the run (as interrupted) before the run could
    say it started: its line was named as never started, beside the runs to resume by id, and so missed by
    ``resume RUN...``. Best effort: the store's error, if any, leaves the outcomes as they were."""
    unnamed: dict[Any, ItemOutcome] = {
        o.line: o for o in outcomes if o.run_id is None and not o.over and o.line is not None
    }
    if not unnamed:
        return
    try:
        stored = store.list_runs(batch=batch, status=RunStatus.INTERRUPTED, limit=1_000_000)
    except AgentmeshError:
        return
    for record in stored:
        outcome = unnamed.get((record.meta.get("batch") or {}).get("line"))
        if outcome is not None:
            outcome.run_id = record.id


def _mark_runs_that_ended(store: Store, outcomes: Sequence[ItemOutcome]) -> None:
    """Tell the outcomes of an interrupted batch whose runs the store has as ended.

    A run cut while its end was being stored (its calls all made, the interruption landing on the commit of its
    status, which commits all the same) ends "succeeded" in the store, yet its outcome never heard so: the
    message listed it among the runs to ``resume``, and ``agentmesh resume`` of the listed ids then refused them
    all ("already succeeded; nothing was resumed"). Such a run is counted as finished instead. Best effort: the
    store's error, if any, leaves the outcomes as they were."""
    for outcome in outcomes:
        if outcome.run_id is None or outcome.over:
            continue
        try:
            record = store.get_run(outcome.run_id)
        except AgentmeshError:
            return
        if record.status in (RunStatus.SUCCEEDED, RunStatus.STOPPED):
            outcome.ended = str(record.status)


async def run_all(
    runs: list[tuple[ItemOutcome, Start]],
    concurrency: int,
    on_event: Listener,
    on_done: Callable[[ItemOutcome], None],
    *,
    close: Callable[[], Coroutine[Any, Any, None]] | None = None,
    keep_outputs: bool = True,
) -> list[ItemOutcome]:
    """Every run, at most ``concurrency`` at once; a failure is kept in its outcome, never raised. ``close`` is
    awaited at the end, however the runs ended.

    Without ``keep_outputs`` a finished run's result keeps its answer, status and usage but not its per-node
    outputs (only ``--json`` prints those; they are in the store either way): kept, they are most of what a batch
    holds until its end, ~8 KiB an item of ``debate`` (``bench/bench_batch.py``), most of a gigabyte for
    100,000 items."""
    gate = asyncio.Semaphore(concurrency)

    async def one(outcome: ItemOutcome, start: Start) -> ItemOutcome:
        def started(kind: str, data: dict[str, Any]) -> None:
            if kind == "start":
                outcome.run_id = str(data["run_id"])
            elif kind == "unstored":  # a run named up front (on Ray) that its worker never stored
                outcome.run_id = None

        async with gate:
            try:
                result = await start([started, on_event])
                outcome.result = result if keep_outputs else result.model_copy(update={"outputs": {}})
            except Elsewhere as exc:  # not a failure: the run is another process's now
                outcome.elsewhere = str(exc)
            except Exception as exc:  # one bad run must not sink the batch; the run records it as failed
                outcome.error = str(exc) if isinstance(exc, AgentmeshError) else f"{type(exc).__name__}: {exc}"
        on_done(outcome)
        return outcome

    try:
        return list(await asyncio.gather(*(one(outcome, start) for outcome, start in runs)))
    finally:
        if close is not None:
            await close()


def _count(n: int, noun: str) -> str:
    """``1 item``, ``3 items``: a one-line batch's summary said "1 items"."""
    return f"{n} {noun[:-1] if n == 1 and noun.endswith('s') else noun}"


def _lines(numbers: Sequence[int]) -> str:
    """``line 3`` or ``lines 2, 5-8``: line numbers with runs of consecutive ones as ranges."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return ("line " if len(numbers) == 1 else "lines ") + text


#: Why a batch's run was skipped, in the digest of a large one (each run's own reason: ``--json``).
ELSEWHERE = "another process took it first (two resumes at once, or a resume beside the batch)"

#: A batch's summary has a row per item up to this many items; a larger one is summed up by how its runs ended.
SUMMARY_ROWS = 25


def digest_table(title: str, outcomes: Sequence[ItemOutcome]) -> Table:
    """How a batch's runs ended, one row per status and stop reason (or error), succeeded first and the most
    frequent first within a status: items, calls, tokens and cost of each, and a total."""
    groups: dict[tuple[str, str], list[ItemOutcome]] = {}
    for o in outcomes:
        if o.result is not None:
            why = o.result.stop_reason or "-"
        else:  # skipped ones alike: one row, not one per line and process
            why = snippet(o.error or "failed", 160) if o.elsewhere is None else ELSEWHERE
        groups.setdefault((o.status, why), []).append(o)
    order = {status: i for i, status in enumerate(("succeeded", "stopped", "interrupted", "failed", "skipped"))}
    ranked = sorted(groups.items(), key=lambda g: (order.get(g[0][0], 9), -len(g[1]), g[0]))
    if console.width < NARROW:  # as a table, the stop reason / error column was squeezed out
        return _digest_records(title, outcomes, ranked)
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
    for (status, why), members in ranked:
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


def _digest_records(
    title: str, outcomes: Sequence[ItemOutcome], ranked: Sequence[tuple[tuple[str, str], list[ItemOutcome]]]
) -> Table:
    """:func:`digest_table` on a narrow terminal (:data:`NARROW`): each way the runs ended on lines of its own
    (status, items, calls; the stop reason or error), then the total."""
    table = Table(title=Text(title), caption="tokens, cost: --json", box=None, show_header=False, padding=(0, 0))
    table.add_column("how they ended", overflow="fold")
    for (status, why), members in ranked:
        calls = sum(_usage(o)[0] for o in members)
        record = Text(status, style="green" if status == "succeeded" else "red")
        record.append(f" · {_count(len(members), 'items')} · {calls} calls\n  ")
        record.append(why, style="" if status == "succeeded" else "red")
        table.add_row(record)
    table.add_row(Text(f"total · {_count(len(outcomes), 'items')} · {sum(_usage(o)[0] for o in outcomes)} calls"))
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
    labelled = [o for o in outcomes if o.gold is not None and o.elsewhere is None]  # skipped: another's to score
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
        calls, tokens, cost = r.calls, r.prompt_tokens + r.completion_tokens, r.cost_usd
    else:
        calls, tokens, cost = (
            int(o.totals.get("calls", 0)),
            int(o.totals.get("total_tokens", 0)),
            o.totals.get("cost_usd"),
        )
    return calls, tokens, 0.0 if cost is None and calls == 0 else cost  # no call (no run stored): nothing spent


def _total_cost(costs: Iterable[float | None]) -> float | None:
    """The sum of the costs; unknown (None, shown n/a) when one of them is: a sum of the known ones would pass for
    the batch's cost (as a run's cost is unknown when one of its calls' is, README's "rather than a partial sum")."""
    found = list(costs)
    return None if any(c is None for c in found) else sum(c for c in found if c is not None)


def summary_table(title: str, outcomes: Sequence[ItemOutcome], *, reason_chars: int = 160) -> Table:
    """One row per item: its line, run, status, answer, calls (tokens and cost on a wide terminal, see
    :data:`WIDE`), stop reason or error (its first ``reason_chars`` characters)."""
    wide = console.width >= WIDE
    labelled = any(o.gold is not None for o in outcomes)
    if console.width < NARROW:
        return _summary_records(title, outcomes, reason_chars)
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
        calls, tokens, cost = _usage(o)
        answer, reason = _answer_and_reason(o, reason_chars)
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


def _summary_records(title: str, outcomes: Sequence[ItemOutcome], reason_chars: int) -> Table:
    """:func:`summary_table` on a narrow terminal (:data:`NARROW`): each item on lines of its own (item, run,
    status; its answer, gold and calls; its stop reason or error), so that the answer is never squeezed out."""
    table = Table(title=Text(title), caption="tokens, cost: --json", box=None, show_header=False, padding=(0, 0))
    table.add_column("item", overflow="fold")
    for o in outcomes:
        calls, _, _ = _usage(o)
        answer, reason = _answer_and_reason(o, reason_chars)
        record = Text(f"{o.label or f'line {o.line}'} · {o.run_id[:12] if o.run_id else '-'} · ")
        record.append(o.status, style="green" if o.status == "succeeded" else "red")
        record.append(f"\n  answer {answer}")
        if o.gold is not None:
            record.append("  gold ").append(_gold(o))
        record.append(f" · {calls} call{'' if calls == 1 else 's'}\n  ").append(reason)
        table.add_row(record)
    return table


def _answer_and_reason(o: ItemOutcome, reason_chars: int) -> tuple[str, Text]:
    """An item's answer ("-" without one) and its stop reason, or its error (red, its first ``reason_chars``
    characters), as both forms of the summary show them."""
    r = o.result
    if r is not None:
        return "-" if r.answer is None else str(r.answer), Text(r.stop_reason or "-")
    return "-", Text(snippet(o.error or o.elsewhere or "failed", reason_chars), style="red")


def unfinished_of(store: Store, batch: str) -> tuple[list[RunRecord], Unstarted | None]:
    """What ``resume --batch`` continues: the batch's interrupted and failed runs, and those left running by a
    process known to be dead (a SIGKILL), in the batch's order; and the lines that never started, when the batch
    can tell (:func:`unstarted_of`). Runs still marked running by a live process, or one this machine cannot
    check, are left out (they are resumed by id, with ``--force`` if need be)."""
    found = batch_runs(store, batch, then=" (agentmesh show RUN names the batch of a run)")
    todo = [
        r
        for r in found
        if r.status in (RunStatus.INTERRUPTED, RunStatus.FAILED)
        or (r.status == RunStatus.RUNNING and owner_alive(r.meta.get(OWNER_KEY)) is False)
    ]
    try:
        unstarted = unstarted_of(found)
    except ConfigError as exc:
        if not todo:
            raise
        # the cut and failed runs are resumed all the same; the lines that cannot be read again are named
        err_console.print(f"{exc}; resuming the batch's stored runs only", highlight=False)
        unstarted = None
    if not todo and unstarted is None:
        counts = Counter(str(r.status) for r in found)
        told = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        raise ConfigError(f"batch {batch}: nothing to resume ({told}); a running run is resumed by its id")
    return sorted(todo, key=lambda r: int((r.meta.get("batch") or {}).get("line") or 0)), unstarted


@dataclass
class Unstarted:
    """The lines of a batch that never started (an interruption came first), read again from the batch's file as
    the batch read them, with what its runs ran: their graph, model and budget."""

    spec: GraphSpec
    items: list[datasets.Item]
    model: str | None
    budget: Budget | None
    tag: dict[str, Any]  # the batch's tag (meta.batch) without a line's own fields
    source: str | None = None  # where its graph came from (meta.source), stored with the new runs too


def unstarted_of(runs: Sequence[RunRecord]) -> Unstarted | None:
    """The lines of the batch of ``runs`` (all its runs) that have no run, or ``None`` when every line has one.

    A :class:`ConfigError` when some lines never started but cannot be read again as they were: the file is gone
    or changed since (its hash), or the batch was run by a version that did not record how it read the file."""
    tag = dict(runs[0].meta.get("batch") or {})
    started = {(r.meta.get("batch") or {}).get("line") for r in runs}
    missing = int(tag.get("items") or 0) - len(started)
    if missing <= 0:
        return None
    where = f"batch {tag.get('id')}: {missing} of its {tag.get('items')} lines never started"
    path = Path(str(tag.get("file")))
    if "sha256" not in tag:
        raise ConfigError(f"{where}, and the batch does not say how it read {path} (an older agentmesh ran it)")
    if not path.is_file() or _file_hash(path) != tag["sha256"]:
        state = "is gone" if not path.is_file() else "has changed since"
        raise ConfigError(f"{where}, and {path} {state}: they cannot be told apart from the lines that ran")
    spec = graph_from_data(runs[0].meta.get("spec"), file=f"run {runs[0].id} (stored spec)")
    items = datasets.read_items(path, spec, tag.get("given") or {})[: tag.get("limit")]
    budget = runs[0].meta.get("budget")
    return Unstarted(
        spec=spec,
        items=[item for item in items if item.line not in started],
        model=runs[0].model,
        budget=Budget.model_validate(budget) if budget else None,
        tag={k: v for k, v in tag.items() if k not in ("line", "gold")},
        source=runs[0].meta.get("source"),
    )


def _file_hash(path: Path) -> str:
    """The SHA-256 of a batch's input file: whether it is still the file the batch read."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def batch_runs(store: Store, batch: str, *, then: str = "") -> list[RunRecord]:
    """Every run of ``batch`` (newest first), or a :class:`ConfigError` naming the batch and the store (``then``
    appended) when it has none: what ``runs``, ``resume``, ``delete`` and ``report`` take by ``--batch``."""
    found = store.list_runs(batch=batch, limit=1_000_000)
    if not found:
        raise ConfigError(f"no runs of batch {batch!r} in {store.url}{then}")
    return found
