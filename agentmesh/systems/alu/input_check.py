"""ALU's check of the targets a run names, before the run is stored (an input check: see
:func:`~agentmesh.runtime.arguments.register_input_check`).

Why: ``op: alu`` and the baselines' functions (``alu_targets``, ``alu_output_filter``) read their targets when
their node runs, after the run was stored, so ``-i target_set=<a set nobody created>`` left a failed run behind
(and the output filter's graph made its vanilla call first). Which target set the inputs name, and whether the
records given inline or in a file are valid, needs no model: it is checked here, before the run is stored, the
way a missing input is refused, with the store read and nothing written (no pin: the node pins the version it
reads when it runs, as before).

The check looks where the node will look, in the same order (:func:`~agentmesh.systems.alu.node.read_targets`): a
set of that name in the run's store, a set registered in this process, a JSONL file; inline records are checked
as the node checks them (:func:`~agentmesh.systems.alu.node.snapshot_from_input`, cached by content, so the node
does not check them twice).
"""

from __future__ import annotations

import asyncio
import inspect
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentmesh.errors import ConfigError
from agentmesh.runtime.arguments import register_input_check
from agentmesh.runtime.operators.registry import get_function
from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.operators import FunctionParams
from agentmesh.systems.alu.node import AluParams, snapshot_from_input
from agentmesh.systems.alu.registry import get_target_set
from agentmesh.systems.alu.targets import DEFAULT_MIN_ALIAS_LEN

if TYPE_CHECKING:  # (the store imports SQLAlchemy; a check is given one, opened by the run)
    from agentmesh.store import Store

__all__ = ["TARGET_FUNCTIONS", "check_target_inputs"]

TARGET_FUNCTIONS = ("alu_targets", "alu_output_filter")
"""The baselines' functions that read targets from the inputs as ``op: alu`` does (:mod:`.baselines`)."""

_SHOWN_SETS = 10
"""How many of the store's set names an error lists (a store may hold many)."""


def _argument(params: FunctionParams, name: str, fallback: Any) -> Any:
    """A target function's argument ``name`` as the node will call it: the node's ``args``, else the function's
    default (from its signature, so that the check reads the inputs the function reads, whatever its defaults)."""
    if name in params.args:
        return params.args[name]
    try:
        parameter = inspect.signature(get_function(params.function)).parameters.get(name)
    except (ConfigError, TypeError, ValueError):
        return fallback
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return fallback
    return parameter.default


def _target_readers(spec: GraphSpec) -> Iterator[tuple[str, str, str, int]]:
    """``(node, targets input, target_set input, min_alias_len)`` of every node of ``spec`` that reads targets."""
    for name, node in spec.nodes.items():
        params = node.params
        if isinstance(params, AluParams):
            yield name, params.targets_from, params.target_set_from, params.min_alias_len
        elif isinstance(params, FunctionParams) and params.function in TARGET_FUNCTIONS:
            min_alias_len = _argument(params, "min_alias_len", DEFAULT_MIN_ALIAS_LEN)
            if not isinstance(min_alias_len, int):
                continue  # the function refuses its own argument when its node runs, in its own words
            targets_from = _argument(params, "targets_from", "targets")
            target_set_from = _argument(params, "target_set_from", "target_set")
            yield name, str(targets_from), str(target_set_from), min_alias_len


def _stored_sets(store: Store) -> str:
    names = [s.name for s in store.list_target_sets()]
    shown = ", ".join(repr(n) for n in names[:_SHOWN_SETS]) + (", ..." if len(names) > _SHOWN_SETS else "")
    return f"its target sets: {shown}" if names else "it has no target sets yet"


def _in_process(name: str) -> bool:
    try:
        get_target_set(name)
    except KeyError:
        return False
    return True


def _is_file(name: str) -> bool:
    try:
        return Path(name).is_file()
    except OSError:  # a name too long for a file name: not a file
        return False


@register_input_check("alu")
async def check_target_inputs(spec: GraphSpec, inputs: Mapping[str, Any], store: Store) -> None:
    """Refuse, before the run is stored, targets that ALU's nodes (and its baselines') could not read: a target
    set that is in neither the run's store nor this process nor a file, or records (inline or in that file) that
    the node would refuse. Reads ``store``, writes nothing; returns at once for a graph without such a node."""
    seen: set[tuple[str, int]] = set()  # two nodes reading one input alike: checked once
    for node, targets_from, target_set_from, min_alias_len in _target_readers(spec):
        named = inputs.get(target_set_from)
        given, source = (target_set_from, named) if named else (targets_from, inputs.get(targets_from))
        if source is None:
            continue  # the node names what to give, in its own words
        key = (given, min_alias_len)
        if key in seen:
            continue
        seen.add(key)
        where = f"graph {spec.name!r}: input {given!r} (read by node {node!r})"
        if isinstance(source, str) and source.strip():
            if await asyncio.to_thread(store.has_target_set, source):
                continue  # the node reads (and pins) the set's version current when it runs
            if not _in_process(source) and not _is_file(source):
                sets = await asyncio.to_thread(_stored_sets, store)
                create = f"agentmesh targets add {shlex.quote(source)} --name NAME"
                raise ConfigError(
                    f"{where}: no target set {source!r} in the run's store ({sets}; create it with `{create}` or "
                    f"`agentmesh targets import {shlex.quote(source)} FILE.jsonl`), none registered in this process "
                    f"under that name, and no file {source!r}; nothing was run or stored",
                    graph=spec.name,
                    node=node,
                )
        try:  # a set registered in this process, a file or inline records: checked as the node will check them
            snapshot_from_input(source, min_alias_len, store_read=True)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}; nothing was run or stored", graph=spec.name, node=node) from None
