"""Orchestration overhead, concurrency and checkpoint storage of a multi-agent debate, for baseline runtimes.

Run it (from the repository root, in the project's venv, with the ``bench`` extra installed)::

    pip install -e ".[bench]"                 # once: the baselines
    python bench/bench_overhead.py            # overhead + concurrency + storage, 30 timed runs after 3 warm-ups
    python bench/bench_overhead.py --quick    # fewer runs, for a smoke test
    python bench/bench_overhead.py --storage  # the storage part only

Other options: ``--reps N --warmup N --sleep-reps N``, ``--parts overhead concurrency storage``,
``--only SUBSTRING`` (run only the contenders whose name contains it), ``--markdown`` (also print the tables as
Markdown, for ``BENCHMARKS.md``). It prints figures; it is never run as a timed test.

The workload is a 7-agent x 4-round debate. In round r every agent receives the question and the 7 answers of
round r-1 (in agent order; round 1: the question only) and returns a 200-byte answer from a scripted model:

* ``overhead``: the model is instant (an ``async def`` returning a fixed 200-byte string, no sleep), so the time
  measured is the runtime's own bookkeeping. Figure: microseconds per agent call = wall time of one whole run
  (graph already compiled; per-run setup such as a new checkpoint thread included) / 28 calls, median over the
  timed runs; and each contender's ratio to the hand-written LangGraph graph without a checkpointer, both as the
  ratio of the medians and as the median of the per-round ratios ("x same round"). The contenders are measured
  in rounds, each running once per round in a rotating order, so that all of them meet the same phases of a
  shared machine whose speed drifts (by 30-70 % within a minute on the 2-core VMs measured). One full garbage
  collection before the timed rounds, none forced between runs (a forced full collection empties CPython's free
  lists and makes the next run ~1 ms slower).
* ``concurrency``: the model sleeps 20 ms a call. The critical path is 4 rounds x 20 ms = 80 ms; figure: median
  wall ms of a run and its ratio to 80 ms (target <= 1.10 for the parallel implementations).
* ``storage``: LangGraph's ``SqliteSaver`` (sync, on a file) with the transcript in state (a list channel with an
  ``operator.add`` reducer, each round appending 7 x 200 bytes) at 5, 10, 20 and 50 rounds: bytes of the SQLite
  file after ``VACUUM`` and bytes per content byte (content = rounds x 7 x 200 bytes). For comparison the same
  graph with LangGraph's (beta) ``DeltaChannel`` for the transcript, which checkpoints writes instead of values.

The ``other load`` column is the mean CPU used by other processes while a contender was measured, in cores (from
``/proc/stat`` minus this process's own CPU time; "-" when the measurement took under 0.5 s, too short for 10 ms
clock ticks): on a small shared machine anything above ~0.1 means the row's figures may be inflated; re-run when
it is quiet.

Contenders: plain asyncio (``asyncio.gather`` per round; the floor); a hand-written LangGraph ``StateGraph`` with
``Send`` fan-out (one task per agent call, an ``operator.add`` reducer collecting the answers, a router node that
sends the next round) without a checkpointer (async, the reference for the ratios; and sync), with ``SqliteSaver``
(sync graph, ``invoke``) and with ``AsyncSqliteSaver`` (async graph, ``ainvoke``), both on a file in a temp dir,
a new thread per run, LangGraph's default durability ("async"); pydantic-graph (``GraphBuilder``: a step that
returns the round's 7 inputs, ``.map()`` fan-out to an agent step, a ``reduce_list_append`` join, a decision that
loops); and, as extras, LangGraph with one node per round that gathers its 7 calls (the other encoding issue 5
allows), without a checkpointer and with ``AsyncSqliteSaver``.

Every contender builds the same debate, keeps every answer and returns the final round's answers. Each timed run
is checked (outside the timed region): the final answers must equal the expected ones, the contender must report
28 kept answers and the model must have been called exactly 28 times; the first (untimed) run of each contender
also has the model check that every call received the question and exactly the previous round's answers.

Adding a contender (e.g. agentmesh's runtime): write ``async def run_x(model: ScriptedModel, env: BenchEnv) ->
tuple[list[str], int]`` that runs the debate once with ``model`` (``await model(agent, rnd, question, previous)``;
``model.call_sync`` for sync code) and returns (final round's answers in agent order, number of answers kept),
and append ``Contender("name", run_x)`` to ``CONTENDERS``. One-time setup (compiling a graph, opening a store
file under ``env.tmp``) goes through ``await env.once(key, factory)``; context managers entered on
``env.stack`` are closed after the measurements. ``measure_all(contenders, mode, reps)`` does the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import importlib.metadata
import json
import operator
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

from rich.console import Console
from rich.table import Table

# ----------------------------------------------------------------------------------------------------------------
# the workload

AGENTS = 7
ROUNDS = 4
ANSWER_BYTES = 200
QUESTION = "What is 17*3? Answer with a number and one sentence of reasoning."
CALLS = AGENTS * ROUNDS
SLEEP_S = 0.020
CRITICAL_PATH_S = ROUNDS * SLEEP_S
CONCURRENCY_TARGET = 1.10
STORAGE_ROUNDS = (5, 10, 20, 50)


def scripted_answer(agent: int, rnd: int) -> str:
    """The fixed 200-byte (ASCII) answer of `agent` in round `rnd`."""
    head = f"Agent {agent}, round {rnd}: 17*3 = 51. "
    return (head + "I keep my answer after reading the others. " * 6)[:ANSWER_BYTES]


def answer_table(rounds: int) -> list[tuple[str, ...]]:
    """answer_table(r)[rnd] = the answers of round rnd in agent order; index 0 is the empty 'round 0'."""
    return [(), *(tuple(scripted_answer(a, r) for a in range(AGENTS)) for r in range(1, rounds + 1))]


def expected_final(rounds: int = ROUNDS) -> list[str]:
    return list(answer_table(rounds)[rounds])


class ScriptedModel:
    """The scripted model: returns the fixed answer of (agent, round), after `delay_s` (0: instantly).

    ``calls`` counts invocations. With ``check`` on, every call asserts that it received the question and exactly
    the previous round's answers in agent order (used on the untimed verification run only).
    """

    def __init__(self, delay_s: float = 0.0, rounds: int = ROUNDS) -> None:
        self.delay_s = delay_s
        self.rounds = rounds
        self.table = answer_table(rounds)
        self.calls = 0
        self.check = False
        self._lock = threading.Lock()

    def _verify(self, agent: int, rnd: int, question: str, previous: Sequence[str]) -> None:
        if question != QUESTION:
            raise AssertionError(f"agent {agent} round {rnd}: wrong question {question!r}")
        if not 0 <= agent < AGENTS or not 1 <= rnd <= self.rounds:
            raise AssertionError(f"no such call: agent {agent} round {rnd}")
        if tuple(previous) != self.table[rnd - 1]:
            raise AssertionError(f"agent {agent} round {rnd}: did not receive exactly round {rnd - 1}'s answers")

    async def __call__(self, agent: int, rnd: int, question: str, previous: Sequence[str]) -> str:
        self.calls += 1
        if self.check:
            self._verify(agent, rnd, question, previous)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.table[rnd][agent]

    def call_sync(self, agent: int, rnd: int, question: str, previous: Sequence[str]) -> str:
        """The same model for sync code (sync LangGraph nodes run in worker threads)."""
        with self._lock:
            self.calls += 1
        if self.check:
            self._verify(agent, rnd, question, previous)
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.table[rnd][agent]


# ----------------------------------------------------------------------------------------------------------------
# contenders


@dataclass
class BenchEnv:
    """What a contender gets besides the model: a temp dir, an exit stack, and a cache for one-time setup.

    One env per (contender, mode) measurement; it lives across the verification run, warm-ups and timed runs.
    """

    tmp: Path
    stack: AsyncExitStack
    cache: dict[str, Any] = field(default_factory=dict)
    runs: int = 0  # incremented by measure_all() before each run (e.g. for a fresh checkpoint thread id)

    async def once(self, key: str, factory: Callable[[], Awaitable[Any]]) -> Any:
        if key not in self.cache:
            self.cache[key] = await factory()
        return self.cache[key]


RunFn = Callable[[ScriptedModel, BenchEnv], Awaitable[tuple[list[str], int]]]


@dataclass(frozen=True)
class Contender:
    name: str
    run: RunFn  # runs the debate once: (final round's answers in agent order, number of answers kept)
    parallel: bool = True  # do a round's calls overlap (the concurrency target applies)
    reference_us: float | None = None  # the figure quoted in issue 5, for the table


# 1. plain asyncio: the floor ------------------------------------------------------------------------------------


async def run_asyncio(model: ScriptedModel, env: BenchEnv) -> tuple[list[str], int]:
    transcript: list[list[str]] = []
    previous: list[str] = []
    for rnd in range(1, ROUNDS + 1):
        previous = list(await asyncio.gather(*(model(a, rnd, QUESTION, previous) for a in range(AGENTS))))
        transcript.append(previous)
    return previous, sum(len(answers) for answers in transcript)


# 2./3. hand-written LangGraph StateGraph, Send fan-out per round ------------------------------------------------


class DebateState(TypedDict):
    question: str
    rounds: int
    round: int  # the round being run (0 before the first)
    answers: Annotated[list[tuple[int, int, str]], operator.add]  # every (round, agent, answer): the transcript


class AgentInput(TypedDict):
    question: str
    round: int
    agent: int
    previous: list[str]


def _concat(current: list[tuple[int, int, str]], batch: Sequence[list[tuple[int, int, str]]]) -> list:
    """DeltaChannel reducer (storage comparison only): (state, [write, ...]) -> state."""
    return current + [item for write in batch for item in write]


def build_langgraph(model: ScriptedModel, *, sync: bool, checkpointer: Any = None, delta: bool = False) -> Any:
    """START -> next_round -(Send x 7)-> agent -> next_round -> ... -> END.

    ``next_round`` increments the round; its router sends one ``agent`` task per agent with the previous round's
    answers, or ends the run after the last round. Each ``agent`` task makes one model call and appends
    (round, agent, answer) to ``answers`` through the ``operator.add`` reducer.
    """
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    state_schema: Any = DebateState
    if delta:
        from langgraph.channels import DeltaChannel

        # functional TypedDict: the annotations are evaluated here (this module has postponed annotations)
        state_schema = TypedDict(  # noqa: UP013 (class syntax would leave the annotations as strings)
            "DeltaDebateState",
            {
                "question": str,
                "rounds": int,
                "round": int,
                "answers": Annotated[list[tuple[int, int, str]], DeltaChannel(_concat)],
            },
        )

    # `state` is the graph state (DebateState or its DeltaChannel twin); annotated Any so that LangGraph does not
    # infer a second, conflicting schema from the annotation
    def next_round(state: Any) -> dict[str, Any]:
        return {"round": state["round"] + 1}

    def route(state: Any) -> Any:
        rnd = state["round"]
        if rnd > state["rounds"]:
            return END
        previous = [text for _, _, text in sorted(state["answers"][-AGENTS:])] if rnd > 1 else []
        return [
            Send("agent", {"question": state["question"], "round": rnd, "agent": a, "previous": previous})
            for a in range(AGENTS)
        ]

    if sync:

        def agent(inp: AgentInput) -> dict[str, Any]:
            text = model.call_sync(inp["agent"], inp["round"], inp["question"], inp["previous"])
            return {"answers": [(inp["round"], inp["agent"], text)]}

    else:

        async def agent(inp: AgentInput) -> dict[str, Any]:  # type: ignore[misc]
            text = await model(inp["agent"], inp["round"], inp["question"], inp["previous"])
            return {"answers": [(inp["round"], inp["agent"], text)]}

    builder = StateGraph(state_schema)
    builder.add_node("next_round", next_round, input_schema=state_schema)
    builder.add_node("agent", agent)
    builder.add_edge(START, "next_round")
    builder.add_conditional_edges("next_round", route)
    builder.add_edge("agent", "next_round")
    return builder.compile(checkpointer=checkpointer)


def langgraph_input(rounds: int = ROUNDS) -> dict[str, Any]:
    return {"question": QUESTION, "rounds": rounds, "round": 0, "answers": []}


def langgraph_config(thread: str | None = None, rounds: int = ROUNDS) -> dict[str, Any]:
    """Run config: room for 2 supersteps a round; a checkpoint thread if the graph has a checkpointer."""
    config: dict[str, Any] = {"recursion_limit": 2 * rounds + 10}
    if thread is not None:
        config["configurable"] = {"thread_id": thread}
    return config


def langgraph_result(out: dict[str, Any], rounds: int = ROUNDS) -> tuple[list[str], int]:
    answers = out["answers"]
    return [text for rnd, _, text in sorted(answers) if rnd == rounds], len(answers)


async def run_langgraph(model: ScriptedModel, env: BenchEnv) -> tuple[list[str], int]:
    async def make() -> Any:
        return build_langgraph(model, sync=False)

    graph = await env.once("graph", make)
    return langgraph_result(await graph.ainvoke(langgraph_input(), langgraph_config()))


async def run_langgraph_sync(model: ScriptedModel, env: BenchEnv) -> tuple[list[str], int]:
    # Sync invoke called from the bench's event loop: it blocks the loop for the run, which is all the loop does.
    async def make() -> Any:
        return build_langgraph(model, sync=True)

    graph = await env.once("graph", make)
    return langgraph_result(graph.invoke(langgraph_input(), langgraph_config()))


async def run_langgraph_sqlite(model: ScriptedModel, env: BenchEnv) -> tuple[list[str], int]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    async def make() -> Any:
        saver = env.stack.enter_context(SqliteSaver.from_conn_string(str(env.tmp / "langgraph.sqlite")))
        return build_langgraph(model, sync=True, checkpointer=saver)

    graph = await env.once("graph", make)
    return langgraph_result(graph.invoke(langgraph_input(), langgraph_config(f"debate-{env.runs}")))


async def run_langgraph_async_sqlite(model: ScriptedModel, env: BenchEnv) -> tuple[list[str], int]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async def make() -> Any:
        cm = AsyncSqliteSaver.from_conn_string(str(env.tmp / "langgraph-async.sqlite"))
        saver = await env.stack.enter_async_context(cm)
        return build_langgraph(model, sync=False, checkpointer=saver)

    graph = await env.once("graph", make)
    return langgraph_result(await graph.ainvoke(langgraph_input(), langgraph_config(f"debate-{env.runs}")))


# 2b. (extra) LangGraph with one node per round that gathers the round's 7 calls concurrently -----------------------
# The issue lets agentmesh choose between Send tasks and such a node; this row shows what the choice costs. One
# superstep (and one checkpoint) per round instead of 7 tasks + a router step; calls are not checkpointed one by one.


def build_langgraph_gather(model: ScriptedModel, *, checkpointer: Any = None) -> Any:
    """START -> round -> round -> ... -> END; each `round` gathers the 7 model calls with asyncio.gather."""
    from langgraph.graph import END, START, StateGraph

    async def round_node(state: DebateState) -> dict[str, Any]:
        rnd = state["round"] + 1
        previous = [text for _, _, text in sorted(state["answers"][-AGENTS:])] if rnd > 1 else []
        texts = await asyncio.gather(*(model(a, rnd, state["question"], previous) for a in range(AGENTS)))
        return {"round": rnd, "answers": [(rnd, a, text) for a, text in enumerate(texts)]}

    def more(state: DebateState) -> str:
        return "round" if state["round"] < state["rounds"] else END

    builder = StateGraph(DebateState)
    builder.add_node("round", round_node)
    builder.add_edge(START, "round")
    builder.add_conditional_edges("round", more, ["round", END])
    return builder.compile(checkpointer=checkpointer)


async def run_langgraph_gather(model: ScriptedModel, env: BenchEnv) -> tuple[list[str], int]:
    async def make() -> Any:
        return build_langgraph_gather(model)

    graph = await env.once("graph", make)
    return langgraph_result(await graph.ainvoke(langgraph_input(), langgraph_config()))


async def run_langgraph_gather_async_sqlite(model: ScriptedModel, env: BenchEnv) -> tuple[list[str], int]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async def make() -> Any:
        cm = AsyncSqliteSaver.from_conn_string(str(env.tmp / "langgraph-gather.sqlite"))
        saver = await env.stack.enter_async_context(cm)
        return build_langgraph_gather(model, checkpointer=saver)

    graph = await env.once("graph", make)
    return langgraph_result(await graph.ainvoke(langgraph_input(), langgraph_config(f"debate-{env.runs}")))


# 4. pydantic-graph: map (parallel fan-out) per round, a join with a list reducer, a decision to loop --------------


@dataclass
class PgState:
    question: str
    rounds: int
    round: int = 0
    transcript: list[list[str]] = field(default_factory=list)  # every round's answers, in agent order


def build_pydantic_graph(model: ScriptedModel) -> Any:
    """start -> start_round -(map x 7)-> agent -> join(list append) -> end_round -> decision: start_round | final."""
    from pydantic_graph import GraphBuilder, StepContext, reduce_list_append

    g = GraphBuilder(state_type=PgState, input_type=str, output_type=list[str])

    @g.step
    async def start_round(ctx: StepContext[PgState, None, object]) -> list[tuple[int, int, list[str]]]:
        state = ctx.state
        state.round += 1
        previous = state.transcript[-1] if state.transcript else []
        return [(a, state.round, previous) for a in range(AGENTS)]

    @g.step
    async def agent(ctx: StepContext[PgState, None, tuple[int, int, list[str]]]) -> tuple[int, str]:
        a, rnd, previous = ctx.inputs
        return a, await model(a, rnd, ctx.state.question, previous)

    collect = g.join(reduce_list_append, initial_factory=list[tuple[int, str]])

    @g.step
    async def end_round(ctx: StepContext[PgState, None, list[tuple[int, str]]]) -> bool:
        ctx.state.transcript.append([text for _, text in sorted(ctx.inputs)])
        return ctx.state.round < ctx.state.rounds

    @g.step
    async def final(ctx: StepContext[PgState, None, bool]) -> list[str]:
        return ctx.state.transcript[-1]

    g.add(
        g.edge_from(g.start_node).to(start_round),
        g.edge_from(start_round).map().to(agent),
        g.edge_from(agent).to(collect),
        g.edge_from(collect).to(end_round),
        g.edge_from(end_round).to(
            g.decision()
            .branch(g.match(bool, matches=lambda more: more).to(start_round))
            .branch(g.match(bool).to(final))
        ),
        g.edge_from(final).to(g.end_node),
    )
    return g.build()


async def run_pydantic_graph(model: ScriptedModel, env: BenchEnv) -> tuple[list[str], int]:
    async def make() -> Any:
        return build_pydantic_graph(model)

    graph = await env.once("graph", make)
    state = PgState(question=QUESTION, rounds=ROUNDS)
    final = await graph.run(state=state, inputs=QUESTION)
    return list(final), sum(len(answers) for answers in state.transcript)


# 8. agentmesh: the debate as a spec, run by agentmesh's runtime with its store on (SQLite file) --------------


class _BenchProvider:
    """Adapts the bench's scripted model to an agentmesh provider: the slot is the agent, the round the round,
    and the prompt carries the question then the previous round's answers, one per line, in agent order."""

    def __init__(self, model: ScriptedModel) -> None:
        from agentmesh.models.providers.base import Provider
        from agentmesh.models.settings import EndpointLimits

        bench_model = model

        class Adapter(Provider):
            name = "bench"
            free = True

            def default_limits(self) -> EndpointLimits:
                return EndpointLimits(max_concurrency=1_000_000, max_retries=0, timeout_s=3600)

            @property
            def endpoint(self) -> str:
                return "bench"

            @property
            def model_name(self) -> str:
                return "bench"

            async def complete(self, request: Any, context: Any) -> Any:
                from agentmesh.models.messages import Choice, ProviderResult, Usage

                question, *previous = request.messages[-1].content.split("\n")
                text = await bench_model(context.call_index, context.round, question, [p for p in previous if p])
                return ProviderResult(model="bench", choices=[Choice(text=text)], usage=Usage(prompt_tokens=1))

        self.provider = Adapter()


AGENTMESH_SPEC = {
    "name": "bench_debate",
    "inputs": {"question": {}},
    "agents": {
        "agent": {"prompt": "{{ question }}{% for p in previous %}\n{{ p.text }}{% endfor %}", "parser": "text"}
    },
    "nodes": {
        "debate": {"op": "rounds", "agents": ["agent"] * AGENTS, "rounds": ROUNDS, "shuffle": False},
    },
}


async def run_agentmesh(model: ScriptedModel, env: BenchEnv) -> tuple[list[str], int]:
    from agentmesh.models.client import ModelClient
    from agentmesh.runtime import arun
    from agentmesh.spec import graph_from_data
    from agentmesh.store import Store

    async def open_store() -> Any:
        return env.stack.enter_context(Store(f"sqlite:///{env.tmp / 'agentmesh.db'}"))

    store = await env.once("store", open_store)
    spec = await env.once("spec", lambda: _ready(graph_from_data(AGENTMESH_SPEC)))
    # setup, like compiling the LangGraph contenders' graphs: the provider adapter is defined once; a client (its
    # limits, observers) is made per run, as a script would
    provider = await env.once("provider", lambda: _ready(_BenchProvider(model).provider))
    client = ModelClient(provider)
    result = await arun(spec, {"question": QUESTION}, model=client, store=store)
    answers = sorted(result.outputs["debate"]["answers"], key=lambda a: a["slot"])
    return [a["text"] for a in answers], result.calls


async def _ready(value: Any) -> Any:
    return value


BASELINE = "LangGraph Send, async, no checkpointer"

CONTENDERS: list[Contender] = [
    Contender("plain asyncio (gather per round)", run_asyncio, reference_us=4),
    Contender(BASELINE, run_langgraph, reference_us=220),
    Contender("LangGraph Send, sync, no checkpointer", run_langgraph_sync),
    Contender("LangGraph Send, sync, SqliteSaver (file)", run_langgraph_sqlite, reference_us=750),
    Contender("LangGraph Send, async, AsyncSqliteSaver (file)", run_langgraph_async_sqlite, reference_us=1300),
    Contender("pydantic-graph (map fan-out per round, parallel)", run_pydantic_graph, reference_us=185),
    # extras: the other encoding the issue allows (one node per round gathering its calls)
    Contender("LangGraph 1 node/round (gather), no checkpointer", run_langgraph_gather),
    Contender("LangGraph 1 node/round (gather), AsyncSqliteSaver (file)", run_langgraph_gather_async_sqlite),
    Contender("agentmesh (spec -> run, store on, SQLite file)", run_agentmesh),
]


# ----------------------------------------------------------------------------------------------------------------
# measuring


@dataclass(frozen=True)
class Mode:
    name: str
    delay_s: float


INSTANT = Mode("instant", 0.0)
SLEEP = Mode("sleep 20 ms", SLEEP_S)


@dataclass
class Measurement:
    contender: Contender
    mode: Mode
    seconds: list[float]  # wall time of each timed run
    foreign_cpu: float | None = None  # mean CPU used by other processes while measuring, in cores (Linux only)
    paired_ratios: list[float] = field(default_factory=list)  # each timed run / the baseline's run of that round

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def us_per_call(self) -> float:
        return self.median_s / CALLS * 1e6

    @property
    def paired_ratio(self) -> float | None:
        """Median over rounds of (this run / the baseline's run in the same round): robust to the machine's speed
        drifting during the measurement, which moves both alike."""
        return statistics.median(self.paired_ratios) if self.paired_ratios else None

    def spread_us_per_call(self) -> tuple[float, float]:
        """(10th, 90th) percentile of µs per call (min and max with fewer than 10 runs)."""
        per_call = sorted(s / CALLS * 1e6 for s in self.seconds)
        if len(per_call) < 10:
            return per_call[0], per_call[-1]
        deciles = statistics.quantiles(per_call, n=10)
        return deciles[0], deciles[-1]


def _check(contender: Contender, model: ScriptedModel, result: tuple[list[str], int], expected: list[str]) -> None:
    final, kept = result
    if list(final) != expected:
        raise AssertionError(f"{contender.name}: final answers differ from the expected ones")
    if kept != CALLS:
        raise AssertionError(f"{contender.name}: kept {kept} answers, expected {CALLS}")
    if model.calls != CALLS:
        raise AssertionError(f"{contender.name}: the model was called {model.calls} times, expected {CALLS}")


def _busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux), or None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class _Slot:
    """One contender's state during an interleaved measurement."""

    contender: Contender
    model: ScriptedModel
    env: BenchEnv
    seconds: list[float] = field(default_factory=list)
    wall: float = 0.0  # summed over its timed runs, for the other-load figure
    foreign: float = 0.0
    sampled: bool = True  # /proc/stat was readable for every run

    async def run(self, expected: list[str], *, check: bool = False) -> float:
        self.model.calls = 0
        self.model.check = check
        self.env.runs += 1
        t0 = time.perf_counter()
        result = await self.contender.run(self.model, self.env)
        elapsed = time.perf_counter() - t0
        _check(self.contender, self.model, result, expected)
        return elapsed


async def measure_all(contenders: Sequence[Contender], mode: Mode, reps: int, warmup: int = 3) -> list[Measurement]:
    """Every contender measured in the same rounds: one verified run and ``warmup`` untimed runs each, then
    ``reps`` rounds in which each contender runs once (each checked after its timing; the order rotates from one
    round to the next).

    Interleaved rather than one contender after the other, because a small shared machine's speed drifts by tens
    of percent over a minute: run in turn, every contender sees the same phases, and its ratio to the baseline is
    taken round by round (:attr:`Measurement.paired_ratio`)."""
    expected = expected_final()
    async with AsyncExitStack() as outer:
        slots = []
        for contender in contenders:
            tmp = Path(outer.enter_context(tempfile.TemporaryDirectory(prefix="bench-overhead-")))
            stack = await outer.enter_async_context(AsyncExitStack())
            slots.append(_Slot(contender, ScriptedModel(mode.delay_s), BenchEnv(tmp=tmp, stack=stack)))
        for slot in slots:
            for i in range(1 + warmup):
                await slot.run(expected, check=i == 0)
        # One full collection before the measurement, none between runs: a full collection empties CPython's free
        # lists and returns memory, and the run after it is ~1 ms slower (25-50 % here) than a steady one.
        gc.collect()
        for rep in range(reps):
            shift = rep % len(slots)
            for slot in slots[shift:] + slots[:shift]:
                busy0, own0, t0 = _busy_cpu_s(), _own_cpu_s(), time.perf_counter()
                slot.seconds.append(await slot.run(expected))
                busy1, own1, t1 = _busy_cpu_s(), _own_cpu_s(), time.perf_counter()
                slot.wall += t1 - t0
                if busy0 is None or busy1 is None:
                    slot.sampled = False
                else:  # clock ticks are 10 ms: coarse per run, but unbiased summed over the runs
                    slot.foreign += (busy1 - busy0) - (own1 - own0)
    base = next((slot for slot in slots if slot.contender.name == BASELINE), None)
    out = []
    for slot in slots:
        foreign = max(0.0, slot.foreign) / slot.wall if slot.sampled and slot.wall >= 0.5 else None
        paired = [s / b for s, b in zip(slot.seconds, base.seconds, strict=True)] if base is not None else []
        out.append(Measurement(slot.contender, mode, slot.seconds, foreign, paired))
    return out


# ----------------------------------------------------------------------------------------------------------------
# storage: LangGraph SqliteSaver with the transcript in state


@dataclass(frozen=True)
class StorageFile:
    file_bytes: int  # after leaving WAL mode and VACUUM
    checkpoints: int  # rows
    writes: int  # rows
    checkpoint_blob_bytes: int  # sum of the serialized checkpoints (channel values inline)
    send_bytes: int  # sum of the serialized Send packets (`__pregel_tasks` writes)


@dataclass(frozen=True)
class AgentmeshFile:
    file_bytes: int  # after VACUUM
    event_bytes: int  # request + response + data JSON of the run's events
    checkpoint_bytes: int  # checkpoint rows + channel blobs + pending writes


@dataclass(frozen=True)
class StorageRow:
    rounds: int
    content_bytes: int
    plain: StorageFile  # transcript channel: list + operator.add
    delta: StorageFile | None  # transcript channel: DeltaChannel (None if this LangGraph lacks it)
    agentmesh: AgentmeshFile | None = None


def _vacuumed(path: Path) -> StorageFile:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")  # checkpoints and removes the WAL
        conn.execute("VACUUM")
        checkpoints, blob_bytes = conn.execute("SELECT count(*), sum(length(checkpoint)) FROM checkpoints").fetchone()
        writes = conn.execute("SELECT count(*) FROM writes").fetchone()[0]
        send_bytes = conn.execute(
            "SELECT coalesce(sum(length(value)), 0) FROM writes WHERE channel = '__pregel_tasks'"
        ).fetchone()[0]
    finally:
        conn.close()
    return StorageFile(path.stat().st_size, checkpoints, writes, blob_bytes, send_bytes)


def storage_run(rounds: int, tmp: Path, *, delta: bool) -> StorageFile:
    """One debate of `rounds` rounds on a fresh SqliteSaver file (sync graph, default durability)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = tmp / f"storage-{rounds}-{'delta' if delta else 'plain'}.sqlite"
    model = ScriptedModel(0.0, rounds=rounds)
    model.check = True
    config = langgraph_config("storage", rounds)
    with SqliteSaver.from_conn_string(str(path)) as saver:
        graph = build_langgraph(model, sync=True, checkpointer=saver, delta=delta)
        out = graph.invoke(langgraph_input(rounds), config)
        final, kept = langgraph_result(out, rounds)
        if final != expected_final(rounds) or kept != rounds * AGENTS or model.calls != rounds * AGENTS:
            raise AssertionError(f"storage run ({rounds} rounds, delta={delta}) is wrong")
        # the checkpointed state must read back whole
        if len(graph.get_state(config).values["answers"]) != rounds * AGENTS:
            raise AssertionError(f"storage run ({rounds} rounds, delta={delta}): transcript not read back whole")
    return _vacuumed(path)


def agentmesh_storage_run(rounds: int, tmp: Path) -> AgentmeshFile:
    """The same debate as an agentmesh spec with `rounds` rounds, store on (a fresh SQLite file), then VACUUM."""
    from agentmesh.models.client import ModelClient
    from agentmesh.runtime import run
    from agentmesh.spec import graph_from_data

    path = tmp / f"agentmesh-{rounds}.db"
    data = json.loads(json.dumps(AGENTMESH_SPEC))
    data["nodes"]["debate"]["rounds"] = rounds
    model = ScriptedModel(0.0, rounds=rounds)
    result = run(
        graph_from_data(data),
        {"question": QUESTION},
        model=ModelClient(_BenchProvider(model).provider),
        store=f"sqlite:///{path}",
    )
    answers = sorted(result.outputs["debate"]["answers"], key=lambda a: a["slot"])
    if [a["text"] for a in answers] != expected_final(rounds) or result.calls != rounds * AGENTS:
        raise AssertionError(f"agentmesh storage run ({rounds} rounds) is wrong")
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("VACUUM")
        events = conn.execute(
            "SELECT coalesce(sum(length(request) + length(coalesce(response, '')) + length(coalesce(data, ''))), 0) "
            "FROM events"
        ).fetchone()[0]
        checkpoints = sum(
            conn.execute(query).fetchone()[0]
            for query in (
                "SELECT coalesce(sum(length(checkpoint) + length(metadata)), 0) FROM graph_checkpoints",
                "SELECT coalesce(sum(length(blob)), 0) FROM graph_checkpoint_blobs",
                "SELECT coalesce(sum(length(blob)), 0) FROM graph_checkpoint_writes",
            )
        )
    finally:
        conn.close()
    return AgentmeshFile(path.stat().st_size, int(events), int(checkpoints))


def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking agentmesh call (it starts its own event loop) from the bench's async main."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def measure_storage(rounds_list: Sequence[int] = STORAGE_ROUNDS) -> list[StorageRow]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        for rounds in rounds_list:
            plain = storage_run(rounds, Path(tmp), delta=False)
            try:
                delta: StorageFile | None = storage_run(rounds, Path(tmp), delta=True)
            except ImportError:  # a LangGraph without DeltaChannel
                delta = None
            mesh = _in_thread(agentmesh_storage_run, rounds, Path(tmp))
            rows.append(StorageRow(rounds, rounds * AGENTS * ANSWER_BYTES, plain, delta, mesh))
    return rows


# ----------------------------------------------------------------------------------------------------------------
# early stop: calls made with and without the consensus stop, on answers scripted to agree at known rounds

#: name -> the 7 agents' answers per round (a letter each); strictly more than floor(2/3 * 7) = 4 agree = 5.
EARLY_STOP_SCENARIOS: dict[str, list[str]] = {
    "agree in round 1": ["AAAAABC", "AAAAAAA", "AAAAAAA", "AAAAAAA"],
    "agree in round 2 (5th vote last)": ["ABCDABC", "ABAAACA", "AAAAAAA", "AAAAAAA"],
    "agree in round 2 of 4": ["ABCDABC", "AAAAABC", "AAAAAAA", "AAAAAAA"],
    "agree in round 3": ["ABCDABC", "ABCABCA", "BBABBBB", "BBBBBBB"],
    "agree in round 4": ["ABCDABC", "ABCABCA", "AABBCCD", "CCCCCAB"],
    "never agree": ["ABCDABC", "ABCABCA", "AABBCCD", "AAAABBB"],
}


def expected_calls(rounds: list[str], *, stop: bool, sequential: bool) -> int:
    """The calls a debate must make, worked out from the scripted answers alone (not from agentmesh)."""
    if not stop:
        return AGENTS * len(rounds)
    for r, layer in enumerate(rounds):
        counts: dict[str, int] = {}
        for j, letter in enumerate(layer, start=1):
            counts[letter] = counts.get(letter, 0) + 1
            if max(counts.values()) > (2 * AGENTS) // 3:
                return AGENTS * r + (j if sequential else AGENTS)
    return AGENTS * len(rounds)


def early_stop_run(answers: list[str], *, stop: bool, sequential: bool, tmp: Path) -> int:
    from agentmesh.models import ScriptedModel as AgentmeshScripted
    from agentmesh.runtime import run
    from agentmesh.spec import graph_from_data

    node: dict[str, Any] = {
        "op": "rounds",
        "agents": ["agent"] * AGENTS,
        "rounds": len(answers),
        "activation": "sequential" if sequential else "parallel",
        "activation_order": "fixed",
    }
    if stop:
        node["stop"] = {"consensus": {}}
    spec = graph_from_data(
        {
            "name": "early_stop",
            "inputs": {"question": {}},
            "agents": {"agent": {"prompt": "{{ question }} (round {{ round }})", "parser": "choice_letter"}},
            "nodes": {"debate": node},
        }
    )
    model = AgentmeshScripted(respond=lambda request, context: f"({answers[context.round - 1][context.call_index]})")
    run(spec, {"question": QUESTION}, model=model, store=f"sqlite:///{tmp / 'early.db'}")
    return len(model.calls)


def measure_early_stop() -> list[list[str]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-early-") as tmp:
        for name, answers in EARLY_STOP_SCENARIOS.items():
            row = [name]
            for stop, sequential in ((False, False), (True, False), (True, True)):
                want = expected_calls(answers, stop=stop, sequential=sequential)
                got = _in_thread(early_stop_run, answers, stop=stop, sequential=sequential, tmp=Path(tmp))
                row.append(f"{got} / {want}" + ("" if got == want else " MISMATCH"))
            rows.append(row)
    return rows


EARLY_STOP_HEADER = [
    "scenario (7 agents x 4 rounds)",
    "no stop: calls / expected",
    "consensus, parallel",
    "consensus, sequential",
]


# ----------------------------------------------------------------------------------------------------------------
# reporting


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        cpu = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration, subprocess.SubprocessError):
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = ", ".join(
        f"{d} {_version(d)}" for d in ("langgraph", "langgraph-checkpoint-sqlite", "aiosqlite", "pydantic-graph")
    )
    return f"{cpu}, {os.cpu_count()} CPUs{mem}; Python {platform.python_version()}; {versions}"


def _foreign(m: Measurement) -> str:
    return "-" if m.foreign_cpu is None else f"{m.foreign_cpu:.2f}"


def warn_foreign(console: Console, results: list[Measurement]) -> None:
    noisy = [m.contender.name for m in results if m.foreign_cpu is not None and m.foreign_cpu > FOREIGN_WARN]
    if noisy:
        console.print(
            f"[yellow]other processes used more than {FOREIGN_WARN} CPU cores while measuring: "
            f"{', '.join(noisy)}; those figures may be inflated, re-run on a quiet machine[/yellow]"
        )


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "-"


def overhead_rows(results: list[Measurement]) -> list[list[str]]:
    base = next((m.us_per_call for m in results if m.contender.name == BASELINE), None)
    rows = []
    for m in results:
        lo, hi = m.spread_us_per_call()
        ref = m.contender.reference_us
        rows.append(
            [
                m.contender.name,
                f"{m.us_per_call:,.1f}",
                f"{lo:,.1f}-{hi:,.1f}",
                f"{m.median_s * 1e3:.2f}",
                _ratio(m.us_per_call, base),
                "-" if m.paired_ratio is None else f"{m.paired_ratio:.2f}",
                f"~{ref:,.0f}" if ref is not None else "-",
                _foreign(m),
            ]
        )
    return rows


OVERHEAD_HEADER = [
    "contender",
    "µs / agent call",
    "p10-p90",
    "ms / run",
    "x LangGraph no ckpt",
    "x same round",
    "issue 5 figure",
    "other load",
]
CONCURRENCY_HEADER = [
    "contender",
    "wall ms (median)",
    "min-max",
    "x critical path 80 ms",
    "target <= 1.10",
    "other load",
]
FOREIGN_WARN = 0.10  # cores of CPU used by other processes during a measurement
STORAGE_HEADER = [
    "rounds",
    "content bytes",
    "SqliteSaver file bytes (VACUUM)",
    "bytes / content byte",
    "of which checkpoint blobs",
    "of which Send packets",
    "checkpoints / writes rows",
    "DeltaChannel file bytes",
    "DeltaChannel bytes / content byte",
    "agentmesh file bytes (VACUUM)",
    "agentmesh bytes / content byte",
    "agentmesh events / checkpoint bytes",
    "agentmesh x SqliteSaver",
]


def concurrency_rows(results: list[Measurement]) -> list[list[str]]:
    rows = []
    for m in results:
        ratio = m.median_s / CRITICAL_PATH_S
        verdict = ("PASS" if ratio <= CONCURRENCY_TARGET else "FAIL") if m.contender.parallel else "n/a (sequential)"
        rows.append(
            [
                m.contender.name,
                f"{m.median_s * 1e3:.1f}",
                f"{min(m.seconds) * 1e3:.1f}-{max(m.seconds) * 1e3:.1f}",
                f"{ratio:.3f}",
                verdict,
                _foreign(m),
            ]
        )
    return rows


def storage_rows(rows: list[StorageRow]) -> list[list[str]]:
    return [
        [
            str(r.rounds),
            f"{r.content_bytes:,}",
            f"{r.plain.file_bytes:,}",
            f"{r.plain.file_bytes / r.content_bytes:.1f}",
            f"{r.plain.checkpoint_blob_bytes:,}",
            f"{r.plain.send_bytes:,}",
            f"{r.plain.checkpoints} / {r.plain.writes}",
            f"{r.delta.file_bytes:,}" if r.delta else "-",
            f"{r.delta.file_bytes / r.content_bytes:.1f}" if r.delta else "-",
            f"{r.agentmesh.file_bytes:,}" if r.agentmesh else "-",
            f"{r.agentmesh.file_bytes / r.content_bytes:.1f}" if r.agentmesh else "-",
            f"{r.agentmesh.event_bytes:,} / {r.agentmesh.checkpoint_bytes:,}" if r.agentmesh else "-",
            f"{r.agentmesh.file_bytes / r.plain.file_bytes:.3f}" if r.agentmesh else "-",
        ]
        for r in rows
    ]


def print_table(console: Console, title: str, header: list[str], rows: list[list[str]], markdown: bool) -> None:
    table = Table(title=title, title_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print()


# ----------------------------------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> None:
    console = Console(width=max(Console().width, 150))
    contenders = [c for c in CONTENDERS if not args.only or any(s.lower() in c.name.lower() for s in args.only)]
    console.print(f"[bold]machine[/bold]: {machine()}")
    console.print(
        f"[bold]workload[/bold]: {AGENTS} agents x {ROUNDS} rounds = {CALLS} model calls, {ANSWER_BYTES}-byte answers"
    )
    if "overhead" in args.parts:
        console.print(f"\noverhead: instant model, median of {args.reps} runs after {args.warmup} warm-ups ...")
        results = await measure_all(contenders, INSTANT, args.reps, args.warmup)
        print_table(
            console,
            "Orchestration overhead (instant model)",
            OVERHEAD_HEADER,
            overhead_rows(results),
            args.markdown,
        )
        warn_foreign(console, results)
    if "concurrency" in args.parts:
        console.print(f"\nconcurrency: model sleeps 20 ms a call, median of {args.sleep_reps} runs ...")
        results = await measure_all(contenders, SLEEP, args.sleep_reps, min(args.warmup, 1))
        print_table(
            console,
            f"Concurrency (model sleeps 20 ms; critical path {ROUNDS} x 20 ms = 80 ms)",
            CONCURRENCY_HEADER,
            concurrency_rows(results),
            args.markdown,
        )
        warn_foreign(console, results)
    if "storage" in args.parts:
        console.print("\nstorage: LangGraph SqliteSaver, transcript in state ...")
        rows = measure_storage(args.storage_rounds)
        print_table(
            console,
            f"Storage after VACUUM ({AGENTS} agents x rounds x {ANSWER_BYTES} B of answers)",
            STORAGE_HEADER,
            storage_rows(rows),
            args.markdown,
        )
        if len(rows) >= 2:
            first, last = rows[0], rows[-1]
            growth = (
                f"{first.rounds} -> {last.rounds} rounds: content x{last.content_bytes / first.content_bytes:.0f}, "
                f"SqliteSaver file x{last.plain.file_bytes / first.plain.file_bytes:.1f}"
            )
            if first.delta and last.delta:
                growth += f", DeltaChannel file x{last.delta.file_bytes / first.delta.file_bytes:.1f}"
            if first.agentmesh and last.agentmesh:
                growth += f", agentmesh file x{last.agentmesh.file_bytes / first.agentmesh.file_bytes:.1f}"
            console.print(growth)
        last = rows[-1]
        if last.agentmesh:
            share = last.agentmesh.file_bytes / last.plain.file_bytes
            verdict = "PASS" if share <= 0.2 else "FAIL"
            console.print(
                f"agentmesh at {last.rounds} rounds: {last.agentmesh.file_bytes:,} B = {share:.3f} x SqliteSaver "
                f"(target <= 0.2): {verdict}"
            )
    if "early-stop" in args.parts:
        console.print("\nearly stop: calls made on scripted answers that agree at known rounds ...")
        early = measure_early_stop()
        print_table(console, "Early stop (calls made / expected)", EARLY_STOP_HEADER, early, args.markdown)
        mismatches = sum("MISMATCH" in cell for row in early for cell in row)
        console.print(
            "early stop: every count as expected: PASS"
            if not mismatches
            else f"early stop: {mismatches} counts differ: FAIL"
        )
        if mismatches:
            raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few runs (smoke test)")
    parser.add_argument("--reps", type=int, default=None, help="timed runs per contender, instant model (30)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed warm-up runs (3)")
    parser.add_argument("--sleep-reps", type=int, default=None, help="timed runs per contender, 20 ms model (30)")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=["overhead", "concurrency", "storage", "early-stop"],
        default=None,
        help="default: all",
    )
    parser.add_argument("--storage", action="store_true", help="the storage part only (same as --parts storage)")
    parser.add_argument("--storage-rounds", type=int, nargs="+", default=list(STORAGE_ROUNDS))
    parser.add_argument("--only", nargs="+", default=None, help="contenders whose name contains any of these")
    parser.add_argument("--markdown", action="store_true", help="also print the tables as Markdown")
    args = parser.parse_args(argv)
    args.reps = args.reps or (5 if args.quick else 30)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.sleep_reps = args.sleep_reps or (3 if args.quick else 30)
    if args.storage:
        args.parts = ["storage"]
    args.parts = args.parts or ["overhead", "concurrency", "storage", "early-stop"]
    asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
