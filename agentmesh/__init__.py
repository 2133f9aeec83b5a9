"""agentmesh: declarative graphs of LLM agents over one shared store, with early stopping.

Example::

    import agentmesh
    result = agentmesh.run("debate", {"question": "What is 17*3?"}, model="local")
    print(result.answer, result.stop_reason, result.run_id)

The names below are imported on first use (PEP 562), not with the package: importing the runtime, the models
and LangGraph takes seconds, and every ``agentmesh`` command imports this package first -- a Ctrl-C in those
seconds could only print a traceback. The research systems' operators and functions, which this package used to
import so that graphs could name them, now register when a registry is first asked (:mod:`agentmesh._builtins`).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from agentmesh._lazy import lazy_attributes

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time, __getattr__ imports each on first use
    from agentmesh import systems
    from agentmesh.errors import AgentmeshError
    from agentmesh.models import ModelClient, ModelRequest, ScriptedModel, get_model
    from agentmesh.runtime import FunctionContext, operator, register_function, resolve_graph

    # (from their own module: mypy took ``run`` imported from agentmesh.runtime here, under TYPE_CHECKING, for a
    # second definition of the name -- agentmesh.runtime.run is also a module)
    from agentmesh.runtime.run import RunResult, aresume, arun, resume, run
    from agentmesh.spec import AgentCard, GraphSpec, load_graph

__version__ = "0.1.0"

#: Each public name and the module it comes from.
_LAZY: dict[str, str] = {
    "AgentCard": "agentmesh.spec",
    "AgentmeshError": "agentmesh.errors",
    "FunctionContext": "agentmesh.runtime",
    "GraphSpec": "agentmesh.spec",
    "ModelClient": "agentmesh.models",
    "ModelRequest": "agentmesh.models",
    "RunResult": "agentmesh.runtime",
    "ScriptedModel": "agentmesh.models",
    "aresume": "agentmesh.runtime",
    "arun": "agentmesh.runtime",
    "get_model": "agentmesh.models",
    "load_graph": "agentmesh.spec",
    "operator": "agentmesh.runtime",
    "register_function": "agentmesh.runtime",
    "resolve_graph": "agentmesh.runtime",
    "resume": "agentmesh.runtime",
    "run": "agentmesh.runtime",
}

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


def _subpackage(name: str) -> bool:
    """Subpackages are attributes too (``agentmesh.spec.dump_graph``, ``@agentmesh.parsers.register_parser``,
    ``agentmesh.optimize.optimize``, as the README writes them after a bare ``import agentmesh``): the eager package
    imported them, so they were attributes of it; lazily, nothing had, and each was an ``AttributeError``."""
    return not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, submodule=_subpackage)
