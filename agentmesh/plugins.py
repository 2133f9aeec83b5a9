"""The user's own modules: imported so that what they register (operators, functions, parsers, model providers)
is known to the graphs that name it.

Why a module of its own: the command line imports them (``agentmesh --import mine.py ...``), and so must every
other process that runs a graph for the same command -- a Ray worker running a job's or a batch's items
(:mod:`agentmesh.runtime.on_ray`). :func:`imported` lists what this process imported, so that those
processes can import the same.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from agentmesh.errors import ConfigError

_imported: list[str] = []


def import_plugins(names: list[str] | tuple[str, ...]) -> None:
    """Import the user's modules (``--import``) before a command runs: what they register -- operators,
    functions, parsers -- is then known to the graphs the command loads, runs or draws.

    A name ending in ``.py`` (or holding a path separator) is a file, loaded as its own module; anything else is
    a module name, looked up from the working directory too (an installed console script does not put it on
    ``sys.path``, ``python -m`` would). A failing import is a clear error, before anything is stored.
    """
    for name in names:
        try:
            if name.endswith(".py") or os.sep in name:
                path = Path(name).resolve()
                if str(path) not in _imported:
                    _import_file(Path(name))
                    _imported.append(str(path))
            else:
                if os.getcwd() not in sys.path:
                    sys.path.insert(0, os.getcwd())
                importlib.import_module(name)
                if name not in _imported:
                    _imported.append(name)
        except ConfigError:
            raise
        except Exception as exc:  # whatever the user's module raised while being imported
            raise ConfigError(f"--import {name}: {type(exc).__name__}: {exc}", module=name) from exc


def imported() -> tuple[str, ...]:
    """What :func:`import_plugins` imported in this process, in order: module names, and files as absolute paths."""
    return tuple(_imported)


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"--import {path}: no such file", module=str(path))
    module_name = f"agentmesh_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"--import {path}: not a Python file", module=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
