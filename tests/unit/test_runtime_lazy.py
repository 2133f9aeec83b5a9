"""agentmesh.runtime imports its parts on first use (PEP 562), and so do agentmesh.store and the systems' job
modules: a command that only checks a graph (``agentmesh graph validate``) looks up the runtime's registries, and
the eager package imports made that cost LangGraph, SQLAlchemy and the model clients.

Each check runs in a fresh interpreter: this test process has most of agentmesh imported already.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_registries_have_the_runtimes_own_names_without_its_engine() -> None:
    """What the eager ``agentmesh.runtime`` registered by importing :mod:`.functions` and :mod:`.recorded_model`
    (the shipped functions, the ``replay:`` provider) is there at a registry's first lookup, as the systems'
    operators are; and looking them up imports neither LangGraph nor SQLAlchemy nor a model client."""
    out = _python(
        """
        import sys
        from agentmesh.runtime.operators.registry import get_function, get_operator
        from agentmesh.models.registry import providers
        get_function("pairwise_winner"), get_operator("magicore"), get_operator("alu")
        print("replay" in providers())
        print(sorted({m.split(".")[0] for m in sys.modules} & {"langgraph", "langchain_core", "sqlalchemy", "openai"}))
        """
    )
    assert out.splitlines() == ["True", "[]"]


def test_runtime_run_is_the_function_even_after_its_module_is_imported() -> None:
    """Importing a submodule sets it as its package's attribute: with the package lazy, ``from
    agentmesh.runtime.run import ...`` first would have left ``agentmesh.runtime.run`` (and ``agentmesh.run``) the
    module rather than the function, as the eager package had it."""
    out = _python(
        """
        import sys
        from agentmesh.runtime.run import RunResult
        import agentmesh, agentmesh.runtime
        from agentmesh.runtime import run
        import agentmesh.runtime.run as imported
        print(callable(run), run is agentmesh.runtime.run is agentmesh.run is imported, run.__module__)
        print(agentmesh.runtime.RunResult is RunResult, sys.modules["agentmesh.runtime.run"])
        """
    )
    first, second = out.splitlines()
    assert first == "True True agentmesh.runtime.run"
    assert second.startswith("True <module 'agentmesh.runtime.run'")


def test_the_systems_job_modules_and_the_store_are_imported_on_first_use() -> None:
    """``agentmesh.systems`` (what a registry's first lookup imports) no longer imports MAgICoRe's calibration or
    SE-Jury's jury (jobs of runs: the runtime, LangGraph); their names are still there, imported when asked."""
    out = _python(
        """
        import sys
        import agentmesh.systems
        from agentmesh.store import RunStatus
        print("agentmesh.systems.magicore.calibration" in sys.modules, "agentmesh.systems.sejury.jury" in sys.modules,
              "langgraph.graph" in sys.modules, "sqlalchemy" in sys.modules)
        from agentmesh.systems import magicore, sejury
        from agentmesh.store import Store, SQLAlchemyCheckpointSaver
        print(magicore.calibrate.__module__, sejury.calibrate.__module__, Store.__module__,
              SQLAlchemyCheckpointSaver.__module__)
        """
    )
    assert out.splitlines() == [
        "False False False False",
        "agentmesh.systems.magicore.calibration agentmesh.systems.sejury.jury agentmesh.store.runs "
        "agentmesh.store.checkpointer",
    ]


def test_the_recorder_imports_the_stores_event_row_once_at_its_first_row() -> None:
    """Every model call's event is made into a row by :class:`~agentmesh.runtime.recording.CallEvent`, which ran
    ``from agentmesh.store.events import event_row`` each time (half a microsecond a call); the store (SQLAlchemy)
    is still imported only when the first row is built, never with the runtime's registries."""
    out = _python(
        """
        import sys
        from agentmesh.runtime import recording
        from agentmesh.models.messages import CallContext, CallRecord, ChatMessage, ModelRequest
        print("sqlalchemy" in sys.modules)
        request = ModelRequest(messages=(ChatMessage(role="user", content="hi"),))
        record = CallRecord(reference="m", context=CallContext(node="n"), request=request, attempt=1)
        row = recording.CallEvent(record)()
        from agentmesh.store.events import event_row
        print(row["kind"], row["node"], recording._event_row is event_row)
        """
    )
    assert out.splitlines() == ["False", "model_call n True"]
