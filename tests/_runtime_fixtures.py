"""Session-wide checks on the runtime that every test running a graph takes part in."""

from __future__ import annotations

import functools
import signal
from collections.abc import Iterator

import pytest

from agentmesh.runtime import compile as compile_module
from agentmesh.runtime.operators.registry import NodeOutput, NodeRun, OperatorFn
from agentmesh.spec.operators import COMMON_OUTPUTS, operator_params

__all__ = ["operators_output_only_what_they_declare", "restore_signal_handlers"]


@pytest.fixture(autouse=True, scope="session")
def operators_output_only_what_they_declare() -> Iterator[None]:
    """Each operator's output keys, in every graph any test runs, are among those its parameters declare
    (``OperatorParams.outputs``): the declaration is what templates reading ``nodes.<node>.<key>`` are checked
    against when a spec loads, so an operator that outputs more than it says would make a valid spec fail."""
    original = compile_module.get_operator

    def checked(name: str) -> OperatorFn:
        run_op = original(name)
        params = operator_params(name)
        declared = None if params is None else params.outputs
        if declared is None:
            return run_op
        allowed = declared | COMMON_OUTPUTS

        @functools.wraps(run_op)  # (its module too: the runtime masks the output of operators not agentmesh's own)
        async def run(node_run: NodeRun) -> NodeOutput:
            out = await run_op(node_run)
            undeclared = sorted(set(out) - allowed)
            assert not undeclared, f"operator {name!r} output keys {undeclared} missing from its declared outputs"
            return out

        return run

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compile_module, "get_operator", checked)
        compile_module._compiled.clear()  # graphs compiled before this point would run unchecked operators
        yield


@pytest.fixture
def restore_signal_handlers() -> Iterator[None]:
    """The SIGINT and SIGTERM handlers as they were before the test: the CLI's ``run_async`` keeps counting presses
    until the process ends (the command is about to), and pytest needs its own back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
