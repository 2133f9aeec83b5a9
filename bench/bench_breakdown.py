"""Where agentmesh's orchestration overhead goes: issue 5's debate with parts of agentmesh's work taken away.

``bench_overhead.py`` says how agentmesh compares with LangGraph; this script says why, by elimination. It runs the
same 7-agent x 4-round debate (instant scripted model, SQLite file store) in interleaved rounds, each ratio taken
round by round against LangGraph's ``Send`` graph without a checkpointer, as:

* **agentmesh** -- as shipped;
* **writer process (emulated)** -- agentmesh with its store's hot writes executed by another process, in two
  forms. This process still does its share (each model call's event fields and each checkpoint's serialised
  rows, packed with msgpack and sent over a pipe to a process that reads them), but the events and checkpoints
  are not written at all; the runs' own rows (start, end) still are. *Batches at the run's end*: the writer
  thread sends each batch and waits for an acknowledgement -- with an instant model it gets the GIL only once
  the run waits for its end, so a real writer process's work would all come after the last step: a floor.
  *Each write sent as posted*: the event loop sends it the moment it is queued, without waiting, which is what
  would let a real writer process work while the run goes on (its last batch still to be waited for);
* **store writes free** -- the same without even that share: the events and checkpoints are acknowledged and
  dropped, so what remains is agentmesh's runtime (prompts, requests, the model client, parsing, LangGraph's loop
  and checkpoint bookkeeping, the run's start and end);
* **store writes and agents' calls free** -- and every agent's call answered at once from the scripted model
  (no prompt, request, client or parser): what is left is the framework around LangGraph;
* **LangGraph 1 node/round (gather)** -- LangGraph's own loop for the same debate, for reference.

For each it prints wall time and the CPU time of the event loop's thread and of the process's other threads (the
store's writer) per run: with an instant model the loop has no idle moment, so under one GIL a run costs about the
sum of the two. Then the agent call's parts, each timed in a tight loop. These variants exist only here: agentmesh
itself never skips a write.

    python bench/bench_breakdown.py [--reps N] [--markdown]     # about a minute
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import struct
import subprocess
import sys
import time
import timeit
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import ormsgpack
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_overhead as bench  # the workload, the contenders and the interleaved harness

from agentmesh.runtime.context import AgentAnswer, RunContext
from agentmesh.runtime.recording import CallEvent
from agentmesh.store import writes
from agentmesh.store.checkpointer import CheckpointWrite
from agentmesh.store.events import AppendEvents

AGENTMESH = "agentmesh (spec -> run, store on, SQLite file)"
PROCESS = "agentmesh, writer process (emulated, batches at the run's end)"
PROCESS_LOOP = "agentmesh, writer process (emulated, each write sent as posted)"
FREE_WRITES = "agentmesh, store writes free"
FREE_CALLS = "agentmesh, store writes and agents' calls free"
GATHER = "LangGraph 1 node/round (gather), no checkpointer"


# ----------------------------------------------------------------------------------------------------------------
# taking work away: a variant sets the mode for the length of its run; the store's writer thread and the run's
# context read it (a run's writes are all executed before the run returns: its end is committed after them)


@dataclass
class Stats:
    skipped_events: int = 0
    skipped_checkpoints: int = 0
    frames: int = 0
    sent_bytes: int = 0
    cpu: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))  # (loop, all)


STATS = Stats()
_mode: str | None = None  # None, "process", "process-loop", "free", "no-calls"
_answers: bench.ScriptedModel | None = None  # the model a "no-calls" run answers from
_original_transaction = writes.BatchWriter._transaction
_original_ask = RunContext.ask
_original_enqueue = writes.BatchWriter._enqueue


class EchoProcess:
    """Another process that reads length-prefixed frames from a pipe, acknowledging those that ask with one byte:
    the transport a writer process would use, without its database work."""

    def __init__(self) -> None:
        code = (
            "import os, struct\n"
            "def read(n):\n"
            "    got = b''\n"
            "    while len(got) < n:\n"
            "        part = os.read(0, min(n - len(got), 1 << 20))\n"
            "        if not part: raise SystemExit(0)\n"
            "        got += part\n"
            "    return got\n"
            "while True:\n"
            "    n, reply = struct.unpack('<IB', read(5))\n"
            "    read(n)\n"
            "    if reply: os.write(1, b'k')\n"
        )
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._out, self._in = self.proc.stdin.fileno(), self.proc.stdout.fileno()

    def send(self, payload: bytes, *, reply: bool = False) -> None:
        frame = struct.pack("<IB", len(payload), reply) + payload
        view = memoryview(frame)
        while view:
            view = view[os.write(self._out, view) :]
        STATS.frames += 1
        STATS.sent_bytes += len(frame)

    def round_trip(self, payload: bytes) -> None:
        self.send(payload, reply=True)
        if os.read(self._in, 1) != b"k":
            raise RuntimeError("the echo process did not acknowledge a frame")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


_echo: EchoProcess | None = None


def _is_hot(op: Any) -> bool:
    return isinstance(op, AppendEvents | CheckpointWrite)


def _note_skipped(op: Any) -> None:
    if isinstance(op, AppendEvents):
        STATS.skipped_events += len(op.sources)
    else:
        STATS.skipped_checkpoints += 1


def _message(op: Any) -> Any:
    """The data a writer process would need for ``op``, built as this process would have to build it."""
    _note_skipped(op)
    if isinstance(op, AppendEvents):
        # a model call's raw fields (the other process would check and redact them); other events come built
        return [
            ["call", source.record.event_fields()] if isinstance(source, CallEvent) else ["row", dict(source)]
            for source in op.sources
        ]
    statements = op.prepare()  # channel values serialised (LangGraph's serde must run where the values are)
    cells = [cell.cell_contents for cell in statements.__closure__ or ()]
    return [cell for cell in cells if isinstance(cell, list | dict)]  # the rows the statements would write


def _transaction(self: writes.BatchWriter, ops: Sequence[Any], *, coalesce: bool) -> list[Any]:
    mode = _mode
    if mode not in ("process", "free", "no-calls"):
        return _original_transaction(self, ops, coalesce=coalesce)
    hot = [_is_hot(op) for op in ops]
    if mode == "process":
        frame = [_message(op) for op, is_hot in zip(ops, hot, strict=True) if is_hot]
        if frame:
            assert _echo is not None
            _echo.round_trip(ormsgpack.packb(frame, option=ormsgpack.OPT_NON_STR_KEYS))
    else:
        for op, is_hot in zip(ops, hot, strict=True):
            if is_hot:
                _note_skipped(op)
    rest = [op for op, is_hot in zip(ops, hot, strict=True) if not is_hot]
    results = iter(_original_transaction(self, rest, coalesce=coalesce) if rest else [])
    return [
        ([] if isinstance(op, AppendEvents) else None) if is_hot else next(results)
        for op, is_hot in zip(ops, hot, strict=True)
    ]


async def _ask(self: RunContext, **kwargs: Any) -> AgentAnswer:
    if _mode != "no-calls":
        return await _original_ask(self, **kwargs)
    assert _answers is not None
    variables = kwargs["variables"]
    previous = [p["text"] for p in variables.get("previous") or []]
    text = await _answers(kwargs["slot"], kwargs["round"], variables["question"], previous)
    self.calls_made += 1
    return AgentAnswer(agent=kwargs["agent"], slot=kwargs["slot"], text=text)


def _enqueue(self: writes.BatchWriter, op: Any, future: writes.Resolvable, *, wake: bool) -> None:
    if _mode != "process-loop" or not _is_hot(op):
        _original_enqueue(self, op, future, wake=wake)
        return
    # sent from the event loop the moment it is posted, without waiting for an answer: what lets a writer process
    # work while the run goes on (its outcome would come back later; here it is acknowledged at once)
    assert _echo is not None
    _echo.send(ormsgpack.packb([_message(op)], option=ormsgpack.OPT_NON_STR_KEYS))
    future.set_running_or_notify_cancel()
    future.set_result([] if isinstance(op, AppendEvents) else None)


@contextmanager
def variants_installed() -> Iterator[None]:
    """The hooks the variants need (the writer's transaction and queue, the run's agent call), in place for the
    measurement only (a mode of ``None`` passes through)."""
    writes.BatchWriter._transaction = _transaction  # type: ignore[method-assign]
    writes.BatchWriter._enqueue = _enqueue  # type: ignore[method-assign]
    RunContext.ask = _ask  # type: ignore[method-assign]
    try:
        yield
    finally:
        writes.BatchWriter._transaction = _original_transaction  # type: ignore[method-assign]
        writes.BatchWriter._enqueue = _original_enqueue  # type: ignore[method-assign]
        RunContext.ask = _original_ask  # type: ignore[method-assign]


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` noting the CPU time of the event loop's thread and of the whole process for each run."""

    async def run(model: bench.ScriptedModel, env: bench.BenchEnv) -> tuple[list[str], int]:
        loop0, all0 = time.thread_time(), time.process_time()
        result = await fn(model, env)
        STATS.cpu[name].append((time.thread_time() - loop0, time.process_time() - all0))
        return result  # type: ignore[no-any-return]

    return run


def _variant(name: str, mode: str | None) -> bench.Contender:
    async def run(model: bench.ScriptedModel, env: bench.BenchEnv) -> tuple[list[str], int]:
        global _mode, _answers
        _mode, _answers = mode, model
        try:
            final, kept = await bench.run_agentmesh(model, env)
        finally:
            _mode, _answers = None, None
        # without stored events the run's totals count no calls: the answers kept are the model's calls
        return final, kept if mode is None else model.calls

    return bench.Contender(name, _timed(name, run))


CONTENDERS = [
    bench.Contender(bench.BASELINE, _timed(bench.BASELINE, bench.run_langgraph)),
    bench.Contender(GATHER, _timed(GATHER, bench.run_langgraph_gather)),
    _variant(AGENTMESH, None),
    _variant(PROCESS, "process"),
    _variant(PROCESS_LOOP, "process-loop"),
    _variant(FREE_WRITES, "free"),
    _variant(FREE_CALLS, "no-calls"),
]


# ----------------------------------------------------------------------------------------------------------------
# an agent's call, part by part


def call_parts(number: int) -> list[list[str]]:
    """µs per agent call for each part of it, timed in a tight loop (so cheaper than inside a run, where the
    caches are shared with everything else a run does)."""
    from agentmesh.models.client import ModelClient, _within
    from agentmesh.models.messages import CallContext, CallRecord, Choice, ModelResponse, Usage
    from agentmesh.runtime.budget import BudgetTracker
    from agentmesh.runtime.operators.rounds import _as_previous, _shown
    from agentmesh.spec import graph_from_data
    from agentmesh.spec.operators import RoundsParams
    from agentmesh.spec.templates import render
    from agentmesh.store.events import event_row

    spec = graph_from_data(bench.AGENTMESH_SPEC)
    model = bench.ScriptedModel()
    client = ModelClient(bench._BenchProvider(model).provider)
    card = spec.agents["agent"]
    params = spec.nodes["debate"].params
    assert isinstance(params, RoundsParams)
    layer = [{"slot": s, "agent": "agent", "text": bench.scripted_answer(s, 1), "key": None} for s in range(7)]
    ctx = RunContext(
        run_id="r", spec=spec, model=client, store=None, budget=BudgetTracker([]), inputs={"question": bench.QUESTION}
    )
    shown = _as_previous(params, _shown(params, 3, 2, layer))
    extra = {"round": 2, "index": 3, "previous": shown, "own_previous": None}
    variables = ctx.variables({}, card, extra)
    request = ctx.build_request(card, variables, node="debate")
    context = CallContext(run_id="r", node="debate", agent="agent", round=2, call_index=3)
    response = ModelResponse(
        model="bench", choices=(Choice(text=bench.scripted_answer(3, 2)),), usage=Usage(prompt_tokens=1)
    )
    record = CallRecord(
        reference="bench:bench", context=context, request=request, attempt=1, request_hash="0" * 64, response=response
    )
    sync_parts: list[tuple[str, Callable[[], Any]]] = [
        ("prompt rendered (Jinja sandbox)", lambda: render(card.prompt, dict(variables))),
        ("request built (render + pydantic)", lambda: ctx.build_request(card, variables, node="debate")),
        ("request hash", request.request_hash),
        ("call context (pydantic)", lambda: CallContext(run_id="r", node="d", agent="a", round=2, call_index=3)),
        (
            "response (pydantic)",
            lambda: ModelResponse(model="bench", choices=response.choices, usage=response.usage, latency_s=0.1),
        ),
        (
            "call record (pydantic)",
            lambda: CallRecord(reference="b", context=context, request=request, attempt=1, response=response),
        ),
        ("reply parsed", lambda: card.parser(response.text)),
        ("answer (pydantic) and its dump", lambda: AgentAnswer(agent="agent", slot=3, text=response.text).model_dump()),
        ("event row (writer: fields, redaction)", lambda: event_row("model_call", **record.event_fields())),
    ]
    rows = []
    for name, fn in sync_parts:
        fn()
        rows.append([name, f"{timeit.timeit(fn, number=number) / number * 1e6:.1f}"])

    async def nothing() -> None:
        return None

    async def timeout_only() -> None:
        for _ in range(number):
            await _within(3600, nothing())

    async def attempt() -> None:
        for _ in range(number):
            await client.complete(request, context)

    async def ask() -> None:
        for _ in range(number):
            await ctx.ask(node="debate", agent="agent", slot=3, round=2, variables=variables)

    for name, coro in (
        ("the call's timeout (set and cancelled)", timeout_only),
        ("model client call (bench provider)", attempt),
        ("whole agent call (RunContext.ask, no store)", ask),
    ):
        asyncio.run(coro())
        start = time.perf_counter()
        asyncio.run(coro())
        rows.append([name, f"{(time.perf_counter() - start) / number * 1e6:.1f}"])
    return rows


# ----------------------------------------------------------------------------------------------------------------
# concurrency: where the time beyond the critical path goes


class TimedModel(bench.ScriptedModel):
    """The scripted model, sleeping 20 ms a call, noting when each call starts and ends."""

    def __init__(self) -> None:
        super().__init__(bench.SLEEP_S)
        self.marks: list[tuple[int, float, float]] = []  # (round, start, end)

    async def __call__(self, agent: int, rnd: int, question: str, previous: Sequence[str]) -> str:
        start = time.perf_counter()
        text = await super().__call__(agent, rnd, question, previous)
        self.marks.append((rnd, start, time.perf_counter()))
        return text


TIMELINE_HEADER = [
    "contender",
    "start -> first call ms",
    "a round's calls start within ms",
    "a round's last answer -> next round's first call ms",
    "last answer -> result ms",
    "wall ms",
    "x critical path",
]


async def timeline(runs: int) -> list[list[str]]:
    """Medians over ``runs`` runs (interleaved) of where a debate's wall time goes with the model sleeping."""
    contenders = [(AGENTMESH, bench.run_agentmesh), (GATHER, bench.run_langgraph_gather)]
    parts: dict[str, list[list[float]]] = {name: [] for name, _ in contenders}
    with TemporaryDirectory(prefix="bench-breakdown-") as tmp:
        async with AsyncExitStack() as stack:
            envs = {name: bench.BenchEnv(tmp=Path(tmp) / str(i), stack=stack) for i, (name, _) in enumerate(contenders)}
            for env in envs.values():
                env.tmp.mkdir()
            # one model per contender: a contender's setup (agentmesh's provider adapter) keeps the first it is given
            models = {name: TimedModel() for name, _ in contenders}
            for i in range(runs + 2):  # two warm-ups each
                for name, run in contenders:
                    model = models[name]
                    model.marks.clear()
                    model.calls = 0
                    started = time.perf_counter()
                    await run(model, envs[name])
                    ended = time.perf_counter()
                    if i < 2:
                        continue
                    first = {r: min(s for rr, s, _ in model.marks if rr == r) for r in range(1, bench.ROUNDS + 1)}
                    last_start = {r: max(s for rr, s, _ in model.marks if rr == r) for r in first}
                    last_end = {r: max(e for rr, _, e in model.marks if rr == r) for r in first}
                    parts[name].append(
                        [
                            first[1] - started,
                            statistics.mean(last_start[r] - first[r] for r in first),
                            statistics.mean(first[r + 1] - last_end[r] for r in range(1, bench.ROUNDS)),
                            ended - last_end[bench.ROUNDS],
                            ended - started,
                        ]
                    )
    rows = []
    for name, runs_parts in parts.items():
        medians = [statistics.median(p[i] for p in runs_parts) * 1e3 for i in range(5)]
        wall = medians[4]
        ratio = wall / 1e3 / bench.CRITICAL_PATH_S
        rows.append([name, *(f"{m:.2f}" for m in medians[:4]), f"{wall:.1f}", f"{ratio:.3f}"])
    return rows


# ----------------------------------------------------------------------------------------------------------------


async def measure(reps: int, warmup: int) -> tuple[list[bench.Measurement], float]:
    """The variants in interleaved rounds; also the garbage collector's time during the timed rounds."""
    global _echo
    _echo = EchoProcess()
    collecting = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collecting[1] = time.perf_counter()
        else:
            collecting[0] += time.perf_counter() - collecting[1]

    try:
        gc.callbacks.append(on_gc)
        with variants_installed():
            results = await bench.measure_all(CONTENDERS, bench.INSTANT, reps, warmup)
    finally:
        gc.callbacks.remove(on_gc)
        _echo.close()
        _echo = None
    return results, collecting[0]


HEADER = [
    "variant",
    "ms / run",
    "x Send same round",
    "event loop CPU ms / run",
    "other threads CPU ms / run",
    "CPU ms / run",
]


def rows_for(results: list[bench.Measurement], reps: int) -> list[list[str]]:
    rows = []
    for m in results:
        cpu = STATS.cpu[m.contender.name][-reps:]
        loop = statistics.median(c[0] for c in cpu) * 1e3
        whole = statistics.median(c[1] for c in cpu) * 1e3
        ratio = m.paired_ratio
        rows.append(
            [
                m.contender.name,
                f"{m.median_s * 1e3:.2f}",
                "-" if ratio is None else f"{ratio:.2f}",
                f"{loop:.2f}",
                f"{max(0.0, whole - loop):.2f}",
                f"{whole:.2f}",
            ]
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=60, help="interleaved timed rounds (60)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs of each variant first (5)")
    parser.add_argument("--call-reps", type=int, default=20_000, help="tight-loop repetitions per call part")
    parser.add_argument("--timeline-runs", type=int, default=20, help="runs per contender with the 20 ms model (20)")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 150))
    console.print(f"[bold]machine[/bold]: {bench.machine()}")
    console.print(f"variants of the debate in {args.reps} interleaved rounds after {args.warmup} warm-ups ...")
    results, gc_s = asyncio.run(measure(args.reps, args.warmup))
    bench.print_table(
        console, "Where a run's time goes (instant model)", HEADER, rows_for(results, args.reps), args.markdown
    )
    total = sum(sum(m.seconds) for m in results)
    console.print(
        f"garbage collection: {gc_s * 1e3:.0f} ms of the {total * 1e3:.0f} ms measured ({gc_s / total:.1%}); "
        f"left out: {STATS.skipped_events:,} events and {STATS.skipped_checkpoints:,} checkpoint writes, "
        f"{STATS.frames:,} frames sent to the echo process ({STATS.sent_bytes / max(1, STATS.frames):,.0f} B each)"
    )
    if not STATS.skipped_events or not STATS.skipped_checkpoints or not STATS.frames:
        raise SystemExit("the variants took nothing away: the store's write types changed; update this script")
    console.print(f"\nan agent's call, part by part ({args.call_reps:,} times each) ...")
    bench.print_table(console, "One agent call, µs", ["part", "µs"], call_parts(args.call_reps), args.markdown)
    console.print(f"\nthe model sleeping 20 ms a call, {args.timeline_runs} runs each (interleaved) ...")
    bench.print_table(
        console,
        f"Where a run's time goes beyond the critical path ({bench.ROUNDS} x 20 ms)",
        TIMELINE_HEADER,
        asyncio.run(timeline(args.timeline_runs)),
        args.markdown,
    )


if __name__ == "__main__":
    main()
