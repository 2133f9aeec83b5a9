"""Running graphs: specs compiled to LangGraph, every call recorded in the store, early stopping.

The names below are imported on first use (PEP 562), not with the package: :mod:`.run` imports LangGraph and the
store (SQLAlchemy), about a second, and every import of a part of the runtime runs this module first -- a command
that only checks a graph (``agentmesh graph validate``, which asks :mod:`.operators.registry`) paid for all of it.
What this module's imports used to register as a side effect (the shipped functions of :mod:`.functions`, the
``replay:`` model provider of :mod:`.recorded_model`) registers when a registry is first asked
(:func:`agentmesh._builtins.load_builtins`), as the research systems' operators do.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from agentmesh._lazy import lazy_attributes

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time, __getattr__ imports each on first use
    from agentmesh.runtime import functions, recorded_model
    from agentmesh.runtime.arguments import resolve_graph
    from agentmesh.runtime.budget import BudgetExhausted
    from agentmesh.runtime.context import AgentAnswer, RunContext, RunError
    from agentmesh.runtime.operators import FunctionContext, NodeRun, operator, register_function
    from agentmesh.runtime.recording import StoreRecorder
    from agentmesh.runtime.run import RunResult, aresume, arun, resume, run

#: Each public name and the module it comes from.
_LAZY: dict[str, str] = {
    "AgentAnswer": "agentmesh.runtime.context",
    "BudgetExhausted": "agentmesh.runtime.budget",
    "FunctionContext": "agentmesh.runtime.operators",
    "NodeRun": "agentmesh.runtime.operators",
    "RunContext": "agentmesh.runtime.context",
    "RunError": "agentmesh.runtime.context",
    "RunResult": "agentmesh.runtime.run",
    "StoreRecorder": "agentmesh.runtime.recording",
    "aresume": "agentmesh.runtime.run",
    "arun": "agentmesh.runtime.run",
    "operator": "agentmesh.runtime.operators",
    "register_function": "agentmesh.runtime.operators",
    "resolve_graph": "agentmesh.runtime.arguments",
    "resume": "agentmesh.runtime.run",
    "run": "agentmesh.runtime.run",
}

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, submodule=("functions", "recorded_model").__contains__)


class _Runtime(ModuleType):
    """This package's class: ``agentmesh.runtime.run`` stays the function (:func:`agentmesh.runtime.run.run`), as it
    was when this package imported it eagerly, rather than the submodule of that name.

    Importing a submodule sets it as an attribute of its package, so any ``from agentmesh.runtime.run import ...``
    made before the first ``agentmesh.runtime.run`` lookup left the module there, and ``from agentmesh.runtime
    import run`` (and ``agentmesh.run``) would have been a module. That one attribute is not set to the submodule;
    :func:`__getattr__` gives the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "run" and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Runtime
