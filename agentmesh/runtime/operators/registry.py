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
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from agentmesh._builtins import is_shipped as is_shipped  # (re-exported: the runtime asks it here)
from agentmesh._builtins import load_builtins
from agentmesh._yaml import YamlError, line_map, line_of, read_yaml_file
from agentmesh.errors import AgentmeshError, ConfigError
from agentmesh.runtime.context import RunContext, RunError
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


def reraise_named(exc: Exception, *, node: str, what: str, **context: Any) -> NoReturn:
    """Raise what a user's code -- an operator, a registered function -- raised while node ``node`` ran: as a
    :class:`RunError` naming the node and ``what`` raised (``operator 'x'``, ``score function 'y'``), the user's
    exception chained, since bare it came out of LangGraph's task (``ValueError: boom``, a note naming a task id).

    agentmesh's own errors pass unchanged (they name their place already), and so do LangGraph's ``GraphBubbleUp``
    and its subclasses (``interrupt()``'s ``GraphInterrupt``, ``ParentCommand``): LangGraph handles those itself,
    and one wrapped reads as a failed run. Call it in an ``except Exception`` clause; ``context`` goes into the
    error's (``operator=...``, ``function=...``)."""
    # (imported here, on a failure: looking an operator up, as ``agentmesh graph validate`` does, imports no LangGraph)
    from langgraph.errors import GraphBubbleUp

    if isinstance(exc, AgentmeshError | GraphBubbleUp):
        raise exc
    raise RunError(f"node {node!r}: {what} raised {type(exc).__name__}: {exc}", node=node, **context) from exc


def takes_context(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` declares the keyword-only parameter ``ctx`` (see :class:`FunctionContext`). A ``**kwargs``
    alone does not count: a function that forwards its arguments did not ask for the run."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or a C callable without a signature: it cannot have asked
        return False
    found = parameters.get(CONTEXT_PARAMETER)
    return found is not None and found.kind is inspect.Parameter.KEYWORD_ONLY


def _positional_context(fn: Callable[..., Any]) -> str | None:
    """How ``fn`` declares a ``ctx`` that is *not* keyword-only (``"positional"``, ``"positional-only"``), else
    ``None``. Such a ``ctx`` gets no :class:`FunctionContext`: ``def f(outputs, inputs, ctx)`` failed as "missing a
    required argument: 'ctx' ... args may give nothing", and ``ctx=None`` ran with ``None``, without saying why."""
    try:
        found = inspect.signature(fn).parameters.get(CONTEXT_PARAMETER)
    except (TypeError, ValueError):
        return None
    if found is None or found.kind in (found.KEYWORD_ONLY, found.VAR_KEYWORD, found.VAR_POSITIONAL):
        return None
    return "positional-only" if found.kind is found.POSITIONAL_ONLY else "positional"


NodeOutput = dict[str, Any]
OperatorFn = Callable[[NodeRun], Awaitable[NodeOutput]]

_operators: dict[str, OperatorFn] = {}
_functions: dict[str, Callable[..., Any]] = {}
_lock = threading.Lock()


def operator(name: str, *, params: type[OperatorParams], replace: bool = False) -> Callable[[OperatorFn], OperatorFn]:
    """Register an operator: ``params`` validates its YAML parameters, the function runs it.

    The function (``async def``) receives a :class:`NodeRun` and returns the node's output (a JSON-able dict).
    Outputs with ``answers`` (a list of agent answers) and/or ``answer`` feed votes, consensus and the run's final
    answer; ``done: False`` asks to run the node again when ``params`` says the node repeats (``repeats:
    ClassVar[bool] = True``, as ``rounds`` does: without it the node runs once whatever ``done`` says; the node's
    previous output is then ``run.own``). Declaring the output's keys in
    ``params.outputs`` lets specs that read ``nodes.<node>.<key>`` be checked when they load.

    Mistakes are refused here, where the traceback points at the decorator, rather than when a spec loads or a
    node runs: a name that is not text, ``params`` that is not an :class:`OperatorParams` subclass, a function that
    is not ``async``, and a name agentmesh ships (``vote``, ``rounds``...) unless ``replace=True``: every shipped
    graph using it would silently run the replacement.
    """
    _check_name(name, "operator", "@agentmesh.operator('name', params=MyParams)")
    if not (isinstance(params, type) and issubclass(params, OperatorParams)):
        raise ConfigError(
            f"operator {name!r}: params must be a subclass of agentmesh.spec.operators.OperatorParams (the model of "
            f"its YAML parameters), got {params!r}",
            operator=name,
        )

    def decorate(fn: OperatorFn) -> OperatorFn:
        if not _is_async(fn):
            raise ConfigError(
                f"operator {name!r}: {_named(fn)} must be an async function (async def {getattr(fn, '__name__', 'op')}"
                "(run: NodeRun) -> dict): the runtime awaits it",
                operator=name,
            )
        if not is_shipped(fn):
            load_builtins()  # so that a shipped name is refused (and no shipped operator loaded later replaces it)
        with _lock:
            _refuse_shipped(_operators.get(name), fn, name, "operator", replace)
            register_operator_params(name, params)
            _operators[name] = fn
        return fn

    return decorate


def _check_name(name: object, what: str, usage: str) -> None:
    if not isinstance(name, str) or not name.strip():
        hint = f" (used without its name? write @{usage.lstrip('@')})" if callable(name) else ""
        raise ConfigError(f"a {what} is registered under a non-empty name, got {name!r}{hint}; write {usage}")


def _is_async(fn: object) -> bool:
    """False only for what is surely not awaitable: a plain ``def`` (not a decorator's wrapper, which may return a
    coroutine); callable objects and wrappers are left to the node's own check of what they return."""
    return not (inspect.isfunction(fn) and not inspect.iscoroutinefunction(fn) and not hasattr(fn, "__wrapped__"))


def _named(fn: object) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _refuse_shipped(found: object, fn: object, name: str, what: str, replace: bool) -> None:
    """A name agentmesh registers itself is not taken over by accident (a user's function or operator named
    ``pairwise_winner`` or ``vote`` would change every shipped graph that uses it). Names of the user's own may be
    registered again (a notebook cell run twice, a module reloaded)."""
    shipped = found is not None and found is not fn and is_shipped(found)
    if shipped and not replace:
        raise ConfigError(
            f"{what} {name!r} is agentmesh's own ({_named(found)}); registering {_named(fn)} under it would change "
            f"every graph that uses it: choose another name, or pass replace=True to replace it on purpose"
        )


def get_operator(name: str) -> OperatorFn:
    """The implementation of ``op: <name>``; the research systems' operators are loaded on the first miss."""
    with _lock:
        found = _operators.get(name)
    if found is None:
        load_builtins()
        with _lock:
            found = _operators.get(name)
    if found is None:
        raise ConfigError(f"operator {name!r} has parameters registered but no implementation", operator=name)
    return found


F = TypeVar("F", bound=Callable[..., Any])


def register_function(name: str, *, replace: bool = False) -> Callable[[F], F]:
    """Make a Python function callable from YAML by ``name`` (``op: function``, rankers, reward functions).

    How it is called depends on where a graph names it (plain or ``async``, either way): ``op: function`` calls
    ``fn(outputs, inputs, **args)`` (every finished node's output by name, the run's inputs, the node's ``args``)
    and takes the dict it returns as the node's output; ``op: score`` with ``function:`` calls ``fn(answer,
    inputs)`` per answer for a number; ``op: rank`` (or a ``rounds`` rank step) with ``function:`` calls
    ``fn(answers, keep)`` for the indices to keep, best first. An exception it raises fails the run naming the node.

    For ``op: function``, a keyword-only parameter ``ctx`` receives the :class:`FunctionContext` (the run's
    store, run id and node); a graph cannot pass an argument of that name to such a function. A name agentmesh
    ships (``pairwise_winner``...) is refused unless ``replace=True``; a name that is not text (the decorator used
    without its name) and a value that is not callable are refused here, not when a graph first calls them."""
    _check_name(name, "function", "@agentmesh.register_function('name')")

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise ConfigError(f"function {name!r}: expected a callable to register, got {type(fn).__name__}")
        if not is_shipped(fn):
            load_builtins()  # so that a shipped name is refused (and no shipped function loaded later replaces it)
        with _lock:
            _refuse_shipped(_functions.get(name), fn, name, "function", replace)
            _functions[name] = fn
        return fn

    return decorate


def get_function(name: str, *, node: str | None = None) -> Callable[..., Any]:
    """The function registered as ``name``; the research systems' functions are loaded on the first miss."""
    with _lock:
        found = _functions.get(name)
    if found is None:
        load_builtins()
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
    """Every problem with the functions a spec's nodes name, as ``nodes.<node>.<field>: ...``: a function nobody
    registered, an ``op: function`` node's ``args`` its function cannot take (a misspelt or missing argument), a
    ``ctx`` passed in ``args`` to a function that gets ``ctx`` from the runtime.

    The spec check cannot know them (functions are registered by the runtime and the user's modules), so without
    this a misspelt name, a module not imported or a misspelt argument failed the run at that node -- after the
    model calls of every node before it. ``graph validate`` and every run, resume and fork check them first."""
    load_builtins()  # a graph may name the research systems' functions (dylan_importance...) without importing them
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
        if not isinstance(params, FunctionParams) or params.function not in registered:
            continue
        fn = registered[params.function]
        args = dict(params.args)
        positional = _positional_context(fn)
        if positional and CONTEXT_PARAMETER not in args:
            out.append(
                f"nodes.{node_name}.function: function {params.function!r} declares {CONTEXT_PARAMETER!r} as a "
                f"{positional} parameter, and the run context goes only to a keyword-only one: write "
                f"def {getattr(fn, '__name__', 'fn')}(outputs, inputs, *, {CONTEXT_PARAMETER}) (or give the node's "
                f"args a {CONTEXT_PARAMETER!r} of its own)"
            )
            continue
        if takes_context(fn):
            if CONTEXT_PARAMETER in args:
                out.append(
                    f"nodes.{node_name}.args.{CONTEXT_PARAMETER}: function {params.function!r} gets "
                    f"{CONTEXT_PARAMETER!r} from the runtime (the run context); remove it from the node's args"
                )
                continue
            args[CONTEXT_PARAMETER] = None  # the runtime gives it
        problem = argument_problem(fn, args)
        if problem is not None:
            out.append(f"nodes.{node_name}.args: function {params.function!r}: {problem}")
    return out


def argument_problem(fn: Callable[..., Any], args: Mapping[str, Any]) -> str | None:
    """Why ``fn(outputs, inputs, **args)`` cannot be called as ``op: function`` calls it (a misspelt or missing
    ``args`` entry), in words naming the parameters it takes; ``None`` when it can (or its signature is unknown).

    Checked before the call, so that the message says which node's ``args`` to fix rather than a bare
    ``TypeError`` from the function's own frame. ``ctx`` (given by the runtime) is neither asked for nor listed."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: let the call itself say
        return None
    try:
        signature.bind({}, {}, **args)
    except TypeError as exc:
        named = list(signature.parameters.values())[2:]
        takes = [
            p.name for p in named if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != CONTEXT_PARAMETER
        ]
        required = [p for p in takes if signature.parameters[p].default is inspect.Parameter.empty]
        open_ended = any(p.kind is p.VAR_KEYWORD for p in named)
        unknown = [] if open_ended else sorted(a for a in args if a not in takes and a != CONTEXT_PARAMETER)
        missing = [p for p in required if p not in args]
        found = [
            *([f"unknown argument(s) {', '.join(unknown)}"] if unknown else []),
            *([f"missing argument(s) {', '.join(missing)}"] if missing else []),
        ]
        return (
            f"{'; '.join(found) or exc}; it is called as fn(outputs, inputs, **args), so args may give "
            f"{', '.join(takes) or 'nothing'}{' (all required)' if takes and required == takes else ''}"
            + (f" (required: {', '.join(required)})" if required and required != takes else "")
        )
    return None


def check_functions(spec: GraphSpec, file: str | Path | None = None) -> None:
    """Raise :class:`ConfigError` naming every problem :func:`function_problems` finds in ``spec``; with the
    ``file`` the spec was loaded from, each as the spec's own problems are, ``file:line: field: ...``."""
    problems = function_problems(spec)
    if problems:
        hint = (
            " (register one with @agentmesh.register_function; from the command line, load its module with "
            "agentmesh --import)"
            if any("unknown function" in p for p in problems)
            else ""
        )
        located = _located(problems, Path(file)) if file is not None else None
        if located is not None:
            listed = "\n".join(located)
            message = listed if len(located) == 1 else f"{len(located)} problems in {file}:\n{listed}"
            raise ConfigError(message + hint, graph=spec.name, file=str(file))
        raise ConfigError(f"graph {spec.name!r}: " + "; ".join(problems) + hint, graph=spec.name)


def _located(problems: list[str], file: Path) -> list[str] | None:
    """``problems`` (each ``nodes.<node>.<field>: ...``) prefixed with ``file:line:`` as the file writes that
    field; ``None`` when the file cannot be read (the problems are then said without lines)."""
    try:
        _, root = read_yaml_file(file)
    except (YamlError, OSError):
        return None
    lines = line_map(root) if root is not None else {}
    out = []
    for problem in problems:
        field = problem.partition(": ")[0]
        loc = tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", field) if p)
        line = line_of(lines, loc)
        out.append(f"{file}:{line}: {problem}" if line else f"{file}: {problem}")
    return out
