"""Batches of independent items: throughput, how well a concurrency limit is used, and memory as a batch grows.

``bench_overhead.py`` measures one run; a user's job is thousands of them (``agentmesh run GRAPH --input-file
items.jsonl``: each item its own stored run, at most ``--concurrency`` at once). This script runs such batches
through the code ``agentmesh run --input-file`` uses (:func:`agentmesh.cli.batch.run_all` over
:func:`agentmesh.runtime.arun`, one model client and one store shared by the batch), minus the console, on the
shipped ``debate`` graph (three debaters, consensus stop, majority vote) with a model that answers an item's
calls so that the debaters disagree in round 1 and agree in round 2: six calls per item, as for an easy item.

Three parts:

* **throughput** (instant model): items and calls per second, the process's CPU per call, store bytes per item;
* **concurrency** (each call sleeps 0.5-1.5 x ``--delay-ms``, fixed per item, round and debater): wall time against
  the ideal, the batch's makespan if agentmesh cost nothing (items start in order as slots free up, each taking
  its critical path, per round its slowest call); near 1.0, the model and the limit set the pace, not agentmesh.
  With the CPU's share of the wall time: where it nears 100 %, agentmesh's own work is the bottleneck;
* **memory** (``tracemalloc``): what a batch holds at its end (the CLI keeps every item's result for its summary:
  answer, status, usage; with ``--json`` its per-node outputs too), per item, and what is left once the results
  are dropped.

    python bench/bench_batch.py                      # SQLite file in a temp dir; about two minutes
    python bench/bench_batch.py --db postgresql://root@127.0.0.1:5432/test   # the same on Postgres
    python bench/bench_batch.py --markdown           # also the tables as Markdown, for BENCHMARKS.md

It prints figures and nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import heapq
import os
import platform
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from agentmesh.cli.batch import Start, run_all
from agentmesh.cli.batch_summary import ItemOutcome
from agentmesh.models.client import ModelClient
from agentmesh.models.messages import CallContext, Choice, ModelRequest, ProviderResult, Usage
from agentmesh.models.providers.base import Provider
from agentmesh.models.settings import EndpointLimits
from agentmesh.runtime import arun, resolve_graph
from agentmesh.spec.graph import GraphSpec
from agentmesh.store import Store

CALLS_PER_ITEM = 6  # three debaters, round 1 split 2-1, round 2 unanimous: the consensus stop ends it there
ROUNDS_PER_ITEM = 2
PAD = "Let me work through this step by step, checking each intermediate product twice. " * 2  # ~170 bytes


class BatchModel(Provider):
    """Answers every debater at once, or after a delay: round 1 the third debater disagrees, round 2 all agree.
    Keeps nothing per call, so the memory measured is agentmesh's.

    With ``delay_s``, a call sleeps between 0.5 and 1.5 times it, fixed by the item, round and debater
    (:func:`call_delay`): served models' latencies vary with their answers' lengths, so a batch's calls do not
    all end at once (the same delay for every call would make every item's round end in the same instant, and
    the runs' work after it queue behind each other's)."""

    name = "bench"
    free = True

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def default_limits(self) -> EndpointLimits:
        return EndpointLimits(max_concurrency=1_000_000, max_retries=0, timeout_s=3600)

    @property
    def endpoint(self) -> str:
        return "bench"

    @property
    def model_name(self) -> str:
        return "bench"

    async def complete(self, request: ModelRequest, context: CallContext) -> ProviderResult:
        rnd, slot = context.round or 1, context.call_index or 0
        if self.delay_s:
            item = request.messages[-1].content.split("\n", 1)[0]
            await asyncio.sleep(call_delay(self.delay_s, item, rnd, slot))
        value = 50 if rnd == 1 and slot == 2 else 51
        text = f"{PAD}So 17*3 = {value}. The answer is \\boxed{{{value}}}."
        return ProviderResult(model="bench", choices=[Choice(text=text)], usage=Usage(prompt_tokens=120))


def question(i: int) -> str:
    return f"Item {i}: what is 17*3?"


def call_delay(delay_s: float, item: str, rnd: int, slot: int) -> float:
    """A call's delay: ``delay_s`` times 0.5 to 1.5, the same for the same item, round and debater."""
    digest = hashlib.blake2b(f"{item}|{rnd}|{slot}".encode(), digest_size=8).digest()
    return delay_s * (0.5 + int.from_bytes(digest) / 2**64)


def ideal_wall(delay_s: float, questions: Sequence[str], concurrency: int) -> float:
    """The batch's wall time if agentmesh cost nothing: items start in order as slots free up (``run_all``'s
    semaphore is first come, first served), each taking its critical path (per round, its slowest call)."""
    slots = [0.0] * concurrency
    for q in questions:
        path = sum(max(call_delay(delay_s, q, rnd, slot) for slot in range(3)) for rnd in (1, 2))
        heapq.heappush(slots, heapq.heappop(slots) + path)
    return max(slots)


def rss_mib() -> float:
    """This process's resident memory now (not its peak), MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def batch(
    spec: GraphSpec,
    store: Store,
    client: ModelClient,
    n: int,
    concurrency: int,
    start_at: int = 0,
    *,
    keep_outputs: bool = False,
) -> list[ItemOutcome]:
    """``n`` items (questions numbered from ``start_at``) as ``agentmesh run --input-file`` runs them."""

    def start(i: int) -> Start:
        inputs = {"question": question(i)}
        return lambda listeners: arun(spec, inputs, model=client, store=store, listeners=listeners)

    runs = [(ItemOutcome(line=i + 1, inputs={"question": str(i)}), start(start_at + i)) for i in range(n)]
    outcomes = await run_all(
        runs, concurrency, lambda kind, data: None, lambda outcome: None, keep_outputs=keep_outputs
    )
    failed = [o for o in outcomes if o.result is None or o.result.calls != CALLS_PER_ITEM]
    if failed:
        o = failed[0]
        raise SystemExit(f"{len(failed)} items did not run as expected; first: {o.error or o.result}")
    return outcomes


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def store_bytes(store: Store) -> int | None:
    """The SQLite file's size (with its WAL checkpointed into it); None on Postgres (its size is the server's)."""
    if store.engine.dialect.name != "sqlite":
        return None
    store.flush()
    with store.engine.connect() as conn:
        conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
    return Path(str(store.engine.url.database)).stat().st_size


async def throughput(spec: GraphSpec, store: Store, n: int, concurrency: int) -> dict[str, Any]:
    client = ModelClient(BatchModel())
    await batch(spec, store, client, 20, concurrency, start_at=10**9)  # warm-up (imports, caches)
    before_bytes = store_bytes(store)
    gc.collect()
    cpu0, t0 = cpu_s(), time.perf_counter()
    await batch(spec, store, client, n, concurrency)
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    after_bytes = store_bytes(store)
    await client.aclose()
    calls = n * CALLS_PER_ITEM
    return {
        "items": n,
        "concurrency": concurrency,
        "wall_s": wall,
        "items_per_s": n / wall,
        "calls_per_s": calls / wall,
        "cpu_us_per_call": cpu / calls * 1e6,
        "bytes_per_item": None if before_bytes is None or after_bytes is None else (after_bytes - before_bytes) / n,
    }


async def concurrency_use(spec: GraphSpec, store: Store, n: int, concurrency: int, delay_s: float) -> dict[str, Any]:
    client = ModelClient(BatchModel(delay_s))
    start_at = 2 * 10**9 + concurrency * 10**6
    cpu0, t0 = cpu_s(), time.perf_counter()
    await batch(spec, store, client, n, concurrency, start_at=start_at)
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    await client.aclose()
    ideal = ideal_wall(delay_s, [question(start_at + i) for i in range(n)], concurrency)
    return {
        "items": n,
        "concurrency": concurrency,
        "wall_s": wall,
        "ideal_s": ideal,
        "ratio": wall / ideal,
        "cpu_busy": cpu / wall,
    }


async def memory(spec: GraphSpec, store: Store, sizes: Sequence[int], concurrency: int) -> list[dict[str, Any]]:
    """Batches of growing size, their outcomes kept as the CLI keeps them until its summary (with ``--json``:
    every run's per-node outputs too), then dropped.

    Python memory is traced (``tracemalloc``: what is allocated and still referenced, which resident memory does
    not show -- the allocator keeps freed arenas) from just before each batch: ``held`` once it is over, ``left``
    once its outcomes are dropped (what the batch left behind: caches, the store's connections' buffers)."""
    client = ModelClient(BatchModel())
    await batch(spec, store, client, 50, concurrency, start_at=3 * 10**9)
    rows = []
    for keep_outputs in (False, True):
        for n in sizes:
            gc.collect()
            rss0 = rss_mib()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            start_at = 4 * 10**9 + n * 10**5 + keep_outputs * 10**8
            outcomes = await batch(spec, store, client, n, concurrency, start_at, keep_outputs=keep_outputs)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - base
            peak = tracemalloc.get_traced_memory()[1] - base
            del outcomes
            # the loop's callback that resumed this coroutine still holds gather's finished future (and so the
            # outcomes) until the next step
            await asyncio.sleep(0)
            gc.collect()
            left = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
            rows.append(
                {
                    "kept": "--json: with outputs" if keep_outputs else "summary (default)",
                    "items": n,
                    "peak_mib": peak / 2**20,
                    "held_mib": held / 2**20,
                    "kib_per_item": (held - left) / 1024 / n,
                    "left_mib": left / 2**20,
                    "rss_growth_mib": rss_mib() - rss0,
                }
            )
    await client.aclose()
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="a database URL (an empty Postgres database, say); default a temp SQLite file")
    parser.add_argument("--items", type=int, default=1000, help="items of the throughput part (default 1000)")
    parser.add_argument("--delay-ms", type=float, default=200.0, help="the model's delay in the concurrency part (ms)")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    args = parser.parse_args(argv)
    console = Console()
    spec = resolve_graph("debate")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'batch.db'}"
        with Store(url) as store:
            console.print(
                f"[bold]agentmesh batches[/]: {platform.python_version()}, {os.cpu_count()} CPUs, store "
                f"{store.engine.dialect.name}; graph debate (3 agents, consensus stop), {CALLS_PER_ITEM} calls an item"
            )
            results = asyncio.run(_all(spec, store, args))
    tables = _tables(*results, delay_ms=args.delay_ms)
    for table in tables:
        console.print(table)
    if args.markdown:
        for table in tables:
            print(_markdown(table))


async def _all(
    spec: GraphSpec, store: Store, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    speed = [await throughput(spec, store, args.items, c) for c in (4, 16, 64)]
    delay = args.delay_ms / 1000
    used = [await concurrency_use(spec, store, 4 * c, c, delay) for c in (8, 32, 128)]
    mem = await memory(spec, store, (200, 800), 16)
    return speed, used, mem


def _tables(
    speed: list[dict[str, Any]], used: list[dict[str, Any]], mem: list[dict[str, Any]], *, delay_ms: float
) -> list[Table]:
    t1 = Table(title="throughput, instant model")
    for col in ("items", "concurrency", "wall s", "items/s", "calls/s", "CPU µs / call", "store bytes / item"):
        t1.add_column(col, justify="right")
    for r in speed:
        per_item = "-" if r["bytes_per_item"] is None else f"{r['bytes_per_item']:,.0f}"
        t1.add_row(
            str(r["items"]),
            str(r["concurrency"]),
            f"{r['wall_s']:.2f}",
            f"{r['items_per_s']:,.0f}",
            f"{r['calls_per_s']:,.0f}",
            f"{r['cpu_us_per_call']:,.0f}",
            per_item,
        )
    t2 = Table(title=f"concurrency limit used, model sleeping {delay_ms:g} ms a call (ideal: no agentmesh cost)")
    for col in ("items", "concurrency", "wall s", "ideal s", "x ideal", "CPU busy"):
        t2.add_column(col, justify="right")
    for r in used:
        t2.add_row(
            str(r["items"]),
            str(r["concurrency"]),
            f"{r['wall_s']:.2f}",
            f"{r['ideal_s']:.2f}",
            f"{r['ratio']:.3f}",
            f"{r['cpu_busy']:.0%}",
        )
    t3 = Table(title="memory (tracemalloc, MiB): a batch's outcomes kept as the CLI keeps them, then dropped")
    for col in ("outcomes", "items", "peak", "held at the end", "KiB / item held", "left after drop", "RSS growth"):
        t3.add_column(col, justify="right")
    for r in mem:
        t3.add_row(
            r["kept"],
            str(r["items"]),
            f"{r['peak_mib']:.1f}",
            f"{r['held_mib']:.1f}",
            f"{r['kib_per_item']:.1f}",
            f"{r['left_mib']:.1f}",
            f"{r['rss_growth_mib']:.1f}",
        )
    return [t1, t2, t3]


def _markdown(table: Table) -> str:
    headers = [str(c.header) for c in table.columns]
    cells = [[str(x) for x in c._cells] for c in table.columns]
    lines = [f"{table.title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in zip(*cells, strict=True)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
