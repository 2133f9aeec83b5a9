"""Running graphs: specs compiled to LangGraph, every call recorded in the store, early stopping."""

from agentmesh.runtime import (
    functions,  # registers the shipped functions (pairwise_winner, ...)
    recorded_model,  # registers the replay:<run-id> model provider
)
from agentmesh.runtime.arguments import resolve_graph
from agentmesh.runtime.budget import BudgetExhausted
from agentmesh.runtime.context import AgentAnswer, RunContext, RunError
from agentmesh.runtime.operators import FunctionContext, NodeRun, operator, register_function
from agentmesh.runtime.recording import StoreRecorder
from agentmesh.runtime.run import RunResult, aresume, arun, resume, run

__all__ = [
    "AgentAnswer",
    "BudgetExhausted",
    "FunctionContext",
    "NodeRun",
    "RunContext",
    "RunError",
    "RunResult",
    "StoreRecorder",
    "aresume",
    "arun",
    "functions",
    "operator",
    "recorded_model",
    "register_function",
    "resolve_graph",
    "resume",
    "run",
]
