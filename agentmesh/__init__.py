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

if TYPE_CHECKING:  # what type checkers and IDEs see (each name as itself: exported); at run time, _LAZY
    from agentmesh import systems as systems
    from agentmesh.errors import AgentmeshError as AgentmeshError
    from agentmesh.models import ModelClient as ModelClient
    from agentmesh.models import ModelRequest as ModelRequest
    from agentmesh.models import ScriptedModel as ScriptedModel
    from agentmesh.models import get_model as get_model
    from agentmesh.runtime import FunctionContext as FunctionContext
    from agentmesh.runtime import operator as operator
    from agentmesh.runtime import register_function as register_function
    from agentmesh.runtime import resolve_graph as resolve_graph

    # (from their own module: mypy took ``run`` imported from agentmesh.runtime here, under TYPE_CHECKING, for a
    # second definition of the name -- agentmesh.runtime.run is also a module)
    from agentmesh.runtime.run import RunResult as RunResult
    from agentmesh.runtime.run import aresume as aresume
    from agentmesh.runtime.run import arun as arun
    from agentmesh.runtime.run import resume as resume
    from agentmesh.runtime.run import run as run
    from agentmesh.spec import AgentCard as AgentCard
    from agentmesh.spec import GraphSpec as GraphSpec
    from agentmesh.spec import load_graph as load_graph

__version__ = "0.1.0"

#: Each public name imported on first use and the module it comes from: the one list of them (``__all__`` is
#: made from it; the ``TYPE_CHECKING`` imports above mirror it, ``tests/unit/test_lazy_packages.py`` holds them to it).
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

#: The public names: the lazy ones (each written once, in _LAZY), and the version and subpackage this module has.
__all__ = [*_LAZY, "__version__", "systems"]


def _subpackage(name: str) -> bool:
    """Subpackages are attributes too (``agentmesh.spec.dump_graph``, ``@agentmesh.parsers.register_parser``,
    ``agentmesh.optimize.optimize``, as the README writes them after a bare ``import agentmesh``): the eager package
    imported them, so they were attributes of it; lazily, nothing had, and each was an ``AttributeError``."""
    return not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, submodule=_subpackage)
