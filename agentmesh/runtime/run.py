"""Running a graph: ``agentmesh.run(graph, inputs, model=...)`` and its async form, resume, many items.

A run is created in the store with its spec (as data, so it can be resumed or replayed whatever happens to the
file), executed by LangGraph with the store's checkpointer (thread = run id), and finished with its status,
stop reason and totals. The result carries the answer, every node's output, usage, cost and the run id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel

from agentmesh._sync import blocking
from agentmesh.errors import AgentmeshError, ConfigError, RunDeletedError, StoreError
from agentmesh.models.client import ModelClient
from agentmesh.models.providers.base import Provider
from agentmesh.models.registry import get_model
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
from agentmesh.runtime.compile import compile_graph, node_outputs
from agentmesh.runtime.context import Listener, ReplayMode, RunContext, RunError
from agentmesh.runtime.operators.registry import check_functions
from agentmesh.runtime.outcome import ask_call_refusal, final_answer, is_ask_call
from agentmesh.runtime.recorded_calls import CallKey, RecordedCall, load_recorded
from agentmesh.runtime.recorded_model import model_for, reads_a_run
from agentmesh.runtime.tracing import finish_run as finish_run_span
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.loader import stored_graph
from agentmesh.spec.stop import Budget
from agentmesh.store import RunRecord, RunStatus, Store
from agentmesh.store.events import stored_json
from agentmesh.store.owner import OWNER_KEY, describe_owner, owner_alive

DEFAULT_MODEL = "local"


class RunResult(BaseModel):
    """What a run produced (a resume's or a fork's result is the same): its answer, every node's output, why it
    stopped and what it cost. The run itself stays in the store under ``run_id`` (``agentmesh show RUN``)."""

    run_id: str
    """The stored run's id: what ``resume``, ``replay`` and ``fork`` take."""
    graph: str
    """The graph's name."""
    status: str
    """``succeeded`` (a run a budget stopped too: it ends with its best answer so far; see ``stop_reason``)."""
    stop_reason: str | None
    """Why it ended: a stop policy that held (consensus, a budget, ...) or ``completed: ...``."""
    answer: Any = None
    """The output node's normalised answer (a vote key: ``51``, ``B``), else the best answer so far."""
    value: Any = None
    """The parsed value behind ``answer`` (what the agent's parser returned)."""
    text: str | None = None
    """The reply that gave ``answer``, as the model wrote it."""
    outputs: dict[str, Any]
    """Every node that ran, by name: its operator's output (``answers``, ``answer``, ``votes``, ``scores``...)."""
    calls: int
    """Model calls stored for the run, as the store totals them (a resumed run's calls before it stopped too)."""
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    """``None`` when a call's model has no price in the table (the cost is unknown, not a partial sum)."""
    served_from_record: int = 0
    """Calls answered from the run's record rather than made: a resume's finished calls, a fork's prefix."""


async def arun(
    graph: str | Path | GraphSpec,
    inputs: Mapping[str, Any],
    *,
    model: str | Provider | ModelClient | None = None,
    store: Store | str | None = None,
    budget: Budget | Mapping[str, Any] | None = None,
    listeners: Iterable[Listener] | Listener = (),
    meta: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Run ``graph`` on ``inputs`` and return its result (see :class:`RunResult`).

    ``run_id`` is the id to store the run under (default: a fresh one): a caller that hands the run to another
    process (a Ray worker) names it up front, so that it can find, report and wait for the run while it goes on."""
    if run_id is not None and (not isinstance(run_id, str) or not run_id.strip() or run_id != run_id.strip()):
        # an int was stored as it was, all the run's calls made, and only the result failed to build
        raise ConfigError(
            f"run_id: expected a non-empty string without edge spaces (or None: a fresh id), got "
            f"{type(run_id).__name__} {run_id!r:.80}"
        )
    if meta is not None and not isinstance(meta, Mapping):
        raise ConfigError(f"meta: expected a mapping of JSON values (or None), got {type(meta).__name__}")
    spec = resolve_graph(graph)
    stored_spec, spec_hash = spec.canonical()
    check_built(spec, stored_spec, spec_hash)
    values = check_inputs(spec, inputs)
    budget = as_budget(budget)
    listening = listener_list(listeners)  # (before the run is stored: a bad one must not leave it "running")
    check_functions(spec)  # before the run is stored: not at the node, after the calls of every node before it
    if isinstance(model, str) and not model.strip():
        # (an unset environment variable read as ""): it would have run the embedded default model, silently
        raise ConfigError(
            "model: an empty reference; give one (such as 'local' or 'openai:gpt-4o-mini'), or None for the graph's "
            f"model, else {DEFAULT_MODEL!r}"
        )
    reference = model or spec.model or DEFAULT_MODEL
    await _check_card_models(spec)
    # resolved (and failing) before the store is opened, unless it reads a stored run: then from that store
    client = None if reads_a_run(reference) else get_model(reference)
    own_store = not isinstance(store, Store)
    try:
        db = open_store(store)
    except BaseException:  # (a bad URL, an unreachable database): the client built above is closed, not leaked
        if client is not None and _owns(model):
            await client.aclose()
        raise
    try:
        if client is None:  # a replay:<run-id> model reads the run from this store
            client = model_for(reference, db)
        # the systems' own checks of the inputs against this store (ALU's target set): refused, nothing is stored
        await run_input_checks(spec, values, db)
        run_id = await db.acreate_run(
            spec.name,
            values,
            run_id=run_id,
            spec_hash=spec_hash,
            model=client.reference,
            meta={
                **(meta or {}),
                "spec": stored_spec,
                # where the graph came from (a built-in name or a file), so a replay can check it against today's
                **({"source": graph_source(graph)} if not isinstance(graph, GraphSpec) else {}),
                **({"budget": budget.model_dump(mode="json", exclude_none=True)} if budget else {}),
            },
        )
        tracker = BudgetTracker(run_budgets(spec, budget))
        return await _execute(
            spec,
            db,
            run_id,
            client,
            values,
            tracker,
            listening,
            recorded={},
            fresh=True,
            new_run=True,
            spec_hash=spec_hash,
        )
    finally:
        if client is not None and _owns(model):
            await client.aclose()
        if own_store:
            db.close()


async def aresume(
    run_id: str,
    *,
    store: Store | str | None = None,
    model: str | Provider | ModelClient | None = None,
    listeners: Iterable[Listener] | Listener = (),
    force: bool = False,
) -> RunResult:
    """Continue an interrupted or failed run from its last checkpoint; finished calls are served from the record.

    A run still marked running whose process is alive on this machine is refused unless ``force``: resumed beside
    it, its calls would be made twice (see :mod:`agentmesh.store.owner`). One left running by a dead process (a
    SIGKILL, out of memory) is resumed, and so is one whose process cannot be checked from here (another host,
    or a run stored before runs recorded their owner): a caller that may meet those checks first, as
    ``agentmesh resume`` does."""
    listening = listener_list(listeners)
    own_store = not isinstance(store, Store)
    db = open_store(store)
    client: ModelClient | None = None
    try:
        record = db.get_run(run_id)
        if record.status == RunStatus.SUCCEEDED:
            raise ConfigError(f"run {record.id} already succeeded; nothing to resume", run=record.id)
        if is_ask_call(record):
            raise ConfigError(ask_call_refusal([record.id], "resume"), run=record.id)
        owner = record.meta.get(OWNER_KEY)
        if record.status == RunStatus.RUNNING and not force and owner_alive(owner):
            raise ConfigError(
                f"run {record.id} is still being run by {describe_owner(owner)}: resumed beside it, its calls would "
                "be made twice (force=True resumes it anyway; nothing was resumed)",
                run=record.id,
            )
        spec = stored_graph(record.meta.get("spec"), record.id)
        check_functions(spec)
        await _check_card_models(spec)
        client = model_for(model, db) if model is not None else stored_model(record, db)
        recorded = await asyncio.to_thread(load_recorded, db, record.id)
        # Claimed, not just marked running: two resumes of one run at once (two scripts, a script beside
        # `agentmesh resume`) both read it as interrupted, and both would make its calls. The claim holds only if the
        # run is still as read; the loser changes nothing.
        if not await db.aclaim_run(record):
            now = await asyncio.to_thread(db.get_run, record.id)
            raise ConfigError(
                f"run {record.id}: {describe_owner(now.meta.get(OWNER_KEY))} resumed it first (it is {now.status} "
                "now); nothing was resumed here",
                run=record.id,
            )
        try:
            # The budget holds over the whole run: what was spent before the interruption counts.
            extra = Budget.model_validate(record.meta["budget"]) if record.meta.get("budget") else None
            responses = [r.response for r in recorded.values()]
            tracker = BudgetTracker(
                run_budgets(spec, extra),
                calls=len(responses),
                tokens=sum(r.usage.total_tokens for r in responses),
                cost_usd=sum(r.cost_usd or 0.0 for r in responses),
                unpriced=next((r.model for r in responses if r.cost_usd is None), None),
            )
        except BaseException:
            db.release_claim(record)  # not begun: the run is as it was, not left "running" under this process
            raise
        return await _execute(spec, db, record.id, client, record.inputs, tracker, listening, recorded, fresh=False)
    finally:
        if client is not None and _owns(model):
            await client.aclose()
        if own_store:
            db.close()


async def _check_card_models(spec: GraphSpec) -> None:
    """Resolve the models that cards name for themselves, as the run's model is, before the run is stored: the run
    makes their clients only at their first call, so an unknown alias or a key not exported failed the run there,
    after the calls of every node before it."""
    for reference in sorted({c.model for c in spec.agents.values() if c.model and not reads_a_run(c.model)}):
        try:
            client = get_model(reference)
        except AgentmeshError as exc:
            cards = ", ".join(repr(name) for name, c in spec.agents.items() if c.model == reference)
            raise ConfigError(
                f"graph {spec.name!r}: agent {cards} (model {reference}): {exc}", graph=spec.name
            ) from exc
        await client.aclose()


def stored_model(record: RunRecord, store: Store) -> ModelClient:
    """The model a stored run ran with, for a resume or a fork given no model of its own.

    The run stored its model as a reference string; one it got as a Python object (a ``ScriptedModel``, a provider
    of the caller's) is stored under that object's name, which resolves to nothing here -- ``scripted:scripted``
    read as a script file named ``scripted``. The error then says so, and that ``model=`` takes the object again."""
    reference = record.model or DEFAULT_MODEL
    try:
        return model_for(reference, store)
    except AgentmeshError as exc:
        raise ConfigError(
            f"run {record.id}: the model it ran with, {reference!r}, does not resolve here ({exc}); pass model= "
            "(a reference string, or the Provider or ModelClient object the run was given: a Python object is "
            "stored by its name only)",
            run=record.id,
            model=reference,
        ) from exc


def graph_source(graph: str | Path) -> str:
    """Where a graph comes from, as a run stores it (``meta.source``): a file's absolute path, else the built-in's
    name. A replay resolves it again, so that it checks today's graph; a caller that resolves the graph itself and
    passes the spec (the command line) stores this in ``meta`` so that its runs say it too."""
    path = Path(graph)
    return str(path.resolve()) if path.suffix in (".yaml", ".yml") and path.is_file() else str(graph)


def _owns(model: str | Provider | ModelClient | None) -> bool:
    """Whether the run built its model client from a reference, and so must close it (its HTTP connections);
    a provider or client passed in belongs to the caller, who may use it again."""
    return not isinstance(model, Provider | ModelClient)


async def _execute(
    spec: GraphSpec,
    db: Store,
    run_id: str,
    client: ModelClient,
    inputs: Mapping[str, Any],
    budget: BudgetTracker,
    listeners: list[Listener],
    recorded: Mapping[CallKey, RecordedCall],
    *,
    fresh: bool,
    new_run: bool = False,
    mode: ReplayMode = "resume",
    spec_hash: str | None = None,
) -> RunResult:
    """Run the compiled graph for a stored run and finish the run with its outcome.

    ``fresh``: start from the inputs rather than the last checkpoint. ``new_run``: the run was created just now
    under a fresh id, so it has neither checkpoints nor events yet and nothing needs to be looked up for it.
    """
    try:
        # Everything before the graph runs (its context, its compiled graph, its last checkpoint): the run is stored
        # as running already, so a failure here must end it too, not leave it "running" until someone resumes it.
        ctx = RunContext(
            run_id=run_id,
            spec=spec,
            model=client,
            store=db,
            budget=budget,
            inputs=inputs,
            recorded=recorded,
            listeners=listeners,
            mode=mode,
            new_run=new_run,
        )
        checkpointer = db.checkpointer().deferring()  # LangGraph's default durability: no step waits for its put
        if new_run:
            checkpointer.mark_new_thread(run_id)
        compiled = compile_graph(spec, checkpointer=checkpointer, spec_hash=spec_hash)
        config: RunnableConfig = {"configurable": {"thread_id": run_id}, "recursion_limit": 10_000}
        if not fresh and (await compiled.aget_state(config)).created_at is None:
            fresh = True  # the run stopped before its first checkpoint: start over (recorded calls are still served)
    except BaseException as exc:
        await _end_failed(db, run_id, exc)
        raise
    tracing = ctx.tracing
    spanning = (
        tracing.run(graph=spec.name, run_id=run_id, model=client.reference, resumed=not fresh)
        if tracing is not None
        else contextlib.nullcontext(None)
    )
    with spanning as span:  # an OpenTelemetry span of the run, when the application set OpenTelemetry up
        try:
            # (inside the try: a listener that raises on it fails the run, rather than leave it stored as running)
            ctx.emit("start", {"run_id": run_id, "graph": spec.name, "model": client.reference, "resumed": not fresh})
            state: dict[str, Any] = await compiled.ainvoke(
                # the state's copy of the inputs is checkpointed: masked as the run's record of them is (prompts
                # read ctx.inputs; a resume reads the record)
                {"inputs": stored_json(dict(inputs), "inputs")} if fresh else None,
                config,
                context=ctx,
            )
            if state.get(_INTERRUPT):
                raise await _interrupted(compiled, config, state[_INTERRUPT])
        except BaseException as exc:
            await _end_failed(db, run_id, exc)
            raise
        finally:
            await ctx.aclose()
        outputs = node_outputs(spec, state)
        final = final_answer(spec, outputs)
        stop_reason = state.get("stop") or _completed(spec, outputs, state.get("notes") or [])
        overspent = budget.overspent()
        if overspent is not None and "(spent " not in stop_reason:  # a budget's own stop reason says it already
            stop_reason = f"{stop_reason}; {overspent}"
        # thread_id: a run deleted while it ran (delete --force) ends here with RunDeletedError, the checkpoints it
        # wrote after the deletion deleted in the same commit (the one lookup of its row per run; none per write)
        record = await db.afinish_run(run_id, RunStatus.SUCCEEDED, stop_reason=stop_reason, thread_id=run_id)
        try:
            # The finish committed after every write the run queued (one queue, in order), so all their outcomes are
            # known now: a run whose record has a gap does not stay "succeeded".
            ctx.check_writes()
            checkpointer.check_writes(run_id)
        except StoreError as exc:
            await db.afinish_run(run_id, RunStatus.FAILED, stop_reason="error", error=str(exc), thread_id=run_id)
            raise
        ctx.emit("stop", {"reason": stop_reason, **final})
        if span is not None:
            finish_run_span(span, status=str(record.status), stop_reason=stop_reason, totals=record.totals)
    totals = record.totals or {}
    return RunResult(
        run_id=run_id,
        graph=spec.name,
        status=str(record.status),
        stop_reason=stop_reason,
        answer=final.get("answer"),
        value=final.get("value"),
        text=final.get("text"),
        outputs=outputs,
        calls=int(totals.get("calls", 0)),
        prompt_tokens=int(totals.get("prompt_tokens", 0)),
        completion_tokens=int(totals.get("completion_tokens", 0)),
        cost_usd=totals.get("cost_usd"),
        served_from_record=ctx.served_from_record,
    )


#: The key under which LangGraph's output carries the interrupts that paused a graph (``langgraph.constants.INTERRUPT``,
#: deprecated as a public name since LangGraph 1.0; the value is what ``ainvoke`` returns).
_INTERRUPT = "__interrupt__"


async def _interrupted(compiled: Any, config: RunnableConfig, interrupts: Sequence[Any]) -> RunError:
    """The error of a run that a node paused with LangGraph's ``interrupt()`` (a user operator or function calling
    it): LangGraph ends ``ainvoke`` there, its output carrying the pending interrupts, and without this check the run
    was stored as "succeeded", the node and everything after it "not run (a branch took another route)".

    agentmesh has no way to answer an interrupt (no ``Command(resume=...)`` reaches a run), so the run fails, naming
    the node(s) and what they asked; the calls made before it are stored, and ``resume`` would pause it again."""
    snapshot = await compiled.aget_state(config)
    nodes = sorted({task.name for task in snapshot.tasks if task.interrupts})
    asked = "; ".join(f"{getattr(i, 'value', i)!r:.120}" for i in interrupts)
    where = f"node {nodes[0]!r}" if len(nodes) == 1 else f"nodes {', '.join(map(repr, nodes))}" if nodes else "a node"
    return RunError(
        f"{where} paused the run with LangGraph's interrupt() ({asked}); agentmesh runs cannot be paused for input: "
        "return a value, or raise an error, from the operator or function instead",
        **({"node": nodes[0]} if len(nodes) == 1 else {}),
    )


async def _end_failed(db: Store, run_id: str, exc: BaseException) -> None:
    """End a stored run that ``exc`` stopped: interrupted when it was cancelled (Ctrl-C, a task cancelled), failed
    with the error's words on any other error. A ``KeyboardInterrupt`` or ``SystemExit`` raised in the loop's own
    thread leaves it as it is: the loop is going away, and ``agentmesh resume`` claims a run whose process died.

    The error says which run it failed (an :class:`AgentmeshError`'s ``context["run"]``, another exception's note):
    the caller's way to ``resume`` it, which the error did not give (the run was stored under a fresh id)."""
    if isinstance(exc, AgentmeshError):
        exc.context.setdefault("run", run_id)
    elif isinstance(exc, Exception):
        exc.add_note(f"run {run_id} is stored as failed: agentmesh.resume({run_id!r}) continues it")
    if isinstance(exc, asyncio.CancelledError):
        # deleted while it ran (its checkpoints since with it, see the success path): nothing to store as
        # interrupted, and the cancellation goes on as a cancellation
        with contextlib.suppress(RunDeletedError):
            await db.afinish_run(run_id, RunStatus.INTERRUPTED, stop_reason="interrupted", thread_id=run_id)
    elif isinstance(exc, AgentmeshError):
        await db.afinish_run(run_id, RunStatus.FAILED, stop_reason="error", error=str(exc), thread_id=run_id)
    elif isinstance(exc, Exception):
        error = f"{type(exc).__name__}: {exc}"
        await db.afinish_run(run_id, RunStatus.FAILED, stop_reason="error", error=error, thread_id=run_id)


def _completed(spec: GraphSpec, outputs: Mapping[str, Any], notes: Sequence[str]) -> str:
    """The stop reason of a run that reached its end with nothing stopping it early: its nodes' stop notes (a
    loop's or a round's early stop), else "every node ran" -- only true without a branch, so the nodes a branch
    routed past are named. Either way, an output node that did not run is named too: the answer is then the
    latest node's that has one, which would otherwise go unexplained."""
    skipped = [name for name in spec.nodes if name not in outputs]
    if notes:
        reason = "; ".join(notes)
    elif not skipped:
        reason = "completed: every node ran"
    else:
        reason = f"completed: reached the end; not run (a branch took another route): {', '.join(skipped)}"
    output = spec.output_node()
    if output in skipped:
        reason += f"; the output node {output!r} did not run, so the answer is the latest answer of another node"
    # a node's stop policy that held only once the node had run its course: said as what it was, after what ended
    # the run (it read as the reason the run stopped)
    for name, out in outputs.items():
        if isinstance(out, Mapping) and out.get("stop_held") and not out.get("stop"):
            reason += f"; node {name!r}: {out['stop_held']}"
    return reason


def run(
    graph: str | Path | GraphSpec,
    inputs: Mapping[str, Any],
    *,
    model: str | Provider | ModelClient | None = None,
    store: Store | str | None = None,
    budget: Budget | Mapping[str, Any] | None = None,
    listeners: Iterable[Listener] | Listener = (),
    meta: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Blocking :func:`arun`, for scripts without an event loop."""
    work = arun(graph, inputs, model=model, store=store, budget=budget, listeners=listeners, meta=meta, run_id=run_id)
    return blocking(work, name="agentmesh.run", async_name="agentmesh.arun")


def resume(
    run_id: str,
    *,
    store: Store | str | None = None,
    model: str | Provider | ModelClient | None = None,
    listeners: Iterable[Listener] | Listener = (),
    force: bool = False,
) -> RunResult:
    """Blocking :func:`aresume`, for scripts without an event loop."""
    work = aresume(run_id, store=store, model=model, listeners=listeners, force=force)
    return blocking(work, name="agentmesh.resume", async_name="agentmesh.aresume")
