"""Evaluating stop policies against a node's output and the run's budget.

A policy "holds" with a reason (the text a run records as its stop reason) or does not (``None``).
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import mean
from typing import Any

from agentmesh.runtime.budget import BudgetTracker
from agentmesh.runtime.voting import consensus_reached
from agentmesh.spec.stop import AllOf, AnyOf, Budget, Consensus, MaxRounds, ScoreThreshold, StopPolicy


def answer_keys(output: Mapping[str, Any]) -> list[str | None]:
    """Normalised answers of a node's active agents."""
    return [a.get("key") for a in output.get("answers") or []]


def holds(
    policy: StopPolicy,
    output: Mapping[str, Any],
    *,
    outputs: Mapping[str, Any],
    budget: BudgetTracker,
    layer_size: int | None = None,
) -> str | None:
    """The stop reason if ``policy`` holds for ``output`` (a node's latest output), else ``None``.

    ``layer_size`` is the number of active agents when only part of a layer has answered (sequential
    activation): consensus then needs agreement among the whole layer, counting the missing as not agreeing.
    """
    if isinstance(policy, AnyOf):
        for p in policy.any:
            reason = holds(p, output, outputs=outputs, budget=budget, layer_size=layer_size)
            if reason:
                return reason
        return None
    if isinstance(policy, AllOf):
        reasons = [holds(p, output, outputs=outputs, budget=budget, layer_size=layer_size) for p in policy.all]
        return " and ".join(r for r in reasons if r) if all(reasons) else None
    if isinstance(policy, Consensus):
        keys = answer_keys(output)
        if layer_size is not None and layer_size > len(keys):
            keys = keys + [None] * (layer_size - len(keys))
        return str(policy) if keys and consensus_reached(keys, policy) else None
    if isinstance(policy, MaxRounds):
        return str(policy) if int(output.get("round") or 0) >= policy.rounds else None
    if isinstance(policy, ScoreThreshold):
        scored = outputs.get(policy.node, output) if policy.node else output
        scores = [float(s) for s in scored.get("scores") or [] if s is not None]
        if not scores:
            return None
        value = max(scores) if policy.reduce == "max" else min(scores) if policy.reduce == "min" else mean(scores)
        return f"{policy} (got {value:g})" if value >= policy.min else None
    if isinstance(policy, Budget):
        # the run's budgets (the graph's and the caller's), else this one's own limits: a budget in a node's stop
        # policy is none of the run's, and checking only those ignored it (a debate ran all its rounds)
        return budget.exhausted() or budget.reached(policy)
    raise TypeError(f"not a stop policy: {policy!r}")  # pragma: no cover
