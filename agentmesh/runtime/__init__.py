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

if TYPE_CHECKING:  # what type checkers and IDEs see (each name as itself: exported); at run time, _LAZY
    from agentmesh.runtime import functions as functions
    from agentmesh.runtime import recorded_model as recorded_model
    from agentmesh.runtime.arguments import resolve_graph as resolve_graph
    from agentmesh.runtime.budget import BudgetExhausted as BudgetExhausted
    from agentmesh.runtime.context import AgentAnswer as AgentAnswer
    from agentmesh.runtime.context import RunContext as RunContext
    from agentmesh.runtime.context import RunError as RunError
    from agentmesh.runtime.operators import FunctionContext as FunctionContext
    from agentmesh.runtime.operators import NodeRun as NodeRun
    from agentmesh.runtime.operators import operator as operator
    from agentmesh.runtime.operators import register_function as register_function
    from agentmesh.runtime.recording import StoreRecorder as StoreRecorder
    from agentmesh.runtime.run import RunResult as RunResult
    from agentmesh.runtime.run import aresume as aresume
    from agentmesh.runtime.run import arun as arun
    from agentmesh.runtime.run import resume as resume
    from agentmesh.runtime.run import run as run

#: Each public name imported on first use and the module it comes from: the one list of them (``__all__`` is
#: made from it; the ``TYPE_CHECKING`` imports above mirror it, ``tests/unit/test_lazy_packages.py`` holds them to it).
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

#: The submodules that are attributes of this package (imported on first use too).
_SUBMODULES = ("functions", "recorded_model")

#: The public names: the lazy ones (each written once, in _LAZY) and the submodules.
__all__ = [*_LAZY, *_SUBMODULES]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, submodule=_SUBMODULES.__contains__)


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
