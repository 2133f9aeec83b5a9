"""``rounds``: layers of a team where each agent sees the previous layer's answers (debate, DyLAN, MoA).

The node runs one round per execution and asks to run again until its rounds are done or its stop policy holds,
so each round is a LangGraph step: checkpointed, and resumable without repeating a finished call.

Per agent slot ``i`` in round ``r`` the prompt gets ``round``, ``index``, ``own_previous`` (its own last answer
text, or ``None``) and ``previous``: the previous layer's active answers as ``{text, answer, value}`` (plus
``agent`` unless ``anonymize``), shuffled with a seed derived from (seed, round, slot) when ``shuffle``, and
without the agent's own unless ``include_self``. Activation ``parallel`` asks a layer at once; ``sequential``
asks one agent at a time in a seeded random order and checks the stop policy after each answer (fewer calls
when agreement comes early). A ``rank`` step before a round keeps only the top agents active.
"""

from __future__ import annotations

import random
from typing import Any

from agentmesh.runtime.budget import BudgetExhausted
from agentmesh.runtime.context import AgentAnswer
from agentmesh.runtime.operators.basic import gather_answers
from agentmesh.runtime.operators.registry import NodeOutput, NodeRun, get_function, operator
from agentmesh.runtime.stop import holds
from agentmesh.runtime.voting import agreement
from agentmesh.spec.operators import RoundsParams


def _rng(seed: int, round: int, slot: int) -> random.Random:
    return random.Random(f"{seed}:{round}:{slot}")


def _previous_for(p: RoundsParams, slot: int, round: int, layer: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shown = [a for a in layer if p.include_self or a["slot"] != slot]
    if p.shuffle:
        shown = shown[:]
        _rng(p.seed, round, slot).shuffle(shown)
    return [
        {
            "text": a["text"],
            "answer": a.get("key"),
            "value": a.get("value"),
            **({} if p.anonymize else {"agent": a["agent"]}),
        }
        for a in shown
    ]


@operator("rounds", params=RoundsParams)
async def rounds(run: NodeRun) -> NodeOutput:
    p = run.params
    assert isinstance(p, RoundsParams)
    own = run.own or {}
    round_no = int(own.get("round", 0)) + 1
    layer: list[dict[str, Any]] = list(own.get("answers") or [])
    active: list[int] = list(own.get("active", range(len(p.agents))))
    history: list[dict[str, Any]] = list(own.get("history") or [])

    if p.rank is not None and round_no == p.rank.before_round and len(active) > p.rank.keep:
        active, layer = await _rank(run, p, round_no, layer)

    own_previous = {a["slot"]: a["text"] for a in layer}

    def extra(slot: int) -> dict[str, Any]:
        return {
            "round": round_no,
            "index": slot,
            "previous": _previous_for(p, slot, round_no, layer) if round_no > 1 else [],
            "own_previous": own_previous.get(slot),
        }

    stop_reason: str | None = None
    if p.activation == "parallel":
        out = await gather_answers(run, [(p.agents[s], s, extra(s)) for s in active], round=round_no)
        answers = out["answers"]
        stop_reason = out.get("stopped")
    else:
        answers = []
        order = active[:]
        _rng(p.seed, round_no, -1).shuffle(order)
        for slot in order:
            card = run.ctx.spec.agents[p.agents[slot]]
            try:
                answer: AgentAnswer = await run.ctx.ask(
                    node=run.call_node,
                    agent=card.name,
                    slot=slot,
                    round=round_no,
                    variables=run.ctx.variables(run.outputs, card, extra(slot)),
                )
            except BudgetExhausted as exc:
                stop_reason = exc.reason
                break
            answers.append(answer.model_dump())
            if p.stop is not None:
                partial = {"answers": answers, "round": round_no}
                reason = holds(p.stop, partial, outputs=run.outputs, budget=run.ctx.budget, layer_size=len(order))
                if reason:
                    stop_reason = f"{reason} at round {round_no}"
                    break
        answers.sort(key=lambda a: a["slot"])

    key, count = agreement([a.get("key") for a in answers])
    history.append({"round": round_no, "keys": [a.get("key") for a in answers], "top": key, "agree": count})
    output: NodeOutput = {
        "round": round_no,
        "answers": answers,
        "active": [a["slot"] for a in answers] if stop_reason and p.activation == "sequential" else active,
        "history": history,
    }
    if stop_reason is None and p.stop is not None:
        reason = holds(p.stop, output, outputs=run.outputs, budget=run.ctx.budget)
        if reason:
            stop_reason = f"{reason} at round {round_no}"
    output["done"] = stop_reason is not None or round_no >= p.rounds
    if stop_reason:
        output["stop"] = stop_reason
    return output


async def _rank(
    run: NodeRun, p: RoundsParams, round_no: int, layer: list[dict[str, Any]]
) -> tuple[list[int], list[dict[str, Any]]]:
    """Keep the top ``rank.keep`` agents of the last layer; only their answers flow on."""
    assert p.rank is not None
    if p.rank.function:
        chosen = list(get_function(p.rank.function, node=run.name)(layer, p.rank.keep))
    else:
        assert p.rank.ranker is not None
        card = run.ctx.spec.agents[p.rank.ranker]
        candidates = [{"text": a["text"], "answer": a.get("key")} for a in layer]
        variables = run.ctx.variables(run.outputs, card, {"candidates": candidates, "keep": p.rank.keep})
        reply = await run.ctx.ask(
            node=run.call_node,
            agent=card.name,
            slot=len(p.agents),  # after the team's slots: unique call key in this round
            round=round_no,
            variables=variables,
            parse_params={"n": len(layer)},
        )
        chosen = [int(i) for i in reply.value] if isinstance(reply.value, list) else []
    indices = [i for i in dict.fromkeys(chosen) if 0 <= i < len(layer)][: p.rank.keep]
    kept = [layer[i] for i in indices]
    return [a["slot"] for a in kept], kept
