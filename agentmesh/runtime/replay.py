"""Replaying stored runs: exactly and for free, or up to a step and then live (a what-if fork).

:func:`areplay` re-executes a run's stored graph spec on its stored inputs with every model response served from
the run's events, keyed by (node, agent, round, call index) and checked against the recorded request hash. No
model is called: a call the record does not have, or has with another prompt, is the **first divergence**, reported
with where it happened and a diff of the prompt. The replay runs against a scratch store (nothing is added to the
original) holding copies of the target sets the run read, at the versions it read them; then its node outputs are
compared with the run's last checkpoint. Identical prompts made several
times replay correctly, because calls are served by their place in the run, not by their prompt.

:func:`afork` replays a run up to a step and continues live, with another model or changed inputs if asked: a new
run linked to its parent, paying only for the calls it makes (the served ones are kept as ``replayed_call``
events, so the fork is complete on its own: it can be shown, replayed, resumed, forked again).

A step is ``N`` (the run's first N model calls, in the order they were recorded, as ``agentmesh show`` numbers
them), ``NODE`` (everything before that node's first call) or ``NODE@ROUND`` (before its first call in that
round; for a node in a loop's body, in that iteration of the loop). A node that makes no call itself (a loop, a
branch, a function) is a step too: everything recorded before it ran (``LOOP@N``: before its iteration N).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentmesh._sync import blocking
from agentmesh._text import counted
from agentmesh.errors import ConfigError, SpecError
from agentmesh.models import ModelClient
from agentmesh.models.messages import CallContext, ModelRequest, ProviderResult
from agentmesh.models.providers.base import Provider
from agentmesh.runtime.arguments import (
    as_budget,
    check_built,
    check_inputs,
    listener_list,
    open_store,
    resolve_graph,
    run_budgets,
    run_input_checks,
)
from agentmesh.runtime.budget import BudgetTracker
from agentmesh.runtime.context import Listener, ReplayDivergence
from agentmesh.runtime.held_warnings import held
from agentmesh.runtime.operators.registry import check_functions
from agentmesh.runtime.outcome import ask_call_refusal, is_ask_call, stored_outputs
from agentmesh.runtime.recorded_calls import CALL_KINDS, CallKey, load_recorded
from agentmesh.runtime.recorded_model import model_for
from agentmesh.runtime.run import RunResult, _execute, stored_model
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.loader import stored_graph
from agentmesh.spec.stop import Budget
from agentmesh.store import EventRecord, RunRecord, RunStatus, Store


class _NoModel(Provider):
    """The model of a replay: there is none. The context never reaches it (a missing call is a divergence)."""

    name = "replay"
    free = True

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    @property
    def endpoint(self) -> str:
        return f"replay:{self.run_id}"

    @property
    def model_name(self) -> str:
        return self.run_id

    async def complete(self, request: ModelRequest, context: CallContext) -> ProviderResult:
        raise AssertionError("a replay never calls a model")  # pragma: no cover - guarded by the context


@dataclass
class ReplayReport:
    """What a replay found: whether it reproduced the run, and the first divergence if it did not."""

    run_id: str
    graph: str
    answer: Any = None
    recorded_answer: Any = None
    served: int = 0
    calls_made: int = 0
    differences: list[str] = field(default_factory=list)
    unused: list[CallKey] = field(default_factory=list)
    divergence: ReplayDivergence | None = None
    compared: bool = True
    source: str = "stored spec"
    stopped_at: CallKey | None = None
    """Of a run that never finished (interrupted, failed, still running): the call the replay asked for that the run
    never made, every call before it served as recorded. Nothing diverged (``divergence`` is ``None``): the replay
    reached the point where the run stopped, and can go no further without a model; ``identical`` is false, as the
    run's answer and outputs could not be compared."""
    warnings: dict[str, int] = field(default_factory=dict)
    """The warnings the replay gave again as the run gave them (an unreadable judge reply's), each with how many
    times: held back (:mod:`agentmesh.runtime.held_warnings`) so that they are said once, not repeated one by one."""
    note: str | None = None
    """With :attr:`stopped_at`: how the run ended (interrupted, failed, still running), after how many calls, and
    that ``resume`` continues it."""

    @property
    def identical(self) -> bool:
        return self.divergence is None and self.stopped_at is None and not self.differences and not self.unused


def _spec_of(record: RunRecord) -> GraphSpec:
    data = record.meta.get("spec")
    if is_ask_call(record):
        raise ConfigError(ask_call_refusal([record.id], "replay or fork"), run=record.id)
    if not isinstance(data, Mapping):
        # a run a script stored itself (examples/compare_models.py: Store.create_run and a StoreRecorder) has calls
        # but no graph: say what it is and what still works, rather than leave it sounding like a damaged store
        short = record.id[:12]
        raise ConfigError(
            f"run {record.id} ({record.graph!r}) has no stored graph spec to replay: it was not made by running a "
            f"graph (a script stored its calls); agentmesh show {short} lists them, and the model reference "
            f"replay:{short} serves them again to the same prompts",
            run=record.id,
        )
    return stored_graph(dict(data), record.id)


def current_spec(record: RunRecord, graph: str | Path | GraphSpec | None = None) -> tuple[GraphSpec, str]:
    """The graph to replay a run with, and where it came from.

    ``graph`` if given; else the graph as it is now where the run found it (its built-in name or file), so a
    replay tells whether today's graph still reproduces the run; else the spec stored with the run.
    """
    if graph is not None:
        return resolve_graph(graph), str(graph) if not isinstance(graph, GraphSpec) else graph.name
    source = record.meta.get("source")
    if isinstance(source, str):
        path = Path(source)
        if not (path.suffix in (".yaml", ".yml") and not path.is_file()):  # (deleted since: the stored spec is left)
            try:
                return resolve_graph(source), source
            except SpecError as exc:
                # the file is there but no longer loads: falling back to the stored spec would report an edit
                # that broke the graph as "identical"
                raise SpecError(
                    f"run {record.id[:12]}'s graph no longer loads, so today's graph cannot be replayed (fix it, or "
                    f"give another graph): {exc.message}",
                    **exc.context,
                ) from exc
            except ConfigError:
                pass  # a built-in gone since: the stored spec is what is left
    return _spec_of(record), "stored spec"


def _cut_short(record: RunRecord) -> str | None:
    """:attr:`ReplayReport.note` for ``record``: ``None`` when the run ended on its own."""
    if record.status in (RunStatus.SUCCEEDED, RunStatus.STOPPED):
        return None
    # the run's totals count attempts, a failed one too (agentmesh show's "calls 2 ... errors 1"); a replay serves
    # the ones that answered: "after 2 calls" beside "1 call served" read as a call the replay had lost
    calls = int((record.totals or {}).get("calls") or 0)
    errors = int((record.totals or {}).get("errors") or 0)
    why = record.stop_reason or record.error
    head = f"run {record.id[:12]} is {record.status}{f' ({why})' if why else ''} after {counted(calls, 'call')}"
    resume = f"agentmesh resume {record.id[:12]} continues it (resume() in Python)"
    if errors:
        answered = max(calls - errors, 0)
        return (
            f"{head}, {answered} answered and {errors} failed (agentmesh show: calls {calls}, errors {errors}): a "
            f"replay serves the answered ones and can go no further; {resume}"
        )
    return f"{head}: it never made the calls after those, so a replay can go no further; {resume}"


def _wall_stop(record: RunRecord, budgets: list[Budget]) -> str | None:
    """The stop reason of ``record`` if its wall-time budget stopped it (as :class:`BudgetTracker` words it)."""
    for b in budgets:
        reason = None if b.wall_s is None else f"budget: {b.wall_s:g} s wall time"
        if reason is not None and (record.stop_reason or "").startswith(reason):
            return reason
    return None


def _budget_of(record: RunRecord) -> Budget | None:
    stored = record.meta.get("budget")
    return Budget.model_validate(stored) if stored else None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


async def areplay(
    run_id: str, *, store: Store | str | None = None, graph: str | Path | GraphSpec | None = None
) -> ReplayReport:
    """Replay a stored run with zero model calls and compare what it produces with what the run produced.

    The graph is today's version of the run's graph (see :func:`current_spec`) or ``graph``.
    """
    own_store = not isinstance(store, Store)
    db = open_store(store)
    try:
        record = await asyncio.to_thread(db.get_run, run_id)
        if record.status == RunStatus.RUNNING:  # its stored totals are summed when it ends: its calls so far
            (record,) = await asyncio.to_thread(db.with_running_totals, [record])
        spec, source = current_spec(record, graph)
        check_functions(spec)  # as a run, resume or fork does: the function nodes then call without checking
        recorded = await asyncio.to_thread(load_recorded, db, record.id)
        original = await asyncio.to_thread(stored_outputs, db, _spec_of(record), record.id)
        # reference data the run read from its store (ALU's target sets, at the versions it pinned)
        pinned = await asyncio.to_thread(db.pinned_target_sets, record.id)
    finally:
        if own_store:
            db.close()
    report = ReplayReport(run_id=record.id, graph=spec.name, source=source)
    served: set[CallKey] = set()

    def on_call(kind: str, data: dict[str, Any]) -> None:
        if kind == "call":
            served.add((str(data["node"]), str(data["agent"]), int(data["round"] or 0), int(data["slot"])))

    client = ModelClient(_NoModel(record.id), reference=f"replay:{record.id}")
    with tempfile.TemporaryDirectory(prefix="agentmesh-replay-") as scratch_dir:
        scratch = Store(f"sqlite:///{Path(scratch_dir) / 'replay.db'}")
        try:
            new_id = await asyncio.to_thread(
                scratch.create_run,
                spec.name,
                record.inputs,
                spec_hash=spec.spec_hash(),
                model=f"replay:{record.id}",
                meta={"replay_of": record.id, "spec": record.meta.get("spec")},
            )
            await asyncio.to_thread(scratch.restore_pinned_target_sets, new_id, pinned)
            tracker = BudgetTracker(run_budgets(spec, _budget_of(record)))
            tracker.replayed_wall = _wall_stop(record, tracker.budgets)
            try:
                with held() as said:
                    report.warnings = said  # (filled as the replay goes: a divergence leaves those before it)
                    result = await _execute(
                        spec,
                        scratch,
                        new_id,
                        client,
                        record.inputs,
                        tracker,
                        [on_call],
                        recorded,
                        fresh=True,
                        mode="strict",
                    )
            except ReplayDivergence as exc:
                report.served = len(served)
                report.note = _cut_short(record) if exc.key not in recorded else None
                if report.note is None:  # a call the run made differently, or one a finished run never made
                    report.divergence = exc
                else:  # a call the run never made because it stopped before it: where it stopped, no divergence
                    report.stopped_at = exc.key
                return report
        finally:
            scratch.close()
            await client.aclose()
    report.served, report.calls_made = len(served), result.calls
    report.answer = result.answer
    report.unused = sorted(set(recorded) - served)
    if original is None:
        report.compared = False
        return report
    report.recorded_answer = _answer_of(spec, original)
    for name in spec.nodes:
        before, after = original.get(name), result.outputs.get(name)
        if _canonical(before) != _canonical(after):
            report.differences.append(_describe(name, before, after))
    return report


def _answer_of(spec: GraphSpec, outputs: Mapping[str, Any]) -> Any:
    from agentmesh.runtime.outcome import final_answer

    return final_answer(spec, outputs).get("answer")


def _describe(node: str, before: Any, after: Any) -> str:
    if before is None or after is None:
        return f"node {node!r}: {'only the replay' if before is None else 'only the recorded run'} has an output"
    keys = sorted({*before, *after}) if isinstance(before, dict) and isinstance(after, dict) else []
    changed = [k for k in keys if _canonical(before.get(k)) != _canonical(after.get(k))]
    return f"node {node!r}: output differs in {', '.join(changed) or 'value'}"


def step_filter(events: list[EventRecord], step: str | int) -> Callable[[EventRecord], bool]:
    """Which recorded calls a fork from ``step`` serves (see the module docstring for the step forms); a script
    may give ``N`` as an int."""
    calls = [e for e in events if e.kind in CALL_KINDS]
    if isinstance(step, bool) or not isinstance(step, str | int) or (isinstance(step, int) and step < 0):
        raise ConfigError(
            f"step {step!r}: expected N (a number of recorded calls, 0 or more), NODE or NODE@ROUND, as a string or "
            "an int"
        )
    text = str(step).strip()
    if not text:
        raise ConfigError("step '': expected N, NODE or NODE@ROUND (e.g. '3', 'debate' or 'debate@2')")
    if text.isdigit():
        n = int(text)
        if n > len(calls):
            raise ConfigError(f"step {n}: the run recorded only {counted(len(calls), 'model call')}")
        kept = {e.seq for e in calls[:n]}
        return lambda e: e.seq in kept
    node, _, round_text = text.partition("@")
    if round_text and not round_text.isdigit():
        raise ConfigError(f"step {step!r}: expected N, NODE or NODE@ROUND (a round number after '@')")
    wanted_round = int(round_text) if round_text else None
    mine = [e for e in calls if e.node == node or _base_node(e.node) == node]
    if mine:
        # a node in a loop's body makes its calls at round 0, under ``node#k`` in the loop's iteration k + 1: its
        # NODE@ROUND is its call in that iteration (``judge@2``), as show numbers the loop's rounds; a rounds node's
        # own rounds win (one in a loop's body counts its rounds from 1 in every iteration)
        by_iteration = wanted_round is not None and not any(e.round for e in mine)
        first = next(
            (
                e.seq
                for e in mine
                if wanted_round is None or (_iteration(e.node) + 1 if by_iteration else (e.round or 0)) >= wanted_round
            ),
            None,
        )
        if first is None:
            said = "iteration" if by_iteration else "round"
            raise ConfigError(f"step {step!r}: node {node!r} made no call in {said} {wanted_round} or later")
        return lambda e: e.seq < first
    # a node that makes no call itself (a loop, a branch, a function): before it ran, its ROUND-th time. A loop
    # records a result as it starts and one after each iteration, so LOOP@N is before its iteration N (show's
    # "loop round N-1" is the iteration before)
    ran = [e for e in events if e.kind == "node_result" and e.node == node]
    if not ran:
        made = sorted({_base_node(e.node) for e in calls})
        others = sorted({str(e.node) for e in events if e.kind == "node_result"} - set(made))
        raise ConfigError(
            f"step {step!r}: the run made no call in node {node!r} and did not run it; nodes that made calls: {made}"
            + (f", nodes that ran without calls: {others}" if others else "")
        )
    time = max(wanted_round or 1, 1)
    if not 1 <= time <= len(ran):
        is_loop = any(e.round for e in ran)
        what = f"{counted(len(ran) - 1, 'iteration')}" if is_loop else f"{counted(len(ran), 'time')}"
        raise ConfigError(
            f"step {step!r}: node {node!r} ran {what}, and makes no call itself, so {node}@N is before its "
            f"{'iteration' if is_loop else 'run'} N (1 to {max(len(ran) - (1 if is_loop else 0), 1)})"
        )
    mark = ran[time - 1].seq
    return lambda e: e.seq < mark


def _base_node(call_node: str | None) -> str:
    """The node a call was made in: its record key without the loop iteration (``draft#2`` -> ``draft``)."""
    return str(call_node).split("#")[0]


def _iteration(call_node: str | None) -> int:
    """The loop iterations finished before a call (``draft#2`` -> 2, ``draft`` -> 0)."""
    _, _, k = str(call_node).partition("#")
    return int(k) if k.isdigit() else 0


async def afork(
    run_id: str,
    *,
    step: str | int,
    store: Store | str | None = None,
    model: str | Provider | ModelClient | None = None,
    set_inputs: Mapping[str, Any] | None = None,
    listeners: Iterable[Listener] | Listener | None = None,
    graph: str | Path | GraphSpec | None = None,
    budget: Budget | Mapping[str, Any] | None = None,
) -> RunResult:
    """Replay ``run_id`` up to ``step``, then go on live: a new run whose parent is ``run_id``.

    The graph is today's version of the run's graph (or ``graph``); a served call whose prompt changed (an
    edited card, a ``set_inputs`` value it uses) is made live, so only what changed costs anything. The fork keeps
    the budget its parent was given (``budget=``/``--max-*``; the graph's own stop policies apply either way), its
    served calls counted, unless ``budget`` replaces it: a run a budget cut short could otherwise only be forked
    into one cut at the same point.
    """
    given_budget = as_budget(budget)  # (checked before anything is read or stored)
    listening = listener_list(listeners)
    own_store = not isinstance(store, Store)
    db = open_store(store)
    client: ModelClient | None = None
    try:
        record = await asyncio.to_thread(db.get_run, run_id)
        spec, source = current_spec(record, graph)
        events = await asyncio.to_thread(db.events, record.id)
        keep = step_filter(events, step)
        stored_spec, spec_hash = spec.canonical()
        check_built(spec, stored_spec, spec_hash)  # (a graph= derived with model_copy skipped validation)
        inputs = check_inputs(spec, {**record.inputs, **(set_inputs or {})})
        check_functions(spec)  # before the fork is stored, as a run checks them (a module not imported here)
        await run_input_checks(spec, inputs, db)  # (a set_inputs naming a target set the store lacks)
        recorded = await asyncio.to_thread(load_recorded, db, record.id, keep=keep)
        client = (
            model
            if isinstance(model, ModelClient)
            else model_for(model, db)
            if model is not None
            else stored_model(record, db)
        )
        run_budget = given_budget if given_budget is not None else _budget_of(record)
        fork = {"parent": record.id, "from": str(step), "set": dict(set_inputs or {}), "model": client.reference}
        new_id = await asyncio.to_thread(
            db.create_run,
            spec.name,
            inputs,
            spec_hash=spec_hash,
            model=client.reference,
            parent_run_id=record.id,
            meta={
                "spec": stored_spec,
                **({"source": source} if source != "stored spec" else {}),
                "fork": fork,
                **({"budget": run_budget.model_dump(mode="json", exclude_none=True)} if run_budget else {}),
            },
        )
        # the fork reads the versions of the target sets its parent read (only what the fork changes differs)
        await asyncio.to_thread(db.copy_target_pins, record.id, new_id)
        tracker = BudgetTracker(run_budgets(spec, run_budget))
        return await _execute(
            spec,
            db,
            new_id,
            client,
            inputs,
            tracker,
            listening,
            recorded,
            fresh=True,
            mode="fork",
            spec_hash=spec_hash,
        )
    finally:
        if client is not None and not isinstance(model, ModelClient | Provider):
            await client.aclose()
        if own_store:
            db.close()


def replay(
    run_id: str, *, store: Store | str | None = None, graph: str | Path | GraphSpec | None = None
) -> ReplayReport:
    """Blocking :func:`areplay`."""
    return blocking(
        areplay(run_id, store=store, graph=graph),
        name="agentmesh.runtime.replay.replay",
        async_name="agentmesh.runtime.replay.areplay",
    )


def fork(run_id: str, *, step: str | int, **kwargs: Any) -> RunResult:
    """Blocking :func:`afork`."""
    return blocking(
        afork(run_id, step=step, **kwargs),
        name="agentmesh.runtime.replay.fork",
        async_name="agentmesh.runtime.replay.afork",
    )
