"""Specs as data: agent cards, graph specs, operator parameters, stop policies (pydantic; no runtime imports)."""

from agentmesh.spec.agent import AgentCard
from agentmesh.spec.checks import Problem
from agentmesh.spec.graph import SPEC_VERSION, GraphSpec, InputSpec
from agentmesh.spec.loader import dump_graph, graph_from_data, load_agent, load_graph
from agentmesh.spec.node import NodeSpec
from agentmesh.spec.operators import OperatorParams, operator_names, register_operator_params
from agentmesh.spec.stop import AllOf, AnyOf, Budget, Consensus, MaxRounds, ScoreThreshold, StopPolicy

__all__ = [
    "SPEC_VERSION",
    "AgentCard",
    "AllOf",
    "AnyOf",
    "Budget",
    "Consensus",
    "GraphSpec",
    "InputSpec",
    "MaxRounds",
    "NodeSpec",
    "OperatorParams",
    "Problem",
    "ScoreThreshold",
    "StopPolicy",
    "dump_graph",
    "graph_from_data",
    "load_agent",
    "load_graph",
    "operator_names",
    "register_operator_params",
]
