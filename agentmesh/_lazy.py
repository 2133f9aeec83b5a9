"""Packages whose public names are imported on first use (PEP 562): one implementation for every such package.

Why lazily: importing agentmesh's heavy parts (LangGraph, SQLAlchemy, the model clients) takes seconds, and each
package's ``__init__`` runs whenever any part of it is imported -- a command that only checks a graph, or prints its
help, paid for all of them, and a Ctrl-C in those seconds could only print a traceback. A package lists its names
and where each comes from, once, makes its ``__all__`` from that list, and takes its ``__getattr__`` and
``__dir__`` from :func:`lazy_attributes`::

    _LAZY = {"Store": "agentmesh.store.runs", ...}
    __all__ = [*_LAZY]
    __getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

Type checkers and IDEs cannot read ``_LAZY``: they see the names through the package's ``if TYPE_CHECKING:``
imports, each written ``from agentmesh.store.runs import Store as Store`` (so exported without a literal
``__all__``), which ``tests/unit/test_lazy_packages.py`` holds to ``_LAZY``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from agentmesh._builtins import import_module

__all__ = ["lazy_attributes"]


def _no_submodules(name: str) -> bool:
    return False


def lazy_attributes(
    package: str, names: Mapping[str, str], *, submodule: Callable[[str], bool] = _no_submodules
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    ``__getattr__`` imports ``names[name]`` (a module path) and takes ``name`` from it, or, for a name ``submodule``
    accepts, imports ``package.name`` itself (a subpackage an eager ``__init__`` had made an attribute); either is then
    kept on the package, so the next access does not come back here. ``__dir__`` lists the public names (``__all__``)
    before their first use too (``dir()``, tab completion)."""
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        if name in names:
            value: Any = getattr(import_module(names[name]), name)
        elif submodule(name):
            value = import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(module), *getattr(module, "__all__", ())})

    return __getattr__, __dir__
