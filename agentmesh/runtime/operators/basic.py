"""The generic operators that are one step each: call, team, vote, score, rank, branch, loop, function."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Mapping
from numbers import Integral
from typing import Any

from agentmesh._text import counted
from agentmesh.errors import ConfigError
from agentmesh.runtime.budget import BudgetExhausted
from agentmesh.runtime.context import AgentAnswer, RunError
from agentmesh.runtime.operators.registry import (
    CONTEXT_PARAMETER,
    FunctionContext,
    NodeOutput,
    NodeRun,
    get_function,
    is_shipped,
    operator,
    reraise_named,
    takes_context,
)
from agentmesh.runtime.stop import holds
from agentmesh.runtime.voting import majority, tally
from agentmesh.spec.operators import (
    BranchParams,
    CallParams,
    FunctionParams,
    LoopParams,
    RankParams,
    ScoreParams,
    TeamParams,
    VoteParams,
)
from agentmesh.spec.templates import render
from agentmesh.store._redact import stored_state


async def gather_answers(run: NodeRun, calls: list[tuple[str, int, dict[str, Any]]], round: int = 0) -> NodeOutput:
    """Ask several agents concurrently: ``(agent, slot, extra variables)`` each.

    A call is recorded under its node, agent, ``round`` and slot, which is how a resume or a replay finds it again:
    each call of a node and round needs a slot of its own (two with one slot are refused, naming them; they ran,
    and then a replay served the first answer to both and stopped).

    When the budget runs out part-way, the answers that completed are kept and the output says why it stopped
    (``stopped``); calls that had started finish (their cost is already incurred and they are recorded).
    """
    ctx = run.ctx
    seen: set[tuple[str, int]] = set()
    for agent, slot, _ in calls:
        if (agent, slot) in seen:
            raise RunError(
                f"node {run.name!r}: operator {run.op!r} asks agent {agent!r} twice in slot {slot} of round {round}; "
                "each call of a node and round needs a slot of its own (what a resume or a replay finds it by)",
                node=run.name,
                operator=run.op,
            )
        seen.add((agent, slot))

    async def one(agent: str, slot: int, extra: dict[str, Any]) -> AgentAnswer | None:
        card = ctx.spec.agents.get(agent)
        variables = ctx.variables(run.outputs, card, extra) if card is not None else {}  # (ask names a missing one)
        try:
            return await ctx.ask(node=run.call_node, agent=agent, slot=slot, round=round, variables=variables)
        except BudgetExhausted:
            return None

    results = await asyncio.gather(*(one(a, s, e) for a, s, e in calls))
    answers = [r.model_dump() for r in results if r is not None]
    out: NodeOutput = {"answers": answers}
    if len(answers) < len(calls):
        out["stopped"] = ctx.budget.exhausted() or "budget"
    return out


def answer_of(answers: list[dict[str, Any]], weights: list[float] | None = None) -> dict[str, Any]:
    """Majority (or weighted) vote over answers: the winning key, a representative value and text, the tally."""
    keys = [a.get("key") for a in answers]
    winner = majority(keys, weights)
    chosen = next((a for a in answers if a.get("key") == winner), None)
    return {
        "answer": winner,
        "value": chosen.get("value") if chosen else None,
        "text": chosen.get("text") if chosen else None,
        "votes": tally(keys, weights),
    }


def storable(out: NodeOutput, node: str, who: str) -> NodeOutput:
    """``out``, a user's function's or operator's output, once a checkpoint can hold it; else a :class:`RunError`
    naming the node and who returned it. A value msgpack cannot write (an ``object()``, a class of the user's
    that is neither a pydantic model nor a dataclass) failed the run later, as "a checkpoint of thread '<run id>'
    could not be stored: TypeError: Type is not msgpack serializable: ...", naming neither."""
    # (imported here: the registries import this module, and graph validate must not import LangGraph)
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    try:
        JsonPlusSerializer(pickle_fallback=False).dumps_typed(out)
    except (TypeError, ValueError) as exc:
        raise RunError(
            f"node {node!r}: {who} returned a value a checkpoint cannot hold ({exc}); return JSON values (dict, "
            "list, str, number, bool, None), pydantic models or dataclasses",
            node=node,
        ) from exc
    return out


async def called(node: str, what: str, name: str, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """What the registered function ``name`` returns for ``args`` (awaited when it is ``async``). An exception it
    raises is named as :func:`~agentmesh.runtime.operators.registry.reraise_named` says (agentmesh's own and
    LangGraph's interrupts pass unchanged)."""
    try:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        reraise_named(exc, node=node, what=f"{what} {name!r}", function=name)
    return result


async def ranking_picks(name: str, node: str, answers: list[dict[str, Any]], keep: int) -> list[int]:
    """Call the registered ranking function ``name`` as ``fn(answers, keep)`` -- plain or ``async``, as the other
    functions a graph names may be -- and return the indices it picks. A result that is not a list of indices is
    refused naming the node and the function (it failed as ``'coroutine' object is not iterable`` or a bare
    ``TypeError`` otherwise)."""
    result = await called(node, "ranking function", name, get_function(name, node=node), answers, keep)
    if isinstance(result, str | bytes | Mapping) or not isinstance(result, Iterable):
        raise RunError(
            f"node {node!r}: ranking function {name!r} returned {type(result).__name__} {result!r:.80}; expected "
            f"a list of indices into the {counted(len(answers), 'answer')} it was given, best first",
            node=node,
            function=name,
        )
    picks = list(result)
    bad = [p for p in picks if isinstance(p, bool) or not isinstance(p, Integral)]  # (numpy's ints too)
    if bad:
        raise RunError(
            f"node {node!r}: ranking function {name!r} returned {picks!r:.80}; expected integer indices into the "
            f"{counted(len(answers), 'answer')} it was given, got {bad[0]!r}",
            node=node,
            function=name,
        )
    return [int(p) for p in picks]


@operator("call", params=CallParams)
async def call(run: NodeRun) -> NodeOutput:
    assert isinstance(run.params, CallParams)
    out = await gather_answers(run, [(run.params.agent, 0, {})])
    return {**out, **answer_of(out["answers"])}


@operator("team", params=TeamParams)
async def team(run: NodeRun) -> NodeOutput:
    assert isinstance(run.params, TeamParams)
    return await gather_answers(run, [(agent, i, {"index": i}) for i, agent in enumerate(run.params.agents)])


@operator("vote", params=VoteParams)
async def vote(run: NodeRun) -> NodeOutput:
    assert isinstance(run.params, VoteParams)
    answers = list(run.outputs.get(run.params.source, {}).get("answers") or [])
    weights = None
    if run.params.weights:
        scored = run.outputs.get(run.params.weights, {})
        by_slot = {a["slot"]: s for a, s in zip(scored.get("answers") or [], scored.get("scores") or [], strict=False)}
        weights = [float(by_slot.get(a["slot"]) or 0.0) for a in answers]
        if not any(weights):
            # no answer has a score (the judge's replies had none, or the scorer did not run): the first answer
            # seen won a tie of zeros however many agreed against it; the plain majority is what is known
            weights = None
    return {"answers": answers, **answer_of(answers, weights)}


@operator("score", params=ScoreParams)
async def score(run: NodeRun) -> NodeOutput:
    """Score each answer of ``from``: a judge agent (its parser gives the score) or a reward function."""
    p = run.params
    assert isinstance(p, ScoreParams)
    answers = list(run.outputs.get(p.source, {}).get("answers") or [])
    if p.function:
        fn = get_function(p.function, node=run.name)
        scores: list[float | None] = []
        for a in answers:
            value = await called(run.name, "score function", p.function, fn, a, run.ctx.inputs)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RunError(
                    f"node {run.name!r}: score function {p.function!r} returned {type(value).__name__} "
                    f"{value!r:.80} for answer {a.get('slot')} (agent {a.get('agent')!r}); expected a number",
                    node=run.name,
                    function=p.function,
                )
            scores.append(float(value))
        return {"answers": answers, "scores": scores}
    if not p.judge:
        raise ConfigError(f"node {run.name!r}: score needs 'judge' (an agent) or 'function'", node=run.name)
    judged = await gather_answers(
        run, [(p.judge, i, {"candidate": a.get("text"), "answer": a.get("key")}) for i, a in enumerate(answers)]
    )
    by_slot = {j["slot"]: j for j in judged["answers"]}
    scores = [_number(by_slot[i].get("value")) if i in by_slot else None for i in range(len(answers))]
    return {"answers": answers, "scores": scores, "judgements": judged["answers"], **_stopped(judged)}


@operator("rank", params=RankParams)
async def rank(run: NodeRun) -> NodeOutput:
    """Keep the top ``keep`` answers of ``from``: by a ranker agent (``ranking`` parser) or a function."""
    p = run.params
    assert isinstance(p, RankParams)
    answers = list(run.outputs.get(p.source, {}).get("answers") or [])
    if len(answers) <= p.keep:
        return {"answers": answers, "kept": list(range(len(answers)))}
    if p.function:
        chosen = await ranking_picks(p.function, run.name, answers, p.keep)
    elif p.ranker:
        card = run.ctx.spec.agents[p.ranker]
        variables = run.ctx.variables(run.outputs, card, {"candidates": answers, "keep": p.keep})
        reply = await run.ctx.ask(
            node=run.call_node, agent=p.ranker, slot=0, round=0, variables=variables, parse_params={"n": len(answers)}
        )
        chosen = [int(i) for i in reply.value or []] if isinstance(reply.value, list) else []
    else:
        raise ConfigError(f"node {run.name!r}: rank needs 'ranker' (an agent) or 'function'", node=run.name)
    chosen = [i for i in dict.fromkeys(chosen) if 0 <= i < len(answers)][: p.keep]
    return {"answers": [answers[i] for i in chosen], "kept": chosen}


@operator("branch", params=BranchParams)
async def branch(run: NodeRun) -> NodeOutput:
    """Evaluate the condition (a Jinja2 expression, or a template rendering to true/false) over inputs/nodes."""
    p = run.params
    assert isinstance(p, BranchParams)
    variables = {**run.ctx.inputs, "inputs": run.ctx.inputs, "nodes": run.outputs}
    try:
        rendered = render(p.condition_template(), variables).strip().lower()
    except Exception as exc:
        raise RunError(f"node {run.name!r}: branch condition failed: {exc}", node=run.name) from exc
    taken = rendered not in ("", "false", "0", "none", "no")
    return {"taken": "then" if taken else "else", "condition": rendered}


@operator("loop", params=LoopParams)
async def loop(run: NodeRun) -> NodeOutput:
    """The check of a loop: entered before the first iteration and after each; ``done`` ends the loop."""
    p = run.params
    assert isinstance(p, LoopParams)
    iteration = int((run.own or {}).get("iteration", -1)) + 1
    if iteration == 0:
        return {"iteration": 0, "round": 0, "done": False}
    last = run.outputs.get(p.body[-1], {})
    view = {**last, "round": iteration}
    reason = holds(p.until, view, outputs=run.outputs, budget=run.ctx.budget)
    if reason is None and iteration >= p.max_iterations:
        reason = f"max iterations ({p.max_iterations})"
    out: NodeOutput = {"iteration": iteration, "round": iteration, "done": reason is not None}
    if reason:
        out["stop"] = f"{reason} after iteration {iteration}"
    for key in ("answers", "answer", "value", "text", "scores"):
        if key in last:
            out[key] = last[key]
    return out


@operator("function", params=FunctionParams)
async def function(run: NodeRun) -> NodeOutput:
    """Call a registered function with (outputs, inputs, **args); it returns the node's output mapping. A function
    declaring a keyword-only ``ctx`` also gets the :class:`~agentmesh.runtime.operators.registry.FunctionContext`
    (the run's store and id, this node's name)."""
    p = run.params
    assert isinstance(p, FunctionParams)
    fn = get_function(p.function, node=run.name)
    # its args (and a ctx among them) were checked before the run, resume, fork or replay started
    # (registry.check_functions), in words naming the node's field, not at every call of the node
    args = dict(p.args)
    if takes_context(fn):
        args[CONTEXT_PARAMETER] = FunctionContext(run.ctx, run.name, run.call_node)
    result = await called(run.name, "function", p.function, fn, run.outputs, run.ctx.inputs, **args)
    if not isinstance(result, dict):
        raise RunError(
            f"node {run.name!r}: function {p.function!r} returned {type(result).__name__}; expected a dict",
            node=run.name,
        )
    if is_shipped(fn):
        return result
    # a user's function may return what no reply or input carried (a key it read): masked before state holds it
    return storable(stored_state(result), run.name, f"function {p.function!r}")


def _number(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def _stopped(out: NodeOutput) -> NodeOutput:
    return {"stopped": out["stopped"]} if "stopped" in out else {}
