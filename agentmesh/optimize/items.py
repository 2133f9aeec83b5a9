"""Run a graph over a data set as one resumable job: each item its own stored run, several at once, here or on Ray.

Team optimisation needs the full candidate team run over many items before anything can be chosen (DyLAN's
importance scores, SE-Jury's calibration), and those runs are the expensive part. So a job is identified by what
determines its runs (the graph's spec and the model, plus whatever the caller adds) and each item by its inputs:
running the same job again skips the items whose run succeeded and resumes the ones that were cut short (their
finished model calls are served from the store, never paid twice). What is made of the runs' outputs is the
caller's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agentmesh.datasets import Item, gold_problem, item_inputs
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.models import ModelClient, get_model, load_settings
from agentmesh.models.providers.base import Provider
from agentmesh.plugins import imported
from agentmesh.runtime.arguments import check_inputs, open_store
from agentmesh.runtime.on_ray import RunOnRay, job_payload, new_run_id, run_there, start_ray, worker_db_url
from agentmesh.runtime.outcome import stored_outputs
from agentmesh.runtime.run import DEFAULT_MODEL, RunResult, aresume, arun
from agentmesh.runtime.stop_starting import StopStarting
from agentmesh.spec.graph import GraphSpec
from agentmesh.store import RunStatus, Store

__all__ = ["RETRY_FAILED", "Executor", "ItemRun", "JobRun", "Progress", "as_items", "digest", "run_items"]

RETRY_FAILED = (
    "; once the cause is fixed (a server down, say), run the same command again: finished items are kept and "
    "failed runs resume without repeating a finished call"
)
"""Ends a job's error when its items failed: a job that stopped on them said nothing of how to go on."""

Executor = Literal["local", "ray"]


@dataclass
class ItemRun:
    """One item of a job: its run and the run's node outputs (``None`` when it failed)."""

    line: int
    inputs: dict[str, Any]
    run_id: str | None = None
    calls: int = 0
    """Model calls stored for the item's run, as ``agentmesh show`` counts them: a resumed run's earlier ones too."""
    earlier_calls: int = 0
    """Of ``calls``, those stored before the run was resumed this time (0 for a run made now, or reused): the calls
    made now are the rest."""
    reused: bool = False
    """The item's run had succeeded in an earlier run of the job: nothing was run again."""
    outputs: Mapping[str, Any] | None = None
    error: str | None = None
    not_run: bool = False
    """Not started: the job stopped starting items once its database failed for good (``error`` says so, beginning
    :data:`~agentmesh.runtime.stop_starting.NOT_STARTED`); running the job again runs it."""


@dataclass
class JobRun:
    """What :func:`run_items` did: the job's id and every item, in the order given."""

    job: str
    model: str
    items: list[ItemRun] = field(default_factory=list)

    @property
    def failed(self) -> list[ItemRun]:
        return [i for i in self.items if i.error]


Progress = Callable[[ItemRun, int, int], None]
"""Told of each finished item: (the item, items done, items in all)."""


def as_items(
    items: Sequence[Item | Mapping[str, Any]],
    spec: GraphSpec,
    *,
    keep: Sequence[str] = (),
    what: str = "job",
    allow_empty: bool = False,
) -> list[Item]:
    """``items`` as :class:`~agentmesh.datasets.Item` s: what a job runs, whether the caller read a JSONL file
    (:func:`agentmesh.datasets.read_items`) or holds its data in Python already.

    A mapping is read as a line of such a file is (the graph's inputs, or an MMLU-, MATH/GSM8K- or HumanEval-style
    record; ``keep`` names fields read besides the inputs, such as SE-Jury's human label) and numbered from 1 like
    a file's lines. Every item is checked before anything runs; the bad ones are named by their index. No items at
    all is refused unless ``allow_empty``: a job over nothing has nothing to report."""
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise ConfigError(
            f"{what} of {spec.name}: items must be a list of Items (agentmesh.datasets.read_items) or of dicts of "
            f"inputs, got {type(items).__name__}"
        )
    if not items and not allow_empty:
        raise ConfigError(f"{what} of {spec.name}: no items (expected at least one)")
    out: list[Item] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        if isinstance(item, Item):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            problems.append(f"items[{index}]: expected an Item or a dict of inputs, got {type(item).__name__}")
            continue
        inputs, extra = item_inputs(item, spec, keep)
        try:
            read = Item(index + 1, check_inputs(spec, inputs), extra)
        except ConfigError as exc:
            problems.append(f"items[{index}]: {exc}")
            continue
        wrong = gold_problem(read)  # a reference answer naming no option: the item could never be right
        if wrong is not None:
            problems.append(f"items[{index}]: {wrong}")
        else:
            out.append(read)
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise ConfigError(f"{what} of {spec.name}: {len(problems)} bad item(s); nothing was run:\n" + "\n".join(shown))
    return out


def digest(value: Any) -> str:
    """A short stable id of a JSON-able value: how jobs and items are recognised when a job is run again."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


async def run_items(
    spec: GraphSpec,
    items: Sequence[Item | Mapping[str, Any]],
    *,
    kind: str,
    model: str | Provider | ModelClient | None = None,
    store: Store | str | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
    executor: Executor = "local",
    ray_address: str | None = None,
    ray_cpus_per_item: float = 1.0,
    imports: Sequence[str] | None = None,
    job_key: Mapping[str, Any] | None = None,
    on_call: Callable[[], None] | None = None,
) -> JobRun:
    """Run ``spec`` on every item (see the module docstring); failed items are reported, not raised.

    ``kind`` names the job's purpose in each run's metadata (``optimize``, ``calibrate``...): a later run of the
    same job finds its items' runs by it, and ``agentmesh runs --job`` those of the kinds the commands use
    (:data:`~agentmesh.store.run_reads.JOB_KINDS`). ``job_key`` adds what else makes two jobs different.

    ``executor="ray"`` runs the items as Ray tasks (:mod:`agentmesh.runtime.on_ray`): on a Ray started on
    this machine for the job, or on the cluster at ``ray_address`` (which needs a Postgres store). There ``model``
    must be a reference string (each worker builds its own client), and the workers import ``imports`` (module
    names or ``.py`` files; by default what :func:`agentmesh.plugins.import_plugins` imported here) so that the
    operators, functions, parsers and providers registered in them are known there too. ``concurrency`` is the
    number of items in flight; each takes ``ray_cpus_per_item`` of Ray's CPUs (a fraction packs several I/O-bound
    items per core).

    ``on_call`` is told of each model call an item's run makes here (not one a resumed run is served from the
    store): what shows a job moving while its items are long (the embedded model takes minutes per item, and
    ``progress`` is told only when an item ends). A Ray worker's calls are not told.

    Once an item's run meets a failure of the database that every later run would meet too (a full disk, a
    read-only or vanished database; here or in a Ray worker), no more items are started: those under way end as
    they may, and the others are failed items with ``not_run`` set and an ``error`` naming the database and why
    (:class:`~agentmesh.runtime.stop_starting.StopStarting`), for the job run again once the database is fixed."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be an integer, at least 1, got {concurrency!r}")
    items = as_items(items, spec, what=kind, allow_empty=True)  # (an eval's judge step may have nothing to judge)
    if executor not in ("local", "ray"):
        raise ConfigError(f"executor must be 'local' or 'ray', got {executor!r}")
    if executor == "ray" and not (model is None or isinstance(model, str)):
        raise ConfigError(
            "on Ray, give the model as a reference string (each worker builds its own client from it), not a "
            f"{type(model).__name__} object; a provider of your own registers by name in a module given to --import"
        )
    client = model if isinstance(model, ModelClient) else get_model(model or spec.model or DEFAULT_MODEL)
    db = open_store(store)
    job = digest({"spec": spec.spec_hash(), "model": client.reference, **(job_key or {})})
    done = JobRun(job=job, model=client.reference)
    release: Callable[[], None] | None = None
    try:
        start: StartRun
        if executor == "ray":
            shared = job_payload(
                spec,
                model if isinstance(model, str) else spec.model or DEFAULT_MODEL,  # (checked above: not an object)
                load_settings(),
                worker_db_url(db, cluster=ray_address is not None),
                imported() if imports is None else imports,
                ray_cpus_per_item,
            )
            run_on_ray, release = start_ray(ray_address, ray_cpus_per_item)
            start = _on_ray(shared, run_on_ray, db, kind, job)
        else:
            start = _in_process(db, spec, client, kind, job, on_call)
        keys = [digest(item.inputs) for item in items]
        previous = _earlier_runs(items, keys, _previous_runs(db, spec.name, kind, job))
        gate = asyncio.Semaphore(concurrency)
        stop = StopStarting(db.url, what="the job", runs="items")
        finished = 0

        async def one(item: Item, key: str, earlier: Previous | None) -> ItemRun:
            nonlocal finished
            out = ItemRun(line=item.line, inputs=item.inputs)
            async with gate:
                if stop.reason is not None:  # the database failed for good: every item started now would fail alike
                    out.error, out.not_run = stop.reason, True
                else:
                    try:
                        await _run_item(db, spec, start, item, key, earlier, out)
                    except Exception as exc:  # one bad item must not sink the job; its run records the failure
                        named = stop.failed(exc)  # (and a lasting failure of the database stops starting items)
                        out.error = (
                            str(named) if isinstance(named, AgentmeshError) else f"{type(named).__name__}: {named}"
                        )
            finished += 1
            if progress is not None:
                progress(out, finished, len(items))
            return out

        done.items = list(await asyncio.gather(*map(one, items, keys, previous)))
    finally:
        if release is not None:
            release()
        if not isinstance(model, ModelClient | Provider):
            await client.aclose()
        if not isinstance(store, Store):
            db.close()
    return done


Previous = tuple[str, RunStatus]
"""An item's earlier run in the job: its id and status."""


def _previous_runs(db: Store, graph: str, kind: str, job: str) -> dict[str, list[tuple[str, RunStatus, Any]]]:
    """The job's stored runs per item key, newest first, each with the data line it ran for."""
    found: dict[str, list[tuple[str, RunStatus, Any]]] = {}
    for record in db.list_runs(graph=graph, limit=1_000_000):  # newest first
        tag = record.meta.get(kind) or {}
        if tag.get("job") == job and tag.get("item"):
            found.setdefault(str(tag["item"]), []).append((record.id, record.status, tag.get("line")))
    return found


def _earlier_runs(
    items: Sequence[Item], keys: Sequence[str], found: Mapping[str, list[tuple[str, RunStatus, Any]]]
) -> list[Previous | None]:
    """Each item's earlier run (``None``: none, it starts afresh), no run given to two items.

    Items are known by their inputs, so a data set holding the same item on two lines (real ones do) has two runs of
    one key. Given to both lines, the newest was resumed twice at once: one line failed, saying another process had
    resumed it, and the other run stayed cut short for good. So each line takes the run stored for its own line
    first, then the newest left of its key."""
    left = {key: list(runs) for key, runs in found.items()}
    chosen: list[Previous | None] = [None] * len(items)
    for index, (item, key) in enumerate(zip(items, keys, strict=True)):
        own = next((run for run in left.get(key, []) if run[2] == item.line), None)
        if own is not None:
            left[key].remove(own)
            chosen[index] = (own[0], own[1])
    for index, key in enumerate(keys):
        if chosen[index] is None and left.get(key):
            run_id, status, _ = left[key].pop(0)
            chosen[index] = (run_id, status)
    return chosen


StartRun = Callable[[Item, str, "tuple[str, RunStatus] | None", ItemRun], Awaitable[Mapping[str, Any]]]
"""Runs an item (or resumes its cut-short run), sets the item's ``run_id`` (as soon as the run is stored: a
failed item still names it) and ``calls``, and returns the run's node outputs."""


async def _run_item(
    db: Store,
    spec: GraphSpec,
    start: StartRun,
    item: Item,
    key: str,
    previous: tuple[str, RunStatus] | None,
    out: ItemRun,
) -> None:
    if previous is not None and previous[1] == RunStatus.SUCCEEDED:
        out.run_id, out.reused = previous[0], True
        out.outputs = await asyncio.to_thread(_stored_outputs, db, spec, previous[0])
        out.calls = int((await asyncio.to_thread(db.get_run, previous[0])).totals.get("calls", 0))
    else:
        earlier = 0
        if previous is not None:  # resumed: its calls so far (as it was stopped), to tell them from those made now
            record = await asyncio.to_thread(lambda: db.with_running_totals([db.get_run(previous[0])])[0])
            earlier = int((record.totals or {}).get("calls", 0))
        out.outputs = await start(item, key, previous, out)
        out.earlier_calls = min(earlier, out.calls)


def _stored_outputs(store: Store, spec: GraphSpec, run_id: str) -> dict[str, Any]:
    """A finished run's node outputs, read from its last checkpoint."""
    outputs = stored_outputs(store, spec, run_id)
    if outputs is None:
        raise AgentmeshError(f"run {run_id} has no checkpoint to read its outputs from", run=run_id)
    return outputs


def _meta(kind: str, job: str, key: str, item: Item) -> dict[str, Any]:
    """What tags an item's run as the job's: how a later run of the job finds it (:func:`_previous_runs`)."""
    return {kind: {"job": job, "item": key, "line": item.line}}


def _in_process(
    db: Store, spec: GraphSpec, client: ModelClient, kind: str, job: str, on_call: Callable[[], None] | None = None
) -> StartRun:
    """Items run here, on this event loop (the default executor)."""

    async def start(item: Item, key: str, previous: tuple[str, RunStatus] | None, out: ItemRun) -> Mapping[str, Any]:
        def started(event: str, data: dict[str, Any]) -> None:
            if event == "start":
                out.run_id = str(data["run_id"])
            elif event == "call" and on_call is not None and not data.get("served"):
                on_call()

        result: RunResult
        if previous is not None:
            out.run_id = previous[0]
            result = await aresume(previous[0], store=db, model=client, listeners=[started])
        else:
            meta = _meta(kind, job, key, item)
            result = await arun(spec, item.inputs, model=client, store=db, meta=meta, listeners=[started])
        out.run_id, out.calls = result.run_id, result.calls
        return result.outputs

    return start


def _on_ray(shared: Mapping[str, Any], run_on_ray: RunOnRay, db: Store, kind: str, job: str) -> StartRun:
    """Items run as Ray tasks (:mod:`agentmesh.runtime.on_ray`), each under a run id chosen here."""

    async def start(item: Item, key: str, previous: tuple[str, RunStatus] | None, out: ItemRun) -> Mapping[str, Any]:
        out.run_id = previous[0] if previous is not None else new_run_id()
        try:
            result = await run_there(
                run_on_ray,
                db,
                shared,
                out.run_id,
                resume=previous is not None,
                inputs=item.inputs,
                meta=_meta(kind, job, key, item),
            )
        except AgentmeshError as exc:
            out.run_id = exc.context.get("run")  # None: the worker failed before storing the run
            raise
        out.calls = result.calls
        return result.outputs

    return start
