"""DyLAN (Liu et al., arXiv 2310.02170): Agent Importance Scores and team selection (dylan.md §4).

The network itself (layers, shuffled anonymous predecessors, ratings, the listwise ranker, consensus early
stop) is the generic ``rounds`` operator configured by ``graphs/dylan_*.yaml``; this package holds the maths
that only DyLAN defines, as pure functions over a run's recorded network.
"""

from agentmesh.systems.dylan import code, functions, input_check
from agentmesh.systems.dylan.importance import (
    Importance,
    Node,
    Trace,
    agent_labels,
    edge_weights,
    importance,
    mean_importance,
    select_team,
    trace_from_history,
)

__all__ = [
    "Importance",
    "Node",
    "Trace",
    "agent_labels",
    "code",
    "edge_weights",
    "functions",
    "importance",
    "input_check",
    "mean_importance",
    "select_team",
    "trace_from_history",
]
