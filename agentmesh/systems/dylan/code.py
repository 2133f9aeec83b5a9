"""``dylan_code``: DyLAN's code-generation network (dylan.md §5): writer layers and judge layers alternate.

With ``rounds: 3`` the layers are W0, J1, W1, [listwise ranker], J2, W2 (the paper's t = 1..6). Writers write
the function; judges review every implementation of the writer layer before them, each in its way, and rate it:

- **Passer** (a tool, no model call): runs each implementation in the sandbox; 5 if it runs, else 0;
- **Tester** (one call): the model writes ``assert`` tests; each runs on each implementation in the sandbox;
  rating ceil(passed/total·5); the tests are kept to choose the final answer;
- **Reflector / Debugger / QualityManager** (one call): ``[reflection i]`` / ``[bug fix i]`` / ``[code review i]``
  per implementation and ``[[…]]`` ratings;
- **Ranker** (one call unless it has two implementations or fewer): picks the best two; 5 for those, 0 for the
  rest, and only those two are shown to the next writers.

A writer after the first sees the earlier implementations with every non-Ranker judge's feedback, rewrites the
function and rates the non-Ranker judges' helpfulness 1-5 (the Ranker judge gets a fixed raw 3). Early stopping
runs in writer layers 2 and later: among the implementations that run, reduced to their bodies, strictly more than
⌊2/3·|layer|⌋ BLEU-equivalent ones stop the run. The final answer is chosen by the collected tests (paper: among
every active writer node; ``reference_compat``: the first writer layer, max and max-1 tiers, dylan.md §8 D2), and
the Agent Importance Scores flow back from the last writers whose code runs, through judges and writers alike.

Each layer is one LangGraph step (checkpointed; a resumed run serves finished calls from the store). The output's
``history`` has the same shape as ``rounds``' (writers are slots 0..W-1, judges W..W+J-1), so the importance
function and the drawings read it unchanged.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from typing import Any, ClassVar, Literal

from pydantic import Field

from agentmesh.parsers.ratings import parse_dylan_ratings, parse_ranking
from agentmesh.runtime.budget import BudgetExhausted
from agentmesh.runtime.context import RunError
from agentmesh.runtime.operators import NodeRun, operator
from agentmesh.runtime.operators.registry import NodeOutput
from agentmesh.spec.operators import OperatorParams
from agentmesh.systems.dylan.code_tools import (
    bleu_equivalent,
    cut_def_question,
    extract_tests,
    most_frequent,
    run_tests,
    runs,
    tester_feedback,
    tester_rating,
)
from agentmesh.systems.dylan.importance import importance, trace_from_history

JudgeKind = Literal["passer", "tester", "reflector", "debugger", "quality_manager", "ranker"]
JUDGE_KINDS: tuple[str, ...] = ("passer", "tester", "reflector", "debugger", "quality_manager", "ranker")
#: How each judge's feedback is headed in a writer's prompt (dylan.md §5.3).
HEADERS = {
    "passer": "syntax check",
    "tester": "unit test results",
    "reflector": "reflection",
    "debugger": "bug fix",
    "quality_manager": "code review",
}
#: The raw score a writer is taken to give the Ranker judge (dylan.md §4.4).
RANKER_JUDGE_SCORE = 3


class DylanCodeParams(OperatorParams):
    """Writers and judges in alternating layers (dylan.md §5); a judge's kind is its card's ``role``."""

    writers: list[str] = Field(min_length=1)
    judges: list[str] = Field(min_length=1)
    rounds: int = Field(default=3, ge=1, description="Writer layers (judge layers sit between them).")
    ranker: str | None = Field(default=None, description="The listwise ranker before the last judge layer.")
    keep: int = Field(default=2, ge=1, description="Writers the listwise ranker keeps.")
    activation: Literal["parallel", "sequential"] = "sequential"
    activation_order: Literal["random", "fixed"] = "random"
    reference_compat: bool = Field(
        default=False,
        description="The released code: all writers stay visible after the ranker (picked by position), the "
        "Tester's all-pass under-count, and the final answer from the first writers only (dylan.md §8 D1, D2, D5).",
    )
    timeout_s: float = Field(default=5.0, gt=0, description="Per program run by the Passer and early stopping.")
    seed: int = 0
    provides: ClassVar[frozenset[str]] = frozenset({"round", "index", "impls", "n_judges"})
    repeats: ClassVar[bool] = True

    def agents_used(self) -> list[tuple[str, str]]:
        used = [(f"writers[{i}]", a) for i, a in enumerate(self.writers)]
        used += [(f"judges[{i}]", a) for i, a in enumerate(self.judges)]
        return used + ([("ranker", self.ranker)] if self.ranker else [])

    def provides_for(self, field_path: str) -> frozenset[str]:
        return frozenset({"candidates", "keep"}) if field_path == "ranker" else self.provides

    def team_fields(self) -> dict[str, list[str]]:
        # writers and judges sit in separate layers, each summing to 1: they are ranked separately (§4.3)
        return {"writers": list(self.writers), "judges": list(self.judges)}


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in (seed, *parts)))


@operator("dylan_code", params=DylanCodeParams)
async def dylan_code(run: NodeRun) -> NodeOutput:
    p = run.params
    assert isinstance(p, DylanCodeParams)
    kinds = _judge_kinds(run, p)
    own: dict[str, Any] = dict(run.own or {})
    layer = int(own.get("layer", 0))  # layers done so far
    state: dict[str, Any] = {
        "history": [dict(h) for h in own.get("history") or []],
        "writers_out": list(own.get("writers_out") or []),  # the last writer layer: slot, agent, text, code
        "judged": dict(own.get("judged") or {}),  # the last judge layer: feedback per writer slot, ranker pick
        "members": list(own.get("members") or range(len(p.writers))),
        "visible": own.get("visible"),  # writer slots the next judges see (None: all of the last layer)
        "tests": list(own.get("tests") or []),
        "pool": list(own.get("pool") or []),  # every writer node's code: the final answer's candidates
    }
    stop: str | None = None
    try:
        if layer % 2 == 0:
            stop = await _writer_layer(run, p, kinds, layer, state)
        else:
            await _judge_layer(run, p, kinds, layer, state)
    except BudgetExhausted as exc:
        stop = exc.reason
    layer += 1
    done = stop is not None or layer >= 2 * p.rounds - 1
    out: NodeOutput = {
        "layer": layer,
        "round": layer,
        "max_rounds": 2 * p.rounds - 1,
        "agents": [*p.writers, *p.judges],
        "writers": len(p.writers),
        **state,
        "done": done,
    }
    out["answers"] = [
        {"agent": w["agent"], "slot": w["slot"], "text": w["text"], "value": w["code"], "key": w.get("key")}
        for w in state["writers_out"]
    ]
    if stop:
        out["stop"] = stop
    if done:
        out.update(await _finish(run, p, state))
    return out


def _judge_kinds(run: NodeRun, p: DylanCodeParams) -> list[str]:
    kinds = []
    for name in p.judges:
        role = run.ctx.spec.agents[name].role
        if role not in JUDGE_KINDS:
            raise RunError(
                f"node {run.name!r}: judge {name!r} has role {role!r}; expected one of {', '.join(JUDGE_KINDS)} "
                "(the card's role says what kind of judge it is)",
                node=run.name,
            )
        kinds.append(role)
    return kinds


def _inputs(run: NodeRun) -> tuple[str, str]:
    prompt, entry = run.ctx.inputs.get("prompt"), run.ctx.inputs.get("entry_point")
    if not isinstance(prompt, str) or not isinstance(entry, str):
        raise RunError(
            f"node {run.name!r}: dylan_code needs the inputs 'prompt' (the function's signature and docstring) and "
            "'entry_point' (its name), as HumanEval items give them",
            node=run.name,
        )
    return prompt, entry


# --- writers ---------------------------------------------------------------------------------------------------


def _impls_for_writers(p: DylanCodeParams, kinds: list[str], state: dict[str, Any]) -> list[dict[str, Any]]:
    """The earlier implementations a writer sees, each with every non-Ranker judge's feedback on it."""
    judged = state["judged"]
    pick = judged.get("ranker_pick")
    shown = [w for w in state["writers_out"] if str(w["slot"]) in judged.get("feedback", {})]
    if pick is not None:
        shown = [w for w in shown if w["slot"] in pick]
    impls = []
    for i, w in enumerate(shown, start=1):
        feedback = [
            {"header": f"{HEADERS[f['kind']]} {i}", "text": f["text"]}
            for f in judged["feedback"][str(w["slot"])]
            if f["kind"] != "ranker"
        ]
        impls.append({"index": i, "slot": w["slot"], "code": w["code"], "feedback": feedback})
    return impls


async def _writer_layer(
    run: NodeRun, p: DylanCodeParams, kinds: list[str], layer: int, state: dict[str, Any]
) -> str | None:
    prompt, entry = _inputs(run)
    round_no = layer // 2 + 1
    impls = _impls_for_writers(p, kinds, state) if layer else []
    judge_layer = state["history"][-1] if layer else None
    judge_slots = [n["slot"] for n in judge_layer["nodes"]] if judge_layer else []
    n_rated = sum(1 for s in judge_slots if kinds[s - len(p.writers)] != "ranker")
    order = list(state["members"])
    if p.activation == "sequential" and p.activation_order == "random":
        _rng(p.seed, layer, "order").shuffle(order)
    done: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    stop: str | None = None
    runnable: dict[str, bool] = {}

    async def one(slot: int) -> None:
        card = run.ctx.spec.agents[p.writers[slot]]
        extra = {"round": round_no, "index": slot, "impls": impls, "n_judges": n_rated}
        answer = await run.ctx.ask(
            node=run.call_node,
            agent=card.name,
            slot=slot,
            round=layer + 1,
            variables=run.ctx.variables(run.outputs, card, extra),
            parse_params={"prompt": prompt} if "prompt" in card.parser.parser.call_params else None,
        )
        code = answer.value if isinstance(answer.value, str) else answer.text
        done.append({"slot": slot, "agent": card.name, "text": answer.text, "code": code})
        nodes.append(
            {
                "slot": slot,
                "agent": card.name,
                "key": None,  # code is no vote key (importance credits the writers whose code runs)
                "label": "code",  # what pictures show instead of "no answer": it wrote an implementation
                "seen": judge_slots,
                "ratings": _writer_ratings(answer.text, judge_slots, kinds, p) if judge_slots else None,
            }
        )

    async def consensus() -> str | None:
        if round_no < 2:  # not in the first writer layer: every agent takes part (dylan.md §3.1)
            return None
        bodies = []
        for w in done:
            if w["code"] not in runnable:
                runnable[w["code"]] = (await runs(w["code"], timeout_s=p.timeout_s))[0]
            if runnable[w["code"]]:
                bodies.append(cut_def_question(w["code"], entry))
        _, count = most_frequent(bodies, bleu_equivalent)
        needed = math.floor(2 * len(order) / 3)
        if count > needed:
            return f"consensus ({count} of {len(order)} equivalent implementations) at writer layer {round_no}"
        return None

    if p.activation == "parallel":
        results = await asyncio.gather(*(one(s) for s in order), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        stop = await consensus()
    else:
        for slot in order:
            await one(slot)
            stop = await consensus()
            if stop:
                break
    state["writers_out"] = sorted(done, key=lambda w: order.index(w["slot"]))
    state["pool"] += [{"layer": layer, "slot": w["slot"], "code": w["code"]} for w in done]
    state["history"].append(
        {
            "round": layer + 1,
            "kind": "writers",
            "members": sorted(state["members"]),
            "order": order,
            "nodes": sorted(nodes, key=lambda n: order.index(n["slot"])),
            "ranked": None,
        }
    )
    state["visible"] = None
    if stop is None and p.ranker and layer == 2 * p.rounds - 4 and len(state["members"]) > p.keep:
        await _listwise_rank(run, p, layer, state)
    return stop


def _writer_ratings(text: str, judge_slots: list[int], kinds: list[str], p: DylanCodeParams) -> list[int] | None:
    """A writer's raw ratings of the judges in order: its ``[[…]]`` for the non-Ranker ones, 3 for the Ranker."""
    rated = [s for s in judge_slots if kinds[s - len(p.writers)] != "ranker"]
    parsed = parse_dylan_ratings(text, max(len(rated), 1), non_integer="invalidate")
    if parsed.status != "ok" or parsed.ratings is None or not rated:
        return None
    scores = iter(parsed.ratings)
    return [RANKER_JUDGE_SCORE if kinds[s - len(p.writers)] == "ranker" else next(scores) for s in judge_slots]


async def _listwise_rank(run: NodeRun, p: DylanCodeParams, layer: int, state: dict[str, Any]) -> None:
    """Before the last judge layer: keep the best ``keep`` writers (dylan.md §5.4, the paper's reformation)."""
    assert p.ranker is not None
    written = sorted(state["writers_out"], key=lambda w: w["slot"])
    shown = written[:]
    _rng(p.seed, layer, "rank").shuffle(shown)
    card = run.ctx.spec.agents[p.ranker]
    candidates = [{"text": w["code"], "answer": None} for w in shown]
    reply = await run.ctx.ask(
        node=run.call_node,
        agent=card.name,
        slot=len(p.writers) + len(p.judges),
        round=layer + 1,
        variables=run.ctx.variables(run.outputs, card, {"candidates": candidates, "keep": p.keep}),
        parse_params={"n": len(shown)},
    )
    picks = [int(i) for i in reply.value] if isinstance(reply.value, list) else []
    indices = [i for i in dict.fromkeys(picks) if 0 <= i < len(shown)][: p.keep] or list(range(p.keep))
    kept = [shown[i]["slot"] for i in indices]
    ranked: dict[str, Any] = {"kept": kept, "shown": [w["slot"] for w in shown], "by": card.name}
    if p.reference_compat:  # positions in a shuffled list pick the next writers; all stay visible
        pool = [w["slot"] for w in written]
        _rng(p.seed, layer, "positions").shuffle(pool)
        state["members"] = [pool[i] for i in indices]
        ranked["members"], ranked["reference_compat"] = state["members"], True
    else:
        state["members"] = kept
        state["visible"] = kept
    state["history"][-1]["ranked"] = ranked


# --- judges ----------------------------------------------------------------------------------------------------


async def _judge_layer(run: NodeRun, p: DylanCodeParams, kinds: list[str], layer: int, state: dict[str, Any]) -> None:
    _inputs(run)
    visible = state["visible"]
    written = sorted(state["writers_out"], key=lambda w: w["slot"])
    shown = [w for w in written if visible is None or w["slot"] in visible]
    impls = [{"index": i, "slot": w["slot"], "code": w["code"], "feedback": []} for i, w in enumerate(shown, 1)]
    base = len(p.writers)

    async def one(j: int) -> tuple[dict[str, Any], dict[str, str], list[str], list[int] | None]:
        kind, card = kinds[j], run.ctx.spec.agents[p.judges[j]]
        extra = {"round": layer // 2 + 1, "index": base + j, "impls": impls, "n_judges": len(impls)}
        variables = run.ctx.variables(run.outputs, card, extra)
        feedback: dict[str, str] = {}
        tests: list[str] = []
        pick: list[int] | None = None

        async def ask() -> str:
            reply = await run.ctx.ask(
                node=run.call_node, agent=card.name, slot=base + j, round=layer + 1, variables=variables
            )
            return reply.text

        ratings: list[int] | None
        if kind == "passer":
            checks = await asyncio.gather(*(runs(w["code"], timeout_s=p.timeout_s) for w in shown))
            ratings = [5 if ok else 0 for ok, _ in checks]
            for w, (ok, why) in zip(shown, checks, strict=True):
                feedback[str(w["slot"])] = (
                    "The code doesn't have syntax error." if ok else f"The code has syntax error: {why}"
                )
        elif kind == "tester":
            tests = extract_tests(await ask())
            outcomes = await asyncio.gather(*(run_tests(w["code"], tests) for w in shown))
            ratings = [tester_rating(o, reference_compat=p.reference_compat) for o in outcomes]
            for w, o in zip(shown, outcomes, strict=True):
                feedback[str(w["slot"])] = tester_feedback(o)
        elif kind == "ranker":
            if len(shown) <= 2:  # nothing to choose: the reference returns [1, 2] without a call
                chosen = list(range(len(shown)))
            else:
                chosen, _ = parse_ranking(await ask(), len(shown), k=2, max_label=9, seed=p.seed)
            pick = [shown[i]["slot"] for i in chosen]
            ratings = [5 if w["slot"] in pick else 0 for w in shown]
            for w in shown:
                feedback[str(w["slot"])] = "chosen" if w["slot"] in pick else "not chosen"
        else:
            reply_text = await ask()
            sections = _sections(reply_text, HEADERS[kind], len(shown))
            for w, section in zip(shown, sections, strict=True):
                feedback[str(w["slot"])] = section or f"No {HEADERS[kind]}"
            parsed = parse_dylan_ratings(reply_text, len(shown), non_integer="invalidate")
            ratings = parsed.ratings if parsed.status == "ok" and parsed.ratings is not None else None
        node = {
            "slot": base + j,
            "agent": card.name,
            "key": None,
            "label": HEADERS.get(kind, "ranking"),  # what it gave the writers: shown instead of "no answer"
            "seen": [w["slot"] for w in shown],
        }
        return {**node, "ratings": ratings}, feedback, tests, pick

    results = await asyncio.gather(*(one(j) for j in range(len(p.judges))))
    by_writer: dict[str, list[dict[str, str]]] = {str(w["slot"]): [] for w in shown}
    ranker_pick: list[int] | None = None
    for j, (_, feedback, tests, pick) in enumerate(results):
        for slot, text in feedback.items():
            by_writer[slot].append({"kind": kinds[j], "text": text})
        state["tests"] += [t for t in tests if t not in state["tests"]]
        ranker_pick = pick if pick is not None else ranker_pick
    state["judged"] = {"feedback": by_writer, "ranker_pick": ranker_pick}
    order = [base + j for j in range(len(p.judges))]
    state["history"].append(
        {
            "round": layer + 1,
            "kind": "judges",
            "members": order,
            "order": order,
            "nodes": [r[0] for r in results],
            "ranked": None,
        }
    )


def _sections(text: str, header: str, n: int) -> list[str | None]:
    """``[reflection i]`` (or ``[bug fix i]``, ``[code review i]``) sections of a judge's reply, by position."""
    pattern = re.compile(r"\[" + re.escape(header) + r"\s*(\d+)\]:?", re.IGNORECASE)
    marks = list(pattern.finditer(text))
    out: list[str | None] = [None] * n
    for k, mark in enumerate(marks):
        i = int(mark.group(1)) - 1
        end = marks[k + 1].start() if k + 1 < len(marks) else len(text)
        body = re.split(r"\[\[", text[mark.end() : end])[0].strip()
        if 0 <= i < n and body:
            out[i] = body
    return out


# --- the end ---------------------------------------------------------------------------------------------------


async def _finish(run: NodeRun, p: DylanCodeParams, state: dict[str, Any]) -> dict[str, Any]:
    """The final answer by the collected tests, and the Agent Importance Scores of the run."""
    prompt, _ = _inputs(run)
    history = state["history"]
    pruned: set[tuple[int, int]] = set()
    for entry in history:
        ranked = entry.get("ranked")
        if ranked and not ranked.get("reference_compat"):
            pruned |= {(entry["round"], n["slot"]) for n in entry["nodes"] if n["slot"] not in ranked["kept"]}
    pool = [c for c in state["pool"] if (c["layer"] + 1, c["slot"]) not in pruned]
    if p.reference_compat:
        pool = [c for c in pool if c["layer"] == 0]
    tests = state["tests"]
    counts = await asyncio.gather(*(run_tests(c["code"], tests) for c in pool))
    passed = [sum(o.passed for o in outcome) for outcome in counts]
    rng = _rng(p.seed, "final")
    best = max(passed, default=0)
    if p.reference_compat:
        tier = [c for c, n in zip(pool, passed, strict=True) if n == best]
        if len(tier) < 5:
            tier += [c for c, n in zip(pool, passed, strict=True) if n == best - 1]
    else:
        tier = [c for c, n in zip(pool, passed, strict=True) if n == best][:5]
    chosen = rng.choice(tier) if tier else None

    last = next(h for h in reversed(history) if h["kind"] == "writers")
    credited = []
    for node in last["nodes"]:
        code = next(w["code"] for w in state["writers_out"] if w["slot"] == node["slot"])
        if (await runs(prompt + code, timeout_s=p.timeout_s))[0]:
            credited.append(node["slot"])
    trace = trace_from_history(history, [*p.writers, *p.judges], layers=2 * p.rounds - 1)
    scores = importance(trace, None, credited=credited)
    result = scores.to_json()
    result["groups"] = {"writers": list(trace.agents[: len(p.writers)]), "judges": list(trace.agents[len(p.writers) :])}
    return {
        "answer": chosen["code"] if chosen else None,
        "value": chosen["code"] if chosen else None,
        "text": chosen["code"] if chosen else None,
        "chosen": {"layer": chosen["layer"] + 1, "slot": chosen["slot"]} if chosen else None,
        "tests_passed": {f"{c['layer'] + 1},{c['slot']}": n for c, n in zip(pool, passed, strict=True)},
        "importance": result,
    }
