"""``rounds``: layers of a team where each agent sees the previous layer's answers (debate, DyLAN, MoA).

The node runs one round per execution and asks to run again until its rounds are done or its stop policy holds,
so each round is a LangGraph step: checkpointed, and resumable without repeating a finished call.

Per agent slot ``i`` in round ``r`` the prompt gets ``round``, ``index``, ``own_previous`` (its own last answer
text, or ``None``) and ``previous``: the previous layer's active answers as ``{text, answer, value}`` (plus
``agent`` unless ``anonymize``), shuffled with a seed derived from (seed, round, slot) when ``shuffle``, and
without the agent's own unless ``include_self``. Activation ``parallel`` asks a layer at once; ``sequential``
asks one agent at a time (seeded random or slot order) and checks the stop policy after each answer, so later
calls of a layer are skipped once the layer agrees. A ``rank`` step before a round keeps only the top agents.
When the run's budget ends a round part-way, the node ends with the answers that round got; when it ends one
before any of its calls, with the previous round's answers (``round`` is still the round it stopped in).

The node's final output has ``history``, the run's network, one entry per round: who was a member, in which
order they were activated, what each node answered, which previous nodes it was shown (``seen``, in the order
shown) and how it rated them (``ratings``, when ``ratings`` is set), and which agents a rank step kept. DyLAN's
Agent Importance Scores (:mod:`agentmesh.systems.dylan`) and the network drawings read it. While the rounds run,
the state holds only the latest round's entry (``network``), which every round's ``node_result`` event records;
the history is gathered from those events once, when the node is done. So a round writes state of constant size
and storage grows linearly with the rounds, not quadratically.
"""

from __future__ import annotations

import random
from typing import Any

from agentmesh._text import counted
from agentmesh.parsers.ratings import parse_dylan_ratings
from agentmesh.runtime.budget import BudgetExhausted
from agentmesh.runtime.context import AgentAnswer
from agentmesh.runtime.operators.basic import gather_answers, ranking_picks
from agentmesh.runtime.operators.registry import NodeOutput, NodeRun, operator
from agentmesh.runtime.stop import holds
from agentmesh.runtime.voting import agreement
from agentmesh.spec.operators import RoundsParams


def _rng(seed: int, round: int, slot: int | str) -> random.Random:
    return random.Random(f"{seed}:{round}:{slot}")


def _shown(p: RoundsParams, slot: int, round: int, layer: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The previous answers agent ``slot`` sees in ``round``, in the order it sees them."""
    shown = [a for a in layer if p.include_self or a["slot"] != slot]
    if p.shuffle:
        shown = shown[:]
        _rng(p.seed, round, slot).shuffle(shown)
    return shown


def _as_previous(p: RoundsParams, shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
    ranked: dict[str, Any] | None = None

    if p.rank is not None and round_no == p.rank.before_round and len(active) >= _rank_threshold(p):
        active, layer, ranked = await _rank(run, p, round_no, layer)
        if p.rank.stop_if_agree and p.stop is not None:
            kept = [a for a in layer if a["slot"] in active]
            reason = holds(p.stop, _stop_view(p, {"answers": kept}), outputs=run.outputs, budget=run.ctx.budget)
            if reason:
                return {
                    "round": round_no - 1,
                    "max_rounds": p.rounds,
                    "agents": list(p.agents),
                    "answers": kept,
                    "active": active,
                    "history": await _history(run, [], ranked_last=ranked),
                    "done": True,
                    "stop": f"{reason} among the ranked answers before round {round_no}",
                }

    own_previous = {a["slot"]: a["text"] for a in layer}
    seen: dict[int, list[int]] = {}

    def extra(slot: int) -> dict[str, Any]:
        shown = _shown(p, slot, round_no, layer) if round_no > 1 else []
        seen[slot] = [a["slot"] for a in shown]
        return {
            "round": round_no,
            "index": slot,
            "previous": _as_previous(p, shown),
            "own_previous": own_previous.get(slot),
        }

    # slot order, whatever order a rank step kept them in: the released code walks its nodes in order and activates
    # those selected (dylan.md §7 ran it so), so a tied vote after the ranker goes to the lowest slot, not to the
    # ranker's first pick
    order = sorted(active)
    if p.activation == "sequential" and p.activation_order == "random":
        _rng(p.seed, round_no, -1).shuffle(order)
    stop_reason: str | None = None
    held: str | None = None  # the stop policy held only when the last round had run whole: it ended nothing
    if p.activation == "parallel":
        out = await gather_answers(run, [(p.agents[s], s, extra(s)) for s in order], round=round_no)
        answers = out["answers"]
        stop_reason = out.get("stopped")
    else:
        answers = []
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
                partial = _stop_view(p, {"answers": answers, "round": round_no})
                reason = holds(p.stop, partial, outputs=run.outputs, budget=run.ctx.budget, layer_size=len(order))
                if reason and round_no >= p.rounds and len(answers) == len(order):
                    held = reason
                elif reason:
                    stop_reason = f"{reason} at round {round_no}"
                    break
    # answers stay in activation order: a tied vote goes to the answer given first (DyLAN's most_frequent)
    standing = answers
    if not answers and stop_reason is not None and layer:
        # The budget cut this round before any of its calls: the previous round's answers are still the node's
        # best. Its output held none, so the vote after it and the run's "best answer so far" were both None.
        standing = layer

    nodes = [_node_record(p, a, seen.get(a["slot"], [])) for a in answers]
    key, count = agreement([a.get("key") for a in answers])
    entry = {
        "round": round_no,
        "members": sorted(active),
        "order": order,
        "nodes": nodes,
        "ranked": None,
        "rank_before": ranked,  # the rank step before this round, which pruned the previous round
        "top": key,
        "agree": count,
    }
    output: NodeOutput = {
        "round": round_no,
        "max_rounds": p.rounds,
        "agents": list(p.agents),
        "answers": standing,
        "active": [a["slot"] for a in standing] if stop_reason and p.activation == "sequential" else active,
        "network": entry,
    }
    if stop_reason is None and held is None and p.stop is not None:
        held = holds(p.stop, _stop_view(p, output), outputs=run.outputs, budget=run.ctx.budget)
        if held and round_no < p.rounds:
            stop_reason, held = f"{held} at round {round_no}", None
    if held:
        # not the node's stop (it ran every round it would have run without the policy), nor the run's: said apart
        output["stop_held"] = (
            f"its stop policy, {held}, held only at round {round_no}, its last: it ran all {counted(p.rounds, 'round')}"
        )
    output["done"] = stop_reason is not None or round_no >= p.rounds
    if stop_reason:
        output["stop"] = stop_reason
    if output["done"]:
        output["history"] = await _history(run, [entry])
    return output


_NO_ANSWER = "\x00no answer"
"""The key an unparsable answer agrees under with ``reference_compat`` (a key no parser produces)."""


def _stop_view(p: RoundsParams, output: NodeOutput) -> NodeOutput:
    """``output`` as the stop policy sees it. With ``reference_compat``, answers nobody could parse agree with each
    other, as in DyLAN's released code (``None == None``: agents that all fail to give a letter stop the run with no
    answer; dylan.md §3.2, D5); otherwise an unparsable answer agrees with nothing. Agents that have not answered
    yet (a sequential layer's rest) never agree either way."""
    if not p.reference_compat:
        return output
    answers = [a if a.get("key") is not None else {**a, "key": _NO_ANSWER} for a in output.get("answers") or []]
    return {**output, "answers": answers}


async def _history(
    run: NodeRun, current: list[dict[str, Any]], *, ranked_last: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The whole network: the earlier rounds' entries from this node's ``node_result`` events, then ``current``.

    A rank step is recorded with the round after it (``rank_before``); here it moves onto the round it pruned
    (``ranked``), or onto the last round when the run stopped right after ranking (``ranked_last``).
    """
    by_round = {int(e["round"]): dict(e) for e in await run.ctx.node_networks(run.name)}
    by_round.update({int(e["round"]): dict(e) for e in current})
    history = [by_round[r] for r in sorted(by_round)]
    for i, entry in enumerate(history):
        before = entry.pop("rank_before", None)
        if before and i > 0:
            history[i - 1]["ranked"] = before
    if ranked_last and history:
        history[-1]["ranked"] = ranked_last
    return history


def _rank_threshold(p: RoundsParams) -> int:
    assert p.rank is not None
    return p.rank.min_active if p.rank.min_active is not None else p.rank.keep + 1


def _node_record(p: RoundsParams, answer: dict[str, Any], seen: list[int]) -> dict[str, Any]:
    """One node of the network: what it answered, which previous nodes it saw (in order) and how it rated them."""
    record: dict[str, Any] = {"slot": answer["slot"], "agent": answer["agent"], "key": answer.get("key"), "seen": seen}
    if p.ratings is not None and seen:
        parsed = parse_dylan_ratings(answer.get("text") or "", len(seen), non_integer=p.ratings.non_integer)
        record["ratings"] = parsed.ratings if parsed.status in ("ok", "partial") else None
        record["rating_status"] = parsed.status
    return record


async def _rank(
    run: NodeRun, p: RoundsParams, round_no: int, layer: list[dict[str, Any]]
) -> tuple[list[int], list[dict[str, Any]], dict[str, Any]]:
    """Rank the last layer and keep the top ``rank.keep``: the next members, the answers they see, the record.

    Paper semantics: only the kept agents go on and only their answers flow. ``reference_compat``: every answer
    stays visible and the kept indices pick agents by position in a (seeded) shuffled order (dylan.md §8 D1).
    """
    assert p.rank is not None
    ordered = sorted(layer, key=lambda a: a["slot"])
    shown = ordered[:]
    if p.rank.shuffle:
        _rng(p.seed, round_no, "rank").shuffle(shown)
    if p.rank.function:
        picks = await ranking_picks(p.rank.function, run.name, shown, p.rank.keep)
        by = p.rank.function
    else:
        assert p.rank.ranker is not None
        card = run.ctx.spec.agents[p.rank.ranker]
        candidates = [{"text": a["text"], "answer": a.get("key")} for a in shown]
        variables = run.ctx.variables(run.outputs, card, {"candidates": candidates, "keep": p.rank.keep})
        reply = await run.ctx.ask(
            node=run.call_node,
            agent=card.name,
            slot=len(p.agents),  # after the team's slots: unique call key in this round
            round=round_no,
            variables=variables,
            parse_params={"n": len(shown)},
        )
        picks = [int(i) for i in reply.value] if isinstance(reply.value, list) else []
        by = card.name
    indices = [i for i in dict.fromkeys(picks) if 0 <= i < len(shown)][: p.rank.keep]
    if not indices:  # a ranking function gave nothing usable: keep the first ones shown rather than nobody
        indices = list(range(min(p.rank.keep, len(shown))))
    kept_slots = [shown[i]["slot"] for i in indices]
    record: dict[str, Any] = {"kept": kept_slots, "shown": [a["slot"] for a in shown], "by": by}
    if p.reference_compat:
        # the released code: ranked positions index a freshly shuffled list of agents; nobody is deactivated
        pool = [a["slot"] for a in ordered]
        if p.activation_order == "random":
            _rng(p.seed, round_no, "positions").shuffle(pool)
        members = [pool[i] for i in indices]
        record["members"] = members
        record["reference_compat"] = True
        return members, layer, record
    return kept_slots, [a for a in layer if a["slot"] in kept_slots], record
