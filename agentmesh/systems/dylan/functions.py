"""DyLAN's maths reachable from YAML: ``op: function`` with ``function: dylan_importance``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentmesh.errors import ConfigError
from agentmesh.runtime.operators import register_function
from agentmesh.systems.dylan.importance import importance, trace_from_history


@register_function("dylan_importance")
def dylan_importance(
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    *,
    source: str = "dylan",
    answer_from: str | None = "vote",
    agents: list[str] | None = None,
    layers: int | None = None,
) -> dict[str, Any]:
    """Agent Importance Scores of this query from the ``rounds`` node ``source`` (dylan.md §4).

    The final answer is the ``answer`` of node ``answer_from`` (the vote), else the top answer of the last
    round. ``agents`` (the team's card names by slot) and ``layers`` (the configured depth) come from the
    graph; when absent they are read off the history.
    """
    rounds = outputs.get(source)
    if not isinstance(rounds, Mapping) or "history" not in rounds:
        raise ConfigError(
            f"dylan_importance: node {source!r} has no rounds history; expected the name of a 'rounds' node "
            "(argument 'source')",
            node=source,
        )
    if isinstance(rounds.get("importance"), Mapping):  # the code network scores itself (credit from runnable code)
        return {"importance": {**rounds["importance"], "source": source}, "answer": rounds.get("answer")}
    history = rounds["history"]
    final = outputs.get(answer_from, {}).get("answer") if answer_from else None
    if final is None and history:
        final = history[-1].get("top")
    names = agents or rounds.get("agents") or _names_from(history)
    trace = trace_from_history(history, names, layers=layers or rounds.get("max_rounds"))
    result = importance(trace, final)
    return {"importance": result.to_json(source=source), "answer": final}


def _names_from(history: list[Mapping[str, Any]]) -> list[str]:
    by_slot: dict[int, str] = {}
    for entry in history:
        for record in entry.get("nodes") or []:
            by_slot.setdefault(int(record["slot"]), str(record["agent"]))
    return [by_slot.get(i, f"agent{i}") for i in range(max(by_slot, default=-1) + 1)]
