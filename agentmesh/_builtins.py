"""What agentmesh ships, registered on first use: the research systems' operators and functions and the runtime's
``replay:`` model provider.

Why: ``import agentmesh`` used to import :mod:`agentmesh.systems` (and with it the runtime, models and LangGraph)
so that a graph naming ``op: alu`` or ``function: dylan_importance`` resolved whatever part of agentmesh the user
had imported. That made every ``agentmesh`` command spend its first seconds in imports, where Ctrl-C could only
print a traceback. :mod:`agentmesh` is now lazy, and the registries (operator parameters in :mod:`agentmesh.spec`,
operators and functions in :mod:`agentmesh.runtime`, model providers in :mod:`agentmesh.models`) call
:func:`load_builtins` when a lookup misses, when they list what is registered, and before a user's registration
(so that taking a shipped name is still refused, and a shipped registration never silently replaces the user's).

This module is a leaf (it imports agentmesh only inside :func:`load_builtins`, by name), so that :mod:`agentmesh.spec`
can use it without depending on the runtime.
"""

from __future__ import annotations

import importlib
import time
from types import ModuleType

_SYSTEMS = "agentmesh.systems"
"""Importing it registers the research systems' operators and functions (it imports the runtime and the models)."""

_RUNTIME = ("agentmesh.runtime.functions", "agentmesh.runtime.recorded_model")
"""The runtime's own registrations: its shipped functions (``pairwise_winner``...) and the ``replay:`` model
provider. :mod:`agentmesh.runtime` imported them with itself; it is lazy now (a graph check need not import
LangGraph), so they are imported here, before the systems, in the order the eager package registered them."""

_loaded = False


def load_builtins() -> None:
    """Import (once) what registers agentmesh's own operators, functions and providers.

    Thread-safe through Python's import lock: a second thread asking while the first imports waits for the import
    to finish. Asked again by the importing thread itself (a shipped module registering while the import runs), it
    returns at once: the registrations made so far are all there are yet, as when the import was eager.
    """
    global _loaded
    if _loaded:
        return
    for name in _RUNTIME:
        import_module(name)
    module = import_module(_SYSTEMS)
    # only once the import has finished: not when a shipped module's own registration asked, midway through it
    _loaded = not getattr(getattr(module, "__spec__", None), "_initializing", False)


def is_shipped(obj: object) -> bool:
    """Whether ``obj`` (an operator, function, parameters class or provider factory) is agentmesh's own rather than
    a user's: by the module that defines it."""
    return str(getattr(obj, "__module__", "")).startswith("agentmesh.")


def import_module(name: str) -> ModuleType:
    """``importlib.import_module``, tried again when Python's import lock detects a deadlock between threads.

    Why: with agentmesh imported lazily, two threads may import its parts for the first time at once in opposite
    orders (one reads ``agentmesh.GraphSpec`` while another looks up an operator, which loads the shipped systems);
    Python then raises ``_DeadlockError`` in one of them rather than hang. The other one finishes its import, and
    the same import tried again finds the modules there. Eagerly imported, agentmesh never met this."""
    for attempt in range(200):
        try:
            return importlib.import_module(name)
        except RuntimeError as exc:  # importlib._bootstrap._DeadlockError (private: matched by name)
            if type(exc).__name__ != "_DeadlockError" or attempt == 199:
                raise
            time.sleep(0.005)
    raise AssertionError("unreachable")  # (the loop returns or raises)
