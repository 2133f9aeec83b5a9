"""agentmesh: declarative graphs of LLM agents over one shared store, with early stopping."""

from agentmesh.errors import AgentmeshError
from agentmesh.models import ModelClient, ModelRequest, ScriptedModel, get_model

__version__ = "0.1.0"

__all__ = ["AgentmeshError", "ModelClient", "ModelRequest", "ScriptedModel", "__version__", "get_model"]
