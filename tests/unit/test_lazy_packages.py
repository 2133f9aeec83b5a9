"""The packages whose public names are imported on first use (PEP 562, :mod:`agentmesh._lazy`) write those names
once, in ``_LAZY`` (``__all__`` is made from it). Type checkers and IDEs cannot read that list, so each package also
imports the names under ``if TYPE_CHECKING:``: held to ``_LAZY`` here, so that a name added to one and not the
other fails a test (a lazy name mypy does not know, or a name mypy knows that is an ``AttributeError`` at run time).
"""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest

LAZY_PACKAGES = [
    "agentmesh",
    "agentmesh.runtime",
    "agentmesh.store",
    "agentmesh.systems.magicore",
    "agentmesh.systems.sejury",
]


def _type_checking_imports(package: str) -> dict[str, str]:
    """The names the package imports under ``if TYPE_CHECKING:``, and the module each comes from."""
    tree = ast.parse(inspect.getsource(importlib.import_module(package)))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module is not None, ast.dump(statement)
                for alias in statement.names:
                    # (``name as name``: mypy takes a name imported so as exported; __all__ is not a literal list)
                    assert alias.asname == alias.name, f"{package}: import {alias.name} as itself"
                    found[alias.name] = statement.module
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_the_type_checking_imports_are_the_lazy_names(package: str) -> None:
    module = importlib.import_module(package)
    imports = _type_checking_imports(package)
    submodules = {name for name, source in imports.items() if source == package}  # ``from agentmesh import systems``
    assert set(imports) - submodules == set(module._LAZY)
    for name in module._LAZY:  # the same object, from the module type checkers read it from
        assert getattr(module, name) is getattr(importlib.import_module(imports[name]), name), name
    assert set(module._LAZY) | submodules <= set(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert len(module.__all__) == len(set(module.__all__))
