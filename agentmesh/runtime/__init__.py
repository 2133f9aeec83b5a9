"""Running graphs: compile specs to LangGraph, record every call in the store, stop early."""

from agentmesh.runtime.recording import StoreRecorder

__all__ = ["StoreRecorder"]
