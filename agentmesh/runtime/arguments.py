"""What a run is given, resolved and checked before anything is stored: the graph (a built-in name, a file or a
spec object), its inputs against the spec's declarations, the budget, the listeners, the store.

Apart from :mod:`agentmesh.runtime.run` because run, resume, fork, replay, batches and the job commands all take
the same arguments and must refuse the same mistakes in the same words, before any model call.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from agentmesh._text import lone_surrogate
from agentmesh.errors import ConfigError
from agentmesh.runtime.context import Listener
from agentmesh.spec.agent import AgentCard
from agentmesh.spec.graph import INPUT_TYPES, GraphSpec, InputSpec
from agentmesh.spec.loader import graph_from_data, load_graph
from agentmesh.spec.node import NodeSpec
from agentmesh.spec.stop import Budget, StopPolicy, iter_policies

# The store (SQLAlchemy, Alembic) is imported where a store is opened: resolving and checking a graph, what
# ``agentmesh graph validate`` does with this module, needs none.
if TYPE_CHECKING:
    from agentmesh.store import Store


def builtin_dir() -> Path:
    """The folder holding the shipped ``graphs/`` and ``agents/``.

    An installed wheel carries them inside the package, as ``agentmesh/_builtin/graphs`` and
    ``agentmesh/_builtin/agents`` (see ``setup.py``); a source checkout or an editable install has them at the
    top of the repository, next to ``agentmesh/``. Both keep the same two folders side by side, so the card
    paths inside a graph (``../agents/<graph>/<card>.yaml``) resolve either way.
    """
    package = Path(__file__).resolve().parent.parent
    packaged = package / "_builtin"
    return packaged if (packaged / "graphs").is_dir() else package.parent


def builtin_graphs_dir() -> Path:
    """Where the shipped graph specs are: the wheel's copy, else the source checkout's ``graphs/``."""
    return builtin_dir() / "graphs"


def builtin_graphs() -> list[str]:
    """Names of the shipped graphs (what ``resolve_graph`` accepts besides paths)."""
    return sorted(p.stem for p in builtin_graphs_dir().glob("*.yaml"))


def graph_file(graph: str | Path) -> Path | None:
    """The file :func:`resolve_graph` loads ``graph`` from (a path, or a shipped graph's), ``None`` for none: what
    problems found after loading (an unknown function) point into, at their lines."""
    path = Path(graph)
    try:
        if path.suffix in (".yaml", ".yml") or path.is_file():
            return path if path.is_file() else None
        shipped = builtin_graphs_dir() / f"{graph}.yaml"
        return shipped if shipped.is_file() else None
    except OSError:  # (a name too long for a file name)
        return None


def resolve_graph(graph: str | Path | GraphSpec) -> GraphSpec:
    """A spec from a spec, a file path, or a built-in name (``debate`` → the shipped ``graphs/debate.yaml``).

    A path (anything ending in ``.yaml``/``.yml``, or an existing file) wins over a built-in of the same name.
    """
    if isinstance(graph, GraphSpec):
        return _revalidated(graph)
    if not isinstance(graph, str | Path):
        raise ConfigError(
            f"graph: expected a shipped graph's name (such as 'debate'), a path to a YAML file or a GraphSpec, got "
            f"{type(graph).__name__} {graph!r:.80}"
        )
    if isinstance(graph, str) and "\n" in graph:
        # a spec's text, not its name or path: Path() of it fails with "File name too long", or names no graph
        raise ConfigError(
            "graph: this looks like a spec's YAML text, and graph takes a shipped graph's name, a file's path or a "
            "GraphSpec; load the text with agentmesh.spec.graph_from_data(yaml.safe_load(text)) and pass that"
        )
    path = Path(graph)
    try:
        is_file = path.is_file()
    except OSError:  # (a name too long for a file name): not a file, so a built-in's name or nothing
        is_file = False
    if path.suffix in (".yaml", ".yml") or is_file:
        return load_graph(path)
    builtin = builtin_graphs_dir() / f"{graph}.yaml"
    try:
        shipped = builtin.is_file()
    except OSError:  # (a name too long for a file name): no built-in has it
        shipped = False
    if shipped:
        return load_graph(builtin)
    raise ConfigError(
        f"no graph {str(graph)!r}: not a file, and no built-in of that name "
        f"(built-ins: {', '.join(builtin_graphs()) or 'none found in ' + str(builtin_graphs_dir())})"
    )


def _revalidated(spec: GraphSpec) -> GraphSpec:
    """``spec`` itself, or, when ``model_copy(update=...)`` put parts in it as plain data (``{"op": "call", ...}``
    for a node, a mapping for a card or the stop policy: the YAML form, which the constructor takes), the spec those
    parts make, checked as a file is. ``model_copy`` does not validate, so such a spec failed in pydantic's
    serializer (``'dict' object has no attribute 'op'``) before any check could name the part."""
    raw = (
        any(not isinstance(card, AgentCard) for card in spec.agents.values())
        or any(not isinstance(node, NodeSpec) for node in spec.nodes.values())
        or any(not isinstance(given, InputSpec) for given in spec.inputs.values())
        or (spec.stop is not None and not isinstance(spec.stop, BaseModel))
    )
    if not raw:
        return spec

    def plain(value: Any) -> Any:
        return value.model_dump(mode="json", exclude_defaults=True) if isinstance(value, BaseModel) else value

    data = {
        **{field: getattr(spec, field) for field in ("name", "description", "version", "output", "model")},
        "inputs": {name: plain(given) for name, given in spec.inputs.items()},
        "agents": {name: plain(card) for name, card in spec.agents.items()},
        "nodes": {
            name: node.model_dump(mode="json") if isinstance(node, NodeSpec) else node
            for name, node in spec.nodes.items()
        },
        "edges": [list(edge) for edge in spec.edges],
        **({"stop": TypeAdapter(StopPolicy).dump_python(spec.stop, mode="json")} if spec.stop is not None else {}),
    }
    return graph_from_data(data, file=f"graph {spec.name!r}")


def open_store(store: Store | str | None) -> Store:
    """``store`` itself, or the store at that URL (``None``: ``$AGENTMESH_DB``, else ``.agentmesh/``). A path
    object is refused saying what to give: ``Store`` takes URLs (``sqlite:///runs.db``), and a ``Path`` failed in
    its URL parser as ``expected string or bytes-like object``."""
    from agentmesh.store import Store

    if isinstance(store, Store):
        return store
    if store is not None and not isinstance(store, str):
        hint = f" (a SQLite file: 'sqlite:///{store}')" if isinstance(store, Path) else ""
        raise ConfigError(
            f"store: expected a Store, a database URL such as 'sqlite:///runs.db' or 'postgresql://user@host/db', or "
            f"None (the default store), got {type(store).__name__} {str(store)!r:.80}{hint}"
        )
    return Store(store)


_checked_specs: set[str] = set()
"""Hashes of the specs :func:`check_built` found valid (a batch's runs share one: it is checked once)."""


def check_built(spec: GraphSpec, stored: dict[str, Any], spec_hash: str) -> None:
    """Check ``spec`` as its file would be, once per spec: one derived in Python with ``model_copy(update=...)``
    (as ``spec.model_copy(update={"nodes": ...})`` reads naturally) skips pydantic's validation, so an unknown
    agent or node in it failed only at its node, after the model calls of every node before it -- and its stored
    form, which a resume loads, would not load. ``stored``/``spec_hash`` are ``spec.canonical()``'s."""
    if spec_hash in _checked_specs:
        return
    graph_from_data(stored, file=f"graph {spec.name!r}")
    _checked_specs.add(spec_hash)


def check_inputs(spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Inputs with defaults applied; missing, unknown or mistyped ones raise before anything is stored."""
    if not isinstance(inputs, Mapping):
        # ``run("debate", "What is 17*3?")`` would otherwise fail inside ``dict()`` with a message naming neither
        # the graph nor what it takes
        raise ConfigError(
            f"graph {spec.name!r}: inputs must be a mapping of input name to value, got "
            f"{type(inputs).__name__} {inputs!r:.80}; the graph takes {', '.join(spec.inputs) or 'none'} "
            f"(e.g. {{{next(iter(spec.inputs), 'name')!r}: ...}})",
            graph=spec.name,
        )
    out = dict(inputs)
    problems = []
    for name, ispec in spec.inputs.items():
        if name not in out:
            if ispec.default is not None or not ispec.required:
                out[name] = ispec.default
            else:
                problems.append(
                    f"missing input {name!r} ({ispec.type}{': ' + ispec.description if ispec.description else ''})"
                )
            continue
        if not _type_ok(ispec, out[name]):
            problems.append(f"input {name!r} should be {ispec.type}, got {type(out[name]).__name__} {out[name]!r}")
            continue
        broken = _not_unicode(out[name])
        if broken is not None:
            problems.append(f"input {name!r}: {broken}")
    unknown = sorted(set(out) - set(spec.inputs))
    if unknown:
        problems.append(
            f"unknown input(s) {', '.join(unknown)}; graph {spec.name!r} takes {', '.join(spec.inputs) or 'none'}"
        )
    if problems:
        raise ConfigError(f"graph {spec.name!r}: " + "; ".join(problems), graph=spec.name)
    return out


InputCheck = Callable[[GraphSpec, Mapping[str, Any], "Store"], Awaitable[None] | None]
"""A system's check of a run's inputs against what lies outside the spec (its store, its files): called as
``check(spec, inputs, store)`` with the inputs :func:`check_inputs` returned and the store the run is about to be
stored in, which it may read and must not change; it raises :class:`ConfigError` to refuse the run. A plain
function or an ``async def`` (the runtime awaits what it returns)."""

_input_checks: dict[str, InputCheck] = {}
_input_checks_lock = threading.Lock()


def register_input_check(name: str) -> Callable[[InputCheck], InputCheck]:
    """Register an :data:`InputCheck` under ``name``: every run and fork calls it after :func:`check_inputs`
    and before the run is stored, whatever its graph (a check returns at once for a graph that has nothing of
    its system: ALU's looks for its own nodes).

    Why: an input that a system can check without a model call (a target set that is not in the store) failed
    the run at its node, after the run was stored as failed; refused here, it is refused the way a missing input
    is, with nothing stored. By name, so that registering again (a module reloaded) replaces the check.

    A system registers its check where it registers its operators and functions, so a graph that names them has
    loaded it by the time it runs."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"an input check is registered under a non-empty name, got {name!r}")

    def decorate(check: InputCheck) -> InputCheck:
        if not callable(check):
            raise ConfigError(f"input check {name!r}: expected a callable (spec, inputs, store), got {check!r}")
        with _input_checks_lock:
            _input_checks[name] = check
        return check

    return decorate


async def run_input_checks(spec: GraphSpec, inputs: Mapping[str, Any], store: Store) -> None:
    """Call every registered :data:`InputCheck` on a run about to be stored in ``store`` (see
    :func:`register_input_check`); the first to refuse raises its :class:`ConfigError` and nothing is stored."""
    with _input_checks_lock:
        checks = list(_input_checks.values())
    for check in checks:
        found = check(spec, inputs, store)
        if inspect.isawaitable(found):
            await found


def _not_unicode(value: Any) -> str | None:
    """Why ``value`` (or a string inside it) is not Unicode text, else ``None``. A lone surrogate is what Python
    makes of a byte that is not UTF-8 in a command-line argument (``-i question=$'caf\\xe9'`` from a Latin-1
    terminal); no encoder accepts it, so the run failed with a traceback while storing its inputs."""
    if isinstance(value, str):
        found = lone_surrogate(value)
        if found is None:
            return None
        return (
            f"not Unicode text (a lone surrogate U+{ord(found.group()):04X} at character {found.start()}: on the "
            "command line, a byte that is not UTF-8); give UTF-8 text"
        )
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list | tuple) else ()
    return next((found for found in map(_not_unicode, items) if found is not None), None)


def _type_ok(ispec: InputSpec, value: Any) -> bool:
    if value is None:
        return not ispec.required
    if ispec.type in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, INPUT_TYPES[ispec.type])


def as_budget(budget: Budget | Mapping[str, Any] | None) -> Budget | None:
    """``budget`` as a :class:`Budget`: a mapping (``{"calls": 40}``, as a graph's ``stop`` writes one) is read as
    one, checked, so that a script need not import the class; anything else is refused saying what it takes."""
    if budget is None or isinstance(budget, Budget):
        return budget
    if isinstance(budget, Mapping):
        try:
            return Budget.model_validate(dict(budget))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'budget'}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise ConfigError(
                f"budget {dict(budget)!r}: {problems} (a budget has calls, tokens, cost_usd, wall_s)"
            ) from None
    raise ConfigError(
        f"budget: expected a Budget (agentmesh.spec.stop.Budget) or a mapping such as {{'calls': 40}}, got "
        f"{type(budget).__name__} {budget!r:.80}"
    )


def listener_list(listeners: Iterable[Listener] | Listener | None) -> list[Listener]:
    """The run's listeners as a list: one callable given alone (``listeners=print``) is taken as the only one,
    rather than failing with "object is not iterable"; anything that is neither is refused by name."""
    if listeners is None:
        return []
    if callable(listeners):
        return [listeners]
    if isinstance(listeners, str | bytes) or not isinstance(listeners, Iterable):
        raise ConfigError(
            f"listeners: expected callables taking (kind, data), or a list of them, got {type(listeners).__name__}"
        )
    found = list(listeners)
    bad = [x for x in found if not callable(x)]
    if bad:
        raise ConfigError(f"listeners: each must be a callable taking (kind, data), got {type(bad[0]).__name__}")
    return found


def run_budgets(spec: GraphSpec, extra: Budget | None) -> list[Budget]:
    """The budgets a run is held to: those in the graph's stop policy, and the one the caller gave (``budget=``)."""
    found = [p for p in iter_policies(spec.stop) if isinstance(p, Budget)] if spec.stop else []
    return [*found, *([extra] if extra else [])]
