"""agentmesh._builtins.import_module: lazily imported, agentmesh may be imported by two threads in opposite orders,
and Python's import lock then raises _DeadlockError in one of them instead of hanging."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from agentmesh import _builtins


class _DeadlockError(RuntimeError):
    """Named as importlib._bootstrap's (private, so matched by name)."""


def test_an_import_that_met_a_deadlock_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module
    failures = [_DeadlockError("deadlock detected by _ModuleLock('agentmesh.spec')")] * 2

    def flaky(name: str) -> ModuleType:
        if failures:
            raise failures.pop()
        return real(name)

    monkeypatch.setattr(importlib, "import_module", flaky)
    assert _builtins.import_module("agentmesh.errors").__name__ == "agentmesh.errors"
    assert failures == []


def test_other_runtime_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def broken(name: str) -> ModuleType:
        calls.append(name)
        raise RuntimeError("a module's own error")

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(RuntimeError, match="a module's own error"):
        _builtins.import_module("agentmesh.errors")
    assert calls == ["agentmesh.errors"]


def test_threads_first_using_agentmesh_in_opposite_orders_all_succeed(tmp_path: Path) -> None:
    """A public name read in some threads while others look up a shipped operator (which loads the systems): one
    of them failed with _DeadlockError about a run in three. Each attempt is a fresh interpreter."""
    script = tmp_path / "threads.py"
    script.write_text(
        textwrap.dedent(
            """
            import threading
            import agentmesh
            names = ["systems", "run", "GraphSpec", "ScriptedModel", "resolve_graph", "load_graph", "get_model"]
            start = threading.Barrier(len(names) + 1)
            errors = []
            def get(name):
                start.wait()
                try:
                    getattr(agentmesh, name)
                except Exception as exc:
                    errors.append(f"{name}: {exc!r}")
            def lookup():
                start.wait()
                try:
                    from agentmesh.spec.operators import operator_params
                    assert operator_params("magicore") is not None
                except Exception as exc:
                    errors.append(f"lookup: {exc!r}")
            threads = [threading.Thread(target=get, args=(n,)) for n in names] + [threading.Thread(target=lookup)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            print(errors)
            """
        )
    )
    for _ in range(3):
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
