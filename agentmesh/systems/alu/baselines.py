"""The baselines ALU is compared with (alu.md §9.4), on the same operators: ``graphs/alu_prompt_guard.yaml``
(the target model told the whole target list), ``graphs/alu_output_filter.yaml`` (the vanilla answer replaced by
the refusal when a target has a lexical hit: this module's ``alu_output_filter`` function) and
``graphs/alu_icul.yaml`` (in-context unlearning: :func:`icul_demonstrations` builds its demonstrations).
The prompt guard's and ICUL's prompts grow with the number of targets and items, which is the point of the
comparison (§9.6).

The prompt guard and the output filter take their targets as ALU does, from the same inputs: ``target_set``
naming a set in the run's store (read at its current version and pinned for the node, so a resume or a replay
of the run reads that version whatever the set became since), else a set registered in this process or a JSONL
file, else ``targets`` (records or names). They are functions, so they reach the run's store through the
:class:`~agentmesh.runtime.operators.registry.FunctionContext` their ``ctx`` parameter asks for. The prompt
guard's list comes from a node of its own (``alu_targets``) that its card's prompt reads, since a ``call`` node's
prompt can only read inputs and node outputs.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from agentmesh.errors import ConfigError
from agentmesh.runtime.operators.registry import FunctionContext, register_function
from agentmesh.systems.alu.items import QAItem
from agentmesh.systems.alu.node import read_targets, snapshot_from_input
from agentmesh.systems.alu.pipeline import DEFAULT_REFUSAL
from agentmesh.systems.alu.targets import DEFAULT_MIN_ALIAS_LEN, TargetSnapshot

__all__ = ["alu_output_filter", "alu_targets", "icul_demonstrations"]


async def _targets(
    function: str,
    inputs: Mapping[str, Any],
    ctx: FunctionContext | None,
    min_alias_len: int,
    targets_from: str,
    target_set_from: str,
) -> TargetSnapshot:
    """The targets the inputs give, read as ``op: alu`` reads them (a non-empty ``target_set_from`` wins).

    Without a context (the function called from Python rather than by a graph) no store is read."""
    source = inputs.get(target_set_from) or inputs.get(targets_from)
    if source is None:
        raise ConfigError(
            f"{function}: no targets: give the input {targets_from!r} (records or names) or {target_set_from!r} "
            "(a target set in the run's store or this process, or a JSONL file)"
        )
    if ctx is None:
        return snapshot_from_input(source, min_alias_len, store_read=False)
    return await read_targets(ctx.store, ctx.run_id, ctx.call_node, source, min_alias_len)


def _target_set(snapshot: TargetSnapshot) -> dict[str, Any]:
    """The set a node read, as ``op: alu`` records it (``alu.target_set``): a stored set's name and the version
    pinned for the run, or ``inputs:<digest>`` version 1 for targets given inline."""
    return {"name": snapshot.name, "version": snapshot.version}


@register_function("alu_targets")
async def alu_targets(
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    *,
    ctx: FunctionContext | None = None,
    min_alias_len: int = DEFAULT_MIN_ALIAS_LEN,
    targets_from: str = "targets",
    target_set_from: str = "target_set",
) -> dict[str, Any]:
    """The targets of the run as records (``targets``, in the set's order) with the set read (``target_set``):
    what the prompt guard's card lists (``nodes.<this node>.targets``). A stored set is pinned for this node."""
    snapshot = await _targets("alu_targets", inputs, ctx, min_alias_len, targets_from, target_set_from)
    return {"targets": [t.to_json() for t in snapshot.targets], "target_set": _target_set(snapshot)}


@register_function("alu_output_filter")
async def alu_output_filter(
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    *,
    ctx: FunctionContext | None = None,
    source: str = "vanilla",
    refusal_text: str = DEFAULT_REFUSAL,
    min_alias_len: int = DEFAULT_MIN_ALIAS_LEN,
    targets_from: str = "targets",
    target_set_from: str = "target_set",
) -> dict[str, Any]:
    """The ``output_filter`` baseline: node ``source``'s answer, or the refusal when any target occurs in it
    (whole-word lexical hit, §3.2). Catches names only: a masked reference passes, which is what the baseline
    is there to show. A stored set is pinned for this node; ``target_set`` says which set and version it read."""
    answer = outputs.get(source, {}).get("text")
    if answer is None:
        raise ConfigError(f"alu_output_filter: node {source!r} has no text answer (argument 'source')", node=source)
    snapshot = await _targets("alu_output_filter", inputs, ctx, min_alias_len, targets_from, target_set_from)
    hits = snapshot.index_for(min_alias_len).hits(str(answer))
    final = refusal_text if hits else str(answer)
    return {
        "answer": final,
        "text": final,
        "value": final,
        "hits": hits,
        "filtered": bool(hits),
        "target_set": _target_set(snapshot),
    }


def icul_demonstrations(items: Sequence[QAItem], *, seed: int = 0, limit: int | None = None) -> list[dict[str, str]]:
    """ICUL's demonstrations (Pawelczyk et al.): forget questions with wrong answers (another forget item's
    answer, a seeded derangement) and retain questions with their right answers, shuffled with ``seed``.

    ``limit`` caps the number of demonstrations (all by default: the context grows with the number of items,
    which is ICUL's cost in the comparison).
    """
    rng = random.Random(seed)
    forget = [i for i in items if i.split == "forget"]
    retain = [i for i in items if i.split == "retain"]
    wrong = [i.answer for i in forget]
    if len(forget) > 1:
        shift = rng.randrange(1, len(forget))  # a rotation by a non-zero step moves every answer
        wrong = wrong[shift:] + wrong[:shift]
    demos = [{"question": i.question, "answer": w} for i, w in zip(forget, wrong, strict=True)]
    demos += [{"question": i.question, "answer": i.answer} for i in retain]
    rng.shuffle(demos)
    return demos if limit is None else demos[:limit]
