"""Model access: reference strings, providers, and the client layer every call goes through."""

from agentmesh.models.client import CallObserver, ModelClient
from agentmesh.models.messages import (
    CallContext,
    CallRecord,
    ChatMessage,
    Choice,
    ModelRequest,
    ModelResponse,
    Sampling,
    TokenLogprob,
    Usage,
)
from agentmesh.models.providers.base import Provider
from agentmesh.models.providers.scripted import ScriptedModel, ScriptRule
from agentmesh.models.reference import ModelReference, parse_reference
from agentmesh.models.registry import get_model, providers, register_provider
from agentmesh.models.settings import EndpointLimits, ModelSettings, Price, load_settings

__all__ = [
    "CallContext",
    "CallObserver",
    "CallRecord",
    "ChatMessage",
    "Choice",
    "EndpointLimits",
    "ModelClient",
    "ModelReference",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "Price",
    "Provider",
    "Sampling",
    "ScriptRule",
    "ScriptedModel",
    "TokenLogprob",
    "Usage",
    "get_model",
    "load_settings",
    "parse_reference",
    "providers",
    "register_provider",
]
