"""Operators by name: the implementation half of ``op: <name>`` (the parameter half is in ``agentmesh.spec``).

``@operator("name", params=MyParams)`` registers both halves at once, so a user operator is valid in YAML specs
(checked at load, in the JSON Schema) and runnable. ``@register_function("name")`` registers plain Python
functions that the ``function`` operator (and rankers, reward functions) reach by name from YAML.

A function of ``op: function`` is called with ``(outputs, inputs, **args)``. One that needs the run itself (its
store, to read reference data and pin the version it read, as ALU's baselines read a stored target set) declares
a keyword-only parameter ``ctx`` and gets a :class:`FunctionContext` in it; the others are called as before, so
no registered function has to change, and what a function can reach is visible in its signature.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from agentmesh.errors import ConfigError
from agentmesh.runtime.context import RunContext
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.operators import FunctionParams, OperatorParams, register_operator_params

if TYPE_CHECKING:
    from agentmesh.store import Store


@dataclass
class NodeRun:
    """One execution of a node: its name and parameters, the run context, and the outputs so far.

    ``own`` is this node's previous output when it runs again (a round structure, a loop check).
    ``iteration`` is the enclosing loop's iteration (0 outside loops): calls are recorded under
    :attr:`call_node`, so the same node's calls in two iterations never share a record key.
    """

    name: str
    op: str
    params: OperatorParams
    ctx: RunContext
    outputs: Mapping[str, Any]
    own: dict[str, Any] | None = None
    iteration: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def call_node(self) -> str:
        """The node name calls are recorded under: ``step``, or ``step#1`` in a loop's second iteration (``#n`` after
        ``n`` finished iterations)."""
        return self.name if self.iteration == 0 else f"{self.name}#{self.iteration}"


@dataclass(frozen=True)
class FunctionContext:
    """What an ``op: function`` function that declares a keyword-only ``ctx`` parameter gets: the run and the
    node it runs as.

    ``call_node`` is the name the node's records are keyed under (``step``, ``step#1`` in a loop's second
    iteration), which is what a function keys anything it records by -- e.g. the target-set version it pins with
    :meth:`~agentmesh.store.Store.apin_target_set`, so that a resume or a replay of the run reads the same one.
    """

    run: RunContext
    node: str
    call_node: str

    @property
    def store(self) -> Store | None:
        """The run's store (``None`` when the run is not stored)."""
        return self.run.store

    @property
    def run_id(self) -> str:
        """The run's id: with :attr:`call_node`, the key of what the function records for this run."""
        return self.run.run_id


CONTEXT_PARAMETER = "ctx"
"""The keyword-only parameter through which a function asks for its :class:`FunctionContext`."""


def takes_context(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` declares the keyword-only parameter ``ctx`` (see :class:`FunctionContext`). A ``**kwargs``
    alone does not count: a function that forwards its arguments did not ask for the run."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or a C callable without a signature: it cannot have asked
        return False
    found = parameters.get(CONTEXT_PARAMETER)
    return found is not None and found.kind is inspect.Parameter.KEYWORD_ONLY


NodeOutput = dict[str, Any]
OperatorFn = Callable[[NodeRun], Awaitable[NodeOutput]]

_operators: dict[str, OperatorFn] = {}
_functions: dict[str, Callable[..., Any]] = {}
_lock = threading.Lock()


def operator(name: str, *, params: type[OperatorParams]) -> Callable[[OperatorFn], OperatorFn]:
    """Register an operator: ``params`` validates its YAML parameters, the function runs it.

    The function receives a :class:`NodeRun` and returns the node's output (a JSON-able dict). Outputs with
    ``answers`` (a list of agent answers) and/or ``answer`` feed votes, consensus and the run's final answer;
    ``done: False`` asks to run the node again (rounds, loops). Declaring the output's keys in
    ``params.outputs`` lets specs that read ``nodes.<node>.<key>`` be checked when they load.
    """

    def decorate(fn: OperatorFn) -> OperatorFn:
        register_operator_params(name, params)
        with _lock:
            _operators[name] = fn
        return fn

    return decorate


def get_operator(name: str) -> OperatorFn:
    with _lock:
        found = _operators.get(name)
    if found is None:
        raise ConfigError(f"operator {name!r} has parameters registered but no implementation", operator=name)
    return found


F = TypeVar("F", bound=Callable[..., Any])


def register_function(name: str) -> Callable[[F], F]:
    """Make a Python function callable from YAML by ``name`` (``op: function``, rankers, reward functions).

    For ``op: function``, a keyword-only parameter ``ctx`` receives the :class:`FunctionContext` (the run's
    store, run id and node); a graph cannot pass an argument of that name to such a function."""

    def decorate(fn: F) -> F:
        with _lock:
            _functions[name] = fn
        return fn

    return decorate


def get_function(name: str, *, node: str | None = None) -> Callable[..., Any]:
    with _lock:
        found = _functions.get(name)
        known = sorted(_functions)
    if found is None:
        raise ConfigError(
            f"node {node!r}: unknown function {name!r}; registered: {', '.join(known) or 'none'} "
            "(register one with @agentmesh.register_function; from the command line, load its module with "
            "agentmesh --import)",
            node=node,
            function=name,
        )
    return found


def function_problems(spec: GraphSpec) -> list[str]:
    """Every function a spec's nodes name that nobody registered, as ``nodes.<node>.<field>: unknown function``,
    and every ``ctx`` a node passes in ``args`` to a function that gets ``ctx`` from the runtime.

    The spec check cannot know them (functions are registered by the runtime and the user's modules), so without
    this a misspelt name, or a module not imported, failed the run at that node -- after the model calls of every
    node before it."""
    with _lock:
        registered = dict(_functions)
    known = sorted(registered)
    out = []
    for node_name, node in spec.nodes.items():
        for path, name in node.params.functions_used():
            if name not in registered:
                out.append(
                    f"nodes.{node_name}.{path}: unknown function {name!r}; registered: {', '.join(known) or 'none'}"
                )
        params = node.params
        if (
            isinstance(params, FunctionParams)
            and CONTEXT_PARAMETER in params.args
            and params.function in registered
            and takes_context(registered[params.function])
        ):
            out.append(
                f"nodes.{node_name}.args.{CONTEXT_PARAMETER}: function {params.function!r} gets "
                f"{CONTEXT_PARAMETER!r} from the runtime (the run context); remove it from the node's args"
            )
    return out


def check_functions(spec: GraphSpec) -> None:
    """Raise :class:`ConfigError` naming every problem :func:`function_problems` finds in ``spec``."""
    problems = function_problems(spec)
    if problems:
        hint = (
            " (register one with @agentmesh.register_function; from the command line, load its module with "
            "agentmesh --import)"
            if any("unknown function" in p for p in problems)
            else ""
        )
        raise ConfigError(f"graph {spec.name!r}: " + "; ".join(problems) + hint, graph=spec.name)
