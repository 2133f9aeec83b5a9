"""Team-optimisation jobs: run a graph's full candidate team over a data set and keep the agents that matter."""

from agentmesh.optimize.job import (
    ItemResult,
    OptimizeResult,
    aoptimize,
    importance_node,
    optimize,
    optimized_spec,
)

__all__ = ["ItemResult", "OptimizeResult", "aoptimize", "importance_node", "optimize", "optimized_spec"]
