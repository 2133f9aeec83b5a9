"""The cost-versus-targets benchmark (alu.md §9.6): the paper's claim that ALU's time cost stays effectively
constant from 1 to 1000 targets.

For each N the target set holds the questions' own targets plus N minus their number of distractors (invented
names and descriptions unrelated to the questions); the same questions run through a graph (``alu``,
``alu_reference``, a baseline) against one model, and each row reports the mean wall time, prompt tokens, calls
and shortlist size per query, with their ratio to the first N. The set is registered in-process (or, with
``in_store``, written to the run's store, where ``op: alu`` reads and pins it) and passed by name
(``target_set``), so the runs' stored inputs stay small whatever N is; only the graph's own work varies.
Target: ``alu`` within ±10 % from N = 1 to 1000 on wall time and prompt tokens; ``alu_reference`` grows (its
prompts carry the whole list).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentmesh.systems.alu.registry import TargetSet, register_target_set, unregister_target_set
from agentmesh.systems.alu.targets import Target

__all__ = ["cost_versus_targets", "distractor_targets", "format_rows"]

_FIRST = [
    "Aurelio",
    "Brisa",
    "Casimir",
    "Delphine",
    "Eskil",
    "Fenna",
    "Goran",
    "Hilde",
    "Ilario",
    "Jorunn",
    "Kasimir",
    "Liora",
    "Marit",
    "Nikanor",
]
_LAST = [
    "Vantreck",
    "Holmqvar",
    "Duskerby",
    "Marrowind",
    "Quellstad",
    "Brannoch",
    "Estervik",
    "Lindgarth",
    "Orvaldsen",
    "Pemberlow",
]
_CRAFT = (
    "glassblower",
    "cartographer of river deltas",
    "luthier",
    "beekeeper",
    "tapestry weaver",
    "clockmaker",
    "salt-marsh ecologist",
    "bookbinder",
)


def distractor_targets(n: int, *, start_id: int = 1_000_000, seed: int = 0) -> list[Target]:
    """``n`` invented people with invented crafts and places (reproducible with ``seed``), ids from ``start_id``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}-{i}"
        craft = rng.choice(_CRAFT)
        out.append(Target(start_id + i, name, (), f"Invented {craft} from the village of Norr-{i % 97}."))
    return out


async def cost_versus_targets(
    questions: Sequence[str],
    targets: Sequence[Target],
    ns: Sequence[int] = (1, 10, 100, 1000),
    *,
    graph: str | Path = "alu",
    model: Any = None,
    store: Any = None,
    seed: int = 0,
    as_list: bool = False,
    in_store: bool = False,
    warmup: int = 0,
) -> list[dict[str, Any]]:
    """One row per N: mean wall seconds, prompt tokens, calls and |S| per query, and ratios to the first row.

    ``as_list`` passes the targets as the ``targets`` input (records) instead of a registered set's name, the way
    a caller with the list in hand gives it (every graph takes either). ``in_store`` writes each N's set to ``store`` (a
    :class:`~agentmesh.store.Store`) as a new target set, which the runs then read from the store. ``warmup``
    untimed runs of the first question per N come first, so the rows show the steady per-query cost rather than
    the one-off work of a new set version (reading it, building its alias index and profile matrix).
    """
    from agentmesh.store import Store

    if in_store and not isinstance(store, Store):
        raise ValueError("in_store needs an open Store as store")
    from agentmesh.runtime import arun  # (the runtime is only needed when the bench runs)

    rows: list[dict[str, Any]] = []
    start = max((t.id for t in targets), default=0) + 1
    for n in ns:
        people = TargetSet(f"bench-{n}-{seed}-{time.monotonic_ns()}")
        people.add([*targets, *distractor_targets(max(0, n - len(targets)), start_id=start, seed=seed)])
        if in_store:
            store.add_targets(people.name, [t.to_json() for t in people.list()], create=True)
        else:
            register_target_set(people)
        records = [t.to_json() for t in people.list()] if as_list else []
        walls: list[float] = []
        tokens: list[int] = []
        calls: list[int] = []
        sizes: list[int] = []
        try:
            for question in list(questions[:1]) * warmup:
                given = {"targets": records} if as_list else {"target_set": people.name}
                await arun(graph, {"query": question, **given}, model=model, store=store)
            for question in questions:
                began = time.perf_counter()
                given = {"targets": records} if as_list else {"target_set": people.name}
                result = await arun(graph, {"query": question, **given}, model=model, store=store)
                walls.append(time.perf_counter() - began)
                tokens.append(result.prompt_tokens)
                calls.append(result.calls)
                outputs = result.outputs.values()
                alu = next((o.get("alu") for o in outputs if isinstance(o, dict) and "alu" in o), None)
                sizes.append(len((alu or {}).get("targets_in_prompts") or []))
        finally:
            unregister_target_set(people.name)
        k = max(1, len(questions))
        rows.append(
            {
                "n_targets": n,
                "wall_s": sum(walls) / k,
                "prompt_tokens": sum(tokens) / k,
                "calls": sum(calls) / k,
                "shortlist": sum(sizes) / k,
            }
        )
    base = rows[0] if rows else {}
    for row in rows:
        for key in ("wall_s", "prompt_tokens"):
            row[f"{key}_ratio"] = row[key] / base[key] if base.get(key) else None
    return rows


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    """A plain table of :func:`cost_versus_targets` rows."""
    lines = [f"{'N':>6} {'wall s':>9} {'x':>6} {'prompt tok':>11} {'x':>6} {'calls':>6} {'|S|':>5}"]
    for r in rows:
        wr = r.get("wall_s_ratio")
        tr = r.get("prompt_tokens_ratio")
        lines.append(
            f"{r['n_targets']:>6} {r['wall_s']:>9.3f} {'-' if wr is None else f'{wr:.2f}':>6} "
            f"{r['prompt_tokens']:>11.0f} {'-' if tr is None else f'{tr:.2f}':>6} {r['calls']:>6.1f} "
            f"{r['shortlist']:>5.1f}"
        )
    return "\n".join(lines)
