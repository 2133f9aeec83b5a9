"""A batch as the store holds it: the id each line's run gets (:func:`batch_run_id`) and the claims that keep two
processes from running one run twice (:func:`start_line`, :func:`resume_claimed`: the loser's run is
:class:`Elsewhere`); what ``resume --batch`` continues (:func:`unfinished_of`: the runs cut or failed, and the lines
that never started, read again from the batch's file); a batch's id from a unique prefix of it (:func:`batch_id`)
and every run of a batch (:func:`batch_runs`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentmesh import datasets
from agentmesh._text import counted
from agentmesh.errors import AgentmeshError, BatchNotFoundError, ConfigError
from agentmesh.runtime.run import RunResult
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.loader import stored_graph
from agentmesh.spec.stop import Budget
from agentmesh.store import RunRecord, RunStatus, Store
from agentmesh.store.owner import OWNER_KEY, current_owner, describe_owner, owner_alive


class Elsewhere(Exception):
    """Raised by a batch's :data:`~agentmesh.cli.batch.Start` when another process took its run first (it resumed
    the run, or started the line): the outcome is then skipped, neither run here nor failed."""


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


def unfinished_of(store: Store, batch: str) -> tuple[list[RunRecord], Unstarted | None, str | None]:
    """What ``resume --batch`` continues: the batch's interrupted and failed runs, and those left running by a
    process known to be dead (a SIGKILL), in the batch's order; the lines that never started, when the batch can
    tell (:func:`unstarted_of`); and why some lines that never started cannot be run (their file is gone or
    changed), or ``None``. Runs still marked running by a live process, or one this machine cannot check, are
    left out (they are resumed by id, with ``--force`` if need be).

    Lines that cannot be run are no reason to leave the stored runs cut: those are resumed, and the reason is
    returned for the command to say at its end and to fail on (exit 1, as for a failed item). It was printed
    up front, where the progress and summary scrolled it away, and the command exited 0 with the lines undone."""
    found = batch_runs(store, batch, then=" (agentmesh show RUN names the batch of a run)")
    todo = [
        r
        for r in found
        if r.status in (RunStatus.INTERRUPTED, RunStatus.FAILED)
        or (r.status == RunStatus.RUNNING and owner_alive(r.meta.get(OWNER_KEY)) is False)
    ]
    unrun: str | None = None
    try:
        unstarted = unstarted_of(found)
    except ConfigError as exc:
        if not todo:
            raise
        # the cut and failed runs are resumed all the same; the lines that cannot be read again are named at the end
        unrun, unstarted = str(exc), None
    if not todo and unstarted is None:
        counts = Counter(str(r.status) for r in found)
        told = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        raise ConfigError(f"batch {batch}: nothing to resume ({told}); a running run is resumed by its id")
    return sorted(todo, key=lambda r: int((r.meta.get("batch") or {}).get("line") or 0)), unstarted, unrun


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
    where = f"batch {tag.get('id')}: {missing} of its {counted(int(tag.get('items') or 0), 'line')} never started"
    path = Path(str(tag.get("file")))
    # which lines: without the file their numbers are unknown (blank lines are skipped), those with runs are not
    first = f"its first {counted(int(tag.get('items') or 0), 'item')}" if tag.get("limit") is not None else "its items"
    which = f"they are the lines of {first} other than {line_list([int(n) for n in started if n is not None])}"
    if "sha256" not in tag:
        raise ConfigError(
            f"{where}, and the batch does not say how it read {path} (an older agentmesh ran it): those lines "
            f"cannot be run ({which}, which have runs)",
            file=str(path),
        )
    if not path.is_file() or file_hash(path) != tag["sha256"]:
        state = "is gone" if not path.is_file() else "has changed since"
        raise ConfigError(
            f"{where}, and {path} {state}: those lines cannot be read from it again (the batch knows its lines by "
            f"their numbers in the file it read, whose hash it kept; {which}, which have runs); put the file back "
            "as it was and resume the batch again to run them",
            file=str(path),
        )
    spec = stored_graph(runs[0].meta.get("spec"), runs[0].id)
    from agentmesh.systems.sejury.jury import batch_labels

    # read as the batch read it: a jury's graph keeps the human labels aside (they were refused as unknown inputs)
    items = datasets.read_items(path, spec, tag.get("given") or {}, keep=batch_labels(spec), limit=tag.get("limit"))
    budget = runs[0].meta.get("budget")
    return Unstarted(
        spec=spec,
        items=[item for item in items if item.line not in started],
        model=runs[0].model,
        budget=Budget.model_validate(budget) if budget else None,
        tag={k: v for k, v in tag.items() if k not in ("line", "gold", "human")},
        source=runs[0].meta.get("source"),
    )


def line_list(numbers: Sequence[int]) -> str:
    """``line 3`` or ``lines 2, 5-8``: line numbers with runs of consecutive ones as ranges."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return ("line " if len(numbers) == 1 else "lines ") + text


def file_hash(path: Path) -> str:
    """The SHA-256 of a batch's input file, stored with its runs (:func:`agentmesh.cli.batch.run_batch`): whether
    the file is still the one the batch read, when ``resume --batch`` reads it again (:func:`unstarted_of`)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def batch_id(store: Store, batch: str, *, then: str = "") -> str:
    """The id of the batch a ``--batch`` names, by its id or a unique prefix of it, as a run is named by a prefix
    (:meth:`Store.resolve_batch`): what ``runs``, ``resume``, ``delete`` and ``report`` take by ``--batch``. An
    unknown or ambiguous prefix is a :class:`BatchNotFoundError` in the words of a run's (the candidates named),
    ``then`` appended."""
    try:
        return store.resolve_batch(batch)
    except BatchNotFoundError as exc:
        raise BatchNotFoundError(f"{exc}{then}", **exc.context) from None


def batch_runs(store: Store, batch: str, *, then: str = "") -> list[RunRecord]:
    """Every run of the batch ``batch`` names (its id or a unique prefix: :func:`batch_id`), newest first, or a
    :class:`BatchNotFoundError` naming it and the store (``then`` appended) when it has none."""
    found = store.list_runs(batch=batch_id(store, batch, then=then), limit=1_000_000)
    if not found:  # (deleted since it was resolved)
        raise BatchNotFoundError(f"no batch {batch!r} in {store.url}{then}", batch=batch, url=store.url)
    return found
