"""agentmesh: declarative graphs of LLM agents over one shared store, with early stopping.

Example::

    import agentmesh
    result = agentmesh.run("debate", {"question": "What is 17*3?"}, model="local")
    print(result.answer, result.stop_reason, result.run_id)
"""

from agentmesh import systems  # registers the methods' functions and operators
from agentmesh.errors import AgentmeshError
from agentmesh.models import ModelClient, ModelRequest, ScriptedModel, get_model
from agentmesh.runtime import (
    FunctionContext,
    RunResult,
    aresume,
    arun,
    operator,
    register_function,
    resolve_graph,
    resume,
    run,
)
from agentmesh.spec import AgentCard, GraphSpec, load_graph

__version__ = "0.1.0"

__all__ = [
    "AgentCard",
    "AgentmeshError",
    "FunctionContext",
    "GraphSpec",
    "ModelClient",
    "ModelRequest",
    "RunResult",
    "ScriptedModel",
    "__version__",
    "aresume",
    "arun",
    "get_model",
    "load_graph",
    "operator",
    "register_function",
    "resolve_graph",
    "resume",
    "run",
    "systems",
]
