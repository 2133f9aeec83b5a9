"""The baselines ALU is compared with (alu.md §9.4), on the same operators: ``graphs/alu_prompt_guard.yaml``
(the target model told the whole target list), ``graphs/alu_output_filter.yaml`` (the vanilla answer replaced by
the refusal when a target has a lexical hit: this module's ``alu_output_filter`` function) and
``graphs/alu_icul.yaml`` (in-context unlearning: :func:`icul_demonstrations` builds its demonstrations).
The prompt guard's and ICUL's prompts grow with the number of targets and items, which is the point of the
comparison (§9.6).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from agentmesh.errors import ConfigError
from agentmesh.runtime.operators.registry import register_function
from agentmesh.systems.alu.evaluate import QAItem
from agentmesh.systems.alu.node import snapshot_from_input
from agentmesh.systems.alu.pipeline import DEFAULT_REFUSAL
from agentmesh.systems.alu.targets import DEFAULT_MIN_ALIAS_LEN

__all__ = ["alu_output_filter", "icul_demonstrations"]


@register_function("alu_output_filter")
def alu_output_filter(
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    *,
    source: str = "vanilla",
    refusal_text: str = DEFAULT_REFUSAL,
    min_alias_len: int = DEFAULT_MIN_ALIAS_LEN,
    targets_from: str = "targets",
    target_set_from: str = "target_set",
) -> dict[str, Any]:
    """The ``output_filter`` baseline: node ``source``'s answer, or the refusal when any target occurs in it
    (whole-word lexical hit, §3.2). Catches names only: a masked reference passes, which is what the baseline
    is there to show."""
    answer = outputs.get(source, {}).get("text")
    if answer is None:
        raise ConfigError(f"alu_output_filter: node {source!r} has no text answer (argument 'source')", node=source)
    targets = inputs.get(target_set_from) or inputs.get(targets_from)
    if targets is None:
        raise ConfigError(f"alu_output_filter: no input {targets_from!r} or {target_set_from!r} with the targets")
    snapshot = snapshot_from_input(targets, min_alias_len, store_read=False)  # a function has no store to read
    hits = snapshot.index_for(min_alias_len).hits(str(answer))
    final = refusal_text if hits else str(answer)
    return {"answer": final, "text": final, "value": final, "hits": hits, "filtered": bool(hits)}


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
