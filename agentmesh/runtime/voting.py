"""Votes and agreement over normalised answers: pure functions, the maths behind ``vote`` and ``consensus``.

An answer's *key* is its parser's normalised form (``Parsed.normalized``); ``None`` means "no answer" and never
counts as agreement or wins a vote. Ties go to the answer seen first, so results do not depend on set order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from agentmesh.spec.stop import Consensus


def tally(keys: Sequence[str | None], weights: Sequence[float] | None = None) -> dict[str, float]:
    """Total weight per key, in first-seen order (``None`` keys skipped)."""
    if weights is not None and len(weights) != len(keys):
        raise ValueError(f"{len(keys)} answers but {len(weights)} weights")
    totals: dict[str, float] = {}
    for i, key in enumerate(keys):
        if key is None:
            continue
        totals[key] = totals.get(key, 0.0) + (1.0 if weights is None else float(weights[i]))
    return totals


def majority(keys: Sequence[str | None], weights: Sequence[float] | None = None) -> str | None:
    """The key with the largest (weighted) count; the first seen among equals; ``None`` if nobody answered."""
    totals = tally(keys, weights)
    if not totals:
        return None
    best = max(totals.values())
    return next(k for k, v in totals.items() if v == best)


def agreement(keys: Sequence[str | None]) -> tuple[str | None, int]:
    """The most common key and how many answers give it."""
    totals = tally(keys)
    if not totals:
        return None, 0
    key = majority(keys)
    return key, int(totals[key]) if key is not None else 0


def consensus_reached(keys: Sequence[str | None], policy: Consensus) -> bool:
    """Whether the active agents' answers agree enough.

    ``n`` is the number of active agents (answers given or not). Strict (DyLAN): more than ⌊fraction·n⌋ agree;
    otherwise at least ⌈fraction·n⌉. The fraction is taken exactly (2/3, not 0.666…) so that ⌊2/3·3⌋ is 2.
    """
    n = len(keys)
    if n < policy.min_agents:
        return False
    _, count = agreement(keys)
    bound = Fraction(policy.fraction).limit_denominator(1000) * n
    if policy.strict:
        return count > math.floor(bound)
    return count >= math.ceil(bound)
