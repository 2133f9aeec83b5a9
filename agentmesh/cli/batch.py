"""Running many runs at once: ``agentmesh run --input-file`` (one run per JSONL item) and ``agentmesh resume`` of
several runs or of a batch.

They run concurrently up to a limit (each its own stored run, tagged with the batch's id) while their progress
shows, on a terminal and off it (:mod:`agentmesh.cli._progress`), then end with a summary
(:mod:`agentmesh.cli.batch_summary`: a row per item, or for a large batch how its runs ended and each run that did
not succeed, with the accuracy on the items that carry a reference answer). One failing item does not stop the
others, but makes the exit code 1; an interrupted batch says which runs to resume. The ids of a batch's runs, the
claims that keep two processes from running one twice, and what ``resume --batch`` continues are
:mod:`agentmesh.cli.batch_store`'s.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from agentmesh import datasets
from agentmesh._text import counted
from agentmesh.cli._common import Executor, console, err_console, run_async
from agentmesh.cli._job import JobOptions
from agentmesh.cli._progress import WorkProgress
from agentmesh.cli._store import open_store
from agentmesh.cli.batch_store import Elsewhere, batch_run_id, file_hash, line_list, start_line
from agentmesh.cli.batch_summary import ItemOutcome, batch_tag, human_label, print_summary
from agentmesh.errors import AgentmeshError, RunNotFoundError
from agentmesh.models import ModelClient, load_settings
from agentmesh.plugins import imported
from agentmesh.runtime.context import Listener
from agentmesh.runtime.on_ray import RunOnRay, job_payload, run_there, start_ray, worker_db_url
from agentmesh.runtime.recorded_model import model_for
from agentmesh.runtime.run import DEFAULT_MODEL, RunResult, arun
from agentmesh.runtime.stop_starting import NOT_STARTED, StopStarting
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.stop import Budget
from agentmesh.store import RunStatus, Store


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
        "sha256": file_hash(source),
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
            meta: dict[str, Any] = {"batch": {"id": batch, **read_again, **batch_tag(item)}}
            if graph_source is not None:
                meta["source"] = graph_source
            if on_ray is not None:
                return on_ray(item, meta)
            return first_run(spec, item, meta, store=store, client=client, budget=budget)

        return [
            (
                ItemOutcome(line=item.line, inputs=item.inputs, batch=batch, gold=item.gold, human=human_label(item)),
                start(item),
            )
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


def first_run(
    spec: GraphSpec,
    item: datasets.Item,
    meta: dict[str, Any],
    *,
    store: Store,
    client: ModelClient,
    budget: Budget | None,
) -> Start:
    """The first run of a batch's line, here (``run --input-file``'s, or ``resume --batch``'s of a line that never
    started), tagged with ``meta`` (its ``batch``: the batch's id and the line). It runs under the line's own
    :func:`batch_run_id`: another process starting the line too (the batch still at work elsewhere, a second resume)
    is refused by the store, and the line left to whichever stored it first (:func:`start_line`)."""
    run_id = batch_run_id(str(meta["batch"].get("id")), item.line)
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


Start = Callable[[list[Listener]], Coroutine[Any, Any, RunResult]]
"""Starts one run of a batch with the given listeners (``arun`` or ``aresume`` with its arguments bound). A run made
elsewhere (a Ray worker) tells them ``start`` when it is sent, ``calls`` (``count``: the calls it made) when it is
over, and ``unstored`` if its worker failed before storing it."""


def _print_stopped(outcomes: Sequence[ItemOutcome], *, noun: str, batch: str | None, source: Path | None) -> None:
    """After a batch that stopped starting runs (its database failed for good: :func:`run_all`): which of its
    items were not run, why, and how to run them once the database is fixed."""
    left = [o for o in outcomes if o.not_run is not None]
    if not left:
        return
    lines = [o.line for o in left if o.line is not None]
    which = f": {line_list(lines)}" + (f" of {escape(str(source))}" if source is not None else "") if lines else ""
    if batch is None:  # runs resumed by id: each one not run is a stored run still to resume
        then = "agentmesh resume " + " ".join(o.run_id[:12] for o in left if o.run_id is not None) + " resumes them"
    elif any(o.run_id is not None and o.not_run is None for o in outcomes):
        then = f"agentmesh resume --batch {batch} runs them, and continues the runs that failed"
    else:  # no run of the batch could be stored: resume --batch would find no batch
        then = "run the same command again (no run of this batch could be stored, so there is none to resume)"
    err_console.print(
        f"[red]stopped[/]: {escape((left[0].not_run or '').removeprefix(NOT_STARTED))}. "
        f"{counted(len(left), noun.removesuffix('s'), noun)} not run{which}; once the database can be written "
        f"again, {then}",
        highlight=False,
    )


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
    unrun: str | None = None,
) -> None:
    """Run a batch (``work`` builds its runs on the opened store) showing its progress, then print its summary;
    exit 1 if a run failed. Interrupted, it says which runs were cut short and how to continue them. ``close``
    (a shared model client's) is awaited on the batch's own event loop once every run is over; ``batch`` is the id
    its runs are tagged with, if any, said at the end.

    ``unrun`` says why some of the batch's items could not be run at all (``resume --batch`` of a batch whose file
    is gone: its lines that never started): said after the summary, and the exit is 1 as for a failed item, even
    when every run that did run succeeded."""
    with open_store(db) as store:
        runs = work(store)
        counters = {"failed": 0, "calls": 0}
        progress = WorkProgress(
            name, len(runs), console=console, log=err_console, enabled=not as_json and not quiet, unit=noun, calls=0
        )

        def note() -> str:
            calls = counters["calls"]
            return f"{counters['failed']} failed · {calls} call{'' if calls == 1 else 's'}"

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "call" and not data.get("served"):  # a resumed run's recorded calls are not made again
                counters["calls"] += 1
                progress.update(note=note(), calls=counters["calls"])
            elif kind == "calls":  # a run made elsewhere (a Ray worker) says its calls once it is over
                counters["calls"] += int(data["count"])
                progress.update(note=note(), calls=counters["calls"])

        def done(outcome: ItemOutcome) -> None:
            if outcome.failed and outcome.not_run is None:
                counters["failed"] += 1
            progress.update(advance=1, note=note(), calls=counters["calls"])

        try:
            with progress:
                outcomes = run_async(
                    run_all(runs, concurrency, on_event, done, close=close, keep_outputs=as_json, db_url=store.url)
                )
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
                f"interrupted: {over} of {counted(len(runs), noun.removesuffix('s'), noun)} had finished, "
                f"{counted(len(cut), 'run')} {'was' if len(cut) == 1 else 'were'} cut short and "
                f"{len(runs) - over - len(cut)} never started. The cut runs are stored: continue them with "
                "[bold]agentmesh resume RUN...[/] (finished calls are not made again): "
                + (" ".join(r[:12] for r in cut) or "none")
                + (
                    f"; or the whole batch at once, the lines that never started too: agentmesh resume --batch {batch}"
                    if batch
                    else ""
                )
                + (
                    f". Never started: {line_list(unstarted)}"
                    + (f" of {escape(str(source))}" if source is not None else "")
                    if unstarted
                    else ""
                ),
                highlight=False,
            )
            if unrun is not None:
                _print_unrun(unrun)
            raise
        for outcome in outcomes:
            if outcome.failed and outcome.run_id is not None:
                try:
                    outcome.totals = store.get_run(outcome.run_id).totals or {}
                except RunNotFoundError:  # deleted while it ran (delete --force): the summary goes on without it
                    outcome.error = (
                        f"{outcome.error or 'failed'} (run {outcome.run_id} is no longer stored: deleted while it ran)"
                    )
                    outcome.run_id = None  # no run to show or resume: not counted among the "failed runs are stored"
    print_summary(name, outcomes, noun=noun, batch=batch, as_json=as_json, quiet=quiet)
    _print_stopped(outcomes, noun=noun, batch=batch, source=source)
    if unrun is not None:
        _print_unrun(unrun)
    if any(o.failed for o in outcomes) or unrun is not None:
        raise typer.Exit(1)


def _print_unrun(why: str) -> None:
    """On stderr, in red as a failed item is (:func:`agentmesh.cli._job.print_failures`): items of the batch that
    were not run, and why."""
    err_console.print(f"[red]not run[/] (no run stored): {escape(why)}", highlight=False)


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
    db_url: str | None = None,
) -> list[ItemOutcome]:
    """Every run, at most ``concurrency`` at once; a failure is kept in its outcome, never raised. ``close`` is
    awaited at the end, however the runs ended.

    Without ``keep_outputs`` a finished run's result keeps its answer, status and usage but not its per-node
    outputs (only ``--json`` prints those; they are in the store either way): kept, they are most of what a batch
    holds until its end, ~8 KiB an item of ``debate`` (``bench/bench_batch.py``), most of a gigabyte for
    100,000 items.

    A database's own error (a full disk, a lost connection) names ``db_url``, the database, as a command's does
    (it was ``OperationalError: database or disk is full``, with no word of which database). Once a run meets a
    failure of the database every later run would meet too, no more runs are started
    (:class:`~agentmesh.runtime.stop_starting.StopStarting`): their outcomes say why (``not_run``)."""
    gate = asyncio.Semaphore(concurrency)
    stop = StopStarting(db_url)  # the database's lasting failure, once a run met one

    async def one(outcome: ItemOutcome, start: Start) -> ItemOutcome:
        def started(kind: str, data: dict[str, Any]) -> None:
            if kind == "start":
                outcome.run_id = str(data["run_id"])
            elif kind == "unstored":  # a run named up front (on Ray) that its worker never stored
                outcome.run_id = None

        async with gate:
            if stop.reason is not None:  # every later run would fail alike: the line is left for a resume
                outcome.not_run = stop.reason
                on_done(outcome)
                return outcome
            try:
                result = await start([started, on_event])
                outcome.result = result if keep_outputs else result.model_copy(update={"outputs": {}})
            except Elsewhere as exc:  # not a failure: the run is another process's now
                outcome.elsewhere = str(exc)
            except Exception as exc:  # one bad run must not sink the batch; the run records it as failed
                named = stop.failed(exc)  # (a driver's own error named as the database's failure)
                outcome.error = str(named) if isinstance(named, AgentmeshError) else f"{type(named).__name__}: {named}"
        on_done(outcome)
        return outcome

    try:
        return list(await asyncio.gather(*(one(outcome, start) for outcome, start in runs)))
    finally:
        if close is not None:
            await close()
