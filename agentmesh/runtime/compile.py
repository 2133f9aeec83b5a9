"""Compiling a graph spec to a LangGraph ``StateGraph``: LangGraph schedules, checkpoints and resumes; agentmesh
only says what each node does and where it goes next.

State has one channel per node (``n_<node>``: that node's latest output), so a step rewrites only the channels
of the nodes that ran: storage grows with new content, not with steps times state. Whole transcripts are in the
store's events; state holds each node's current layer.

Routing:
- declared edges are static edges; a node with several predecessors waits for all of them (a join), except for
  predecessors on the two arms of one branch: only one arm runs, so the node waits for the arm that ran; a loop
  node with several is entered once all of them have finished, like any other (:mod:`agentmesh.spec.joins`, whose
  rules the load check that says what a template may read follows too);
- ``rounds`` (any operator whose parameters say ``repeats``) re-enters itself until its output says ``done``,
  then passes through ``<node>__done`` to its successors (or goes straight to the end when it has none);
- ``loop`` enters ``body[0]``, the body runs as a chain back to the loop node, which checks ``until``;
- ``branch`` routes to ``then`` or ``else``; a route into a node that also waits for predecessors of its own goes
  through a pass-through ``<branch>__then``/``<branch>__else``, which joins them;
- once the run must stop (a budget, the graph's stop policy), every later node is a no-op and loops exit, so
  the graph drains to END without another model call.
"""

from __future__ import annotations

import inspect
import operator as op_
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agentmesh.errors import ConfigError
from agentmesh.runtime.budget import BudgetExhausted
from agentmesh.runtime.context import RunContext, RunError
from agentmesh.runtime.operators import NodeRun, get_operator
from agentmesh.runtime.operators.basic import storable
from agentmesh.runtime.operators.registry import is_shipped, reraise_named
from agentmesh.runtime.stop import holds
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.joins import branch_arms, branch_routes, join_groups, routes_into_joins, static_predecessors
from agentmesh.spec.operators import BranchParams, LoopParams
from agentmesh.store.events import stored_state

_SUMMARY_KEYS = (
    "round",
    "answer",
    "stop",
    "stopped",
    "done",
    "active",
    "taken",
    "iteration",
    "scores",
    "kept",
    "network",
)


def channel(node: str) -> str:
    return f"n_{node}"


def _first(left: str | None, right: str | None) -> str | None:
    return left if left else right


def state_schema(spec: GraphSpec) -> type[Any]:
    """The run state's TypedDict: inputs, one channel per node, the stop reason and node stop notes."""
    fields: dict[str, Any] = {
        "inputs": dict,
        "stop": Annotated[str | None, _first],
        "notes": Annotated[list[str], op_.add],
    }
    for name in spec.nodes:
        fields[channel(name)] = dict
    schema: type[Any] = TypedDict(f"State_{spec.name}", fields, total=False)  # type: ignore[misc]
    return schema


def node_outputs(spec: GraphSpec, state: dict[str, Any]) -> dict[str, Any]:
    return {name: state[channel(name)] for name in spec.nodes if state.get(channel(name)) is not None}


def _enclosing_loop(spec: GraphSpec, name: str) -> str | None:
    for loop_name, node in spec.nodes.items():
        if isinstance(node.params, LoopParams) and name in node.params.body:
            return loop_name
    return None


def _make_node(spec: GraphSpec, name: str) -> Any:
    node = spec.nodes[name]
    get_operator(node.op)  # registered (a spec's validation checked its name; the implementation may lag)
    loop = _enclosing_loop(spec, name)

    async def execute(state: Any, runtime: Runtime[Any]) -> dict[str, Any]:
        ctx: RunContext = runtime.context
        if state.get("stop"):
            return {}
        # looked up per run, not bound when the spec compiled (once per process): an operator registered again (a
        # notebook cell fixed and run again) is the one the next run uses
        run_op = get_operator(node.op)
        outputs = node_outputs(spec, state)
        iteration = int((state.get(channel(loop)) or {}).get("iteration", 0)) if loop else 0
        run = NodeRun(
            name=name,
            op=node.op,
            params=node.params,
            ctx=ctx,
            outputs=outputs,
            own=state.get(channel(name)),
            iteration=iteration,
        )
        try:
            if ctx.tracing is None:
                out = await _operator_output(run_op, run)
            else:
                with ctx.tracing.node(name=name, op=node.op, iteration=iteration):
                    out = await _operator_output(run_op, run)
        except BudgetExhausted as exc:
            out = {"stopped": exc.reason}
        if not is_shipped(run_op):
            # a user's operator may return what no reply or input carried (a key it read): masked before state
            # holds it (agentmesh's own operators output only replies and inputs, masked where they entered)
            out = storable(stored_state(out), name, f"operator {node.op!r}")
        update: dict[str, Any] = {channel(name): out}
        answers = _answers(out, name, _who(node.op, node.params))
        reason = out.get("stopped")
        if reason:  # the node itself was cut short (a budget spent part-way through its calls)
            update["stop"] = f"{reason} in node {name!r}"
        elif spec.stop is not None:
            reason = holds(spec.stop, out, outputs={**outputs, name: out}, budget=ctx.budget)
            if reason:
                update["stop"] = f"{reason} (after node {name!r})"
        if out.get("stop"):
            update["notes"] = [f"{out['stop']} in node {name!r}"]
        summary = {k: out[k] for k in _SUMMARY_KEYS if k in out}
        summary["answers"] = [{"slot": a.get("slot"), "agent": a.get("agent"), "key": a.get("key")} for a in answers]
        await ctx.record_node(name, out.get("round"), summary)
        return update

    execute.__name__ = f"node_{name}"
    return execute


def _who(op: str, params: Any) -> str:
    """What made a node's output, for a message: the registered function of an ``op: function`` node, else its
    operator."""
    function = getattr(params, "function", None) if op == "function" else None
    return f"function {function!r}" if isinstance(function, str) else f"operator {op!r}"


def _answers(out: Mapping[str, Any], name: str, who: str) -> list[Mapping[str, Any]]:
    """A node's ``answers``, refused by name unless a list of answers: what votes, ranks and scores read after it.
    A registered function or user operator returning ``"answers": "abc"`` failed the run at this node's summary
    as ``AttributeError: 'str' object has no attribute 'get'``, naming neither the node nor what was expected."""
    answers = out.get("answers") or []
    if isinstance(answers, list) and all(isinstance(a, Mapping) for a in answers):
        return answers
    bad = answers if not isinstance(answers, list) else next(a for a in answers if not isinstance(a, Mapping))
    what = "'answers'" if not isinstance(answers, list) else "an item of 'answers'"
    raise RunError(
        f"node {name!r}: {who} returned {what} that is {type(bad).__name__} {bad!r:.80}; 'answers' is a "
        "list of answers, each a mapping (agent, slot, text, key, value, ...), as votes, ranks and scores read them",
        node=name,
    )


async def _operator_output(run_op: Any, run: NodeRun) -> dict[str, Any]:
    """What the operator of ``run`` returns, refused by name unless it is what an operator must return: a user
    operator written as a plain ``def``, or returning a list, failed in LangGraph's frames as ``object dict can't be
    used in 'await' expression`` or ``'list' object has no attribute 'get'``, naming neither the node nor the
    operator."""
    result = run_op(run)
    if not inspect.isawaitable(result):
        raise RunError(
            f"node {run.name!r}: operator {run.op!r} returned {type(result).__name__}, not an awaitable: an operator "
            "is an async function (`async def`) of its NodeRun",
            node=run.name,
            operator=run.op,
        )
    try:
        out = await result
    except Exception as exc:
        if is_shipped(run_op):
            raise
        reraise_named(exc, node=run.name, what=f"operator {run.op!r}", operator=run.op)  # a user operator's bug
    if not isinstance(out, dict):
        raise RunError(
            f"node {run.name!r}: operator {run.op!r} returned {type(out).__name__} {out!r:.80}; expected the node's "
            "output as a dict (e.g. {'answers': [...], 'answer': ...})",
            node=run.name,
            operator=run.op,
        )
    return out


# Nodes and routes are coroutine functions, trivial as they are: LangGraph runs a plain function of an async graph
# in a worker thread (``run_in_executor``), and that hand-off cost ~1-2 ms per step under load -- more than the step.


async def _pass(state: Any) -> dict[str, Any]:
    return {}


#: Compiled graphs by spec hash, the most recently used last; a process that builds specs by the thousand (a
#: search over teams, a service) keeps only the latest :data:`COMPILED_KEPT`.
_compiled: OrderedDict[str, CompiledStateGraph[Any, Any, Any, Any]] = OrderedDict()
_compiled_lock = threading.Lock()  # runs of several threads (blocking ``run`` in a thread pool) share it
COMPILED_KEPT = 256


def build_state_graph(spec: GraphSpec) -> StateGraph[Any, Any, Any, Any]:
    """The LangGraph builder for ``spec`` (not yet compiled: the caller adds the checkpointer)."""
    builder: StateGraph[Any, Any, Any, Any] = StateGraph(state_schema(spec))
    # Nodes something follows: an edge leaves them, or they are in a loop's body (which chains back to the loop).
    followed = {a for a, _ in spec.edges}
    for node in spec.nodes.values():
        if isinstance(node.params, LoopParams):
            followed.update(node.params.body)
    exits: dict[str, str] = {}
    for name, node in spec.nodes.items():
        builder.add_node(name, _make_node(spec, name))
        # a repeating node's exit is a pass-through node its successors join on; one that nothing follows goes
        # straight to END instead (one LangGraph step, and its checkpoint, fewer per run)
        if (node.params.repeats and name in followed) or isinstance(node.params, LoopParams):
            exits[name] = f"{name}__done"
            builder.add_node(exits[name], _pass)

    def source(name: str) -> str:
        return exits.get(name, name)

    # A branch's route into a node that also waits for predecessors of its own goes through a pass-through, one
    # more predecessor of that node's join (spec.joins: what the load check reasons over too).
    through = routes_into_joins(spec)

    def via(branch: str, field: str) -> str:
        return f"{branch}__{field}"

    for branch, field in sorted(through):
        builder.add_node(via(branch, field), _pass)

    # Predecessors reached by static edges (declared + loop body chains), and targets reached by routing.
    static = {n: [source(p) for p in preds] for n, preds in static_predecessors(spec).items()}
    routed: set[str] = set()
    tails: dict[str, str] = {}  # loop node -> its body's last node (the next iteration: an edge of its own)
    for name, node in spec.nodes.items():
        p = node.params
        if isinstance(p, LoopParams):
            routed.add(p.body[0])
            tails[name] = source(p.body[-1])
    for branch, routes in branch_routes(spec).items():
        for field, target in routes.items():
            if (branch, field) in through:
                static[target].append(via(branch, field))
            else:
                routed.add(target)

    arms = branch_arms(spec, source, via, through)
    for name, preds in static.items():
        if not preds and name not in routed:
            builder.add_edge(START, name)
        if name in tails:
            builder.add_edge(tails[name], name)
        if len(preds) == 1:
            builder.add_edge(preds[0], name)
        elif preds:
            # (a loop node too: it is entered once all of them have finished, as any other node with several)
            for group in join_groups(arms, preds):
                builder.add_edge(group[0] if len(group) == 1 else group, name)

    has_successor = (
        {source(a) for a, _ in spec.edges} | {pred for preds in static.values() for pred in preds} | set(tails.values())
    )
    for name, node in spec.nodes.items():
        p = node.params
        if p.repeats:
            done = exits.get(name, END)
            builder.add_conditional_edges(name, _again(name, name, done), [name, done])
            if done == END:
                continue
        elif isinstance(p, LoopParams):
            builder.add_conditional_edges(name, _again(name, p.body[0], exits[name]), [p.body[0], exits[name]])
        elif isinstance(p, BranchParams):
            then = via(name, "then") if (name, "then") in through else p.then
            otherwise = p.otherwise and (via(name, "else") if (name, "else") in through else p.otherwise)
            targets = [then, otherwise or END]
            builder.add_conditional_edges(name, _branch(name, then, otherwise or END), [*targets, END])
            continue
        if source(name) not in has_successor:
            builder.add_edge(source(name), END)
    return builder


def _again(name: str, again: str, done: str) -> Any:
    async def route(state: dict[str, Any]) -> str:
        out = state.get(channel(name)) or {}
        return done if state.get("stop") or out.get("done", True) else again

    return route


def _branch(name: str, then: str, otherwise: str) -> Any:
    async def route(state: dict[str, Any]) -> str:
        if state.get("stop"):
            return END
        out = state.get(channel(name)) or {}
        return then if out.get("taken") == "then" else otherwise

    return route


def compile_graph(
    spec: GraphSpec, checkpointer: Any = None, *, spec_hash: str | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """``spec`` compiled, with an optional LangGraph checkpointer.

    Compiling costs milliseconds (LangGraph inspects every node function), so it happens once per spec (by
    ``spec_hash``, computed here unless the caller has it); each run gets a shallow copy bound to its checkpointer.
    """
    key = spec_hash or spec.spec_hash()
    with _compiled_lock:
        found = _compiled.get(key)
        if found is not None:
            _compiled.move_to_end(key)
    if found is None:
        try:
            found = build_state_graph(spec).compile()
        except ValueError as exc:  # LangGraph's own checks: a shape the spec's validation should have caught
            raise ConfigError(
                f"graph {spec.name!r} passed validation but LangGraph cannot build it: {exc} "
                "(a gap in agentmesh's spec checks: please report it with the spec)",
                graph=spec.name,
            ) from exc
        with _compiled_lock:
            _compiled[key] = found
            while len(_compiled) > COMPILED_KEPT:
                _compiled.popitem(last=False)
    return found.copy(update={"checkpointer": checkpointer})
