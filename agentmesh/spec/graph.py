"""Graph specs: a team of agents, the nodes (operators) they work in, the edges between nodes, when to stop.

The same objects come from YAML (:func:`agentmesh.spec.loader.load_graph`) or are built in Python, and dump back
to YAML that loads to an equal spec. Structural checks are pydantic's; the cross-references (unknown agent or
node, a cycle the operators do not allow, a template variable nobody provides) are :meth:`GraphSpec.problems`,
each with the path of the field at fault, so the loader can point at the file and line. This module holds the
model and the order of those checks; the checks themselves are :mod:`agentmesh.spec.checks`, a node's spec
:mod:`agentmesh.spec.node`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from agentmesh.spec.agent import AgentCard
from agentmesh.spec.checks import (
    Problem,
    cycle_problems,
    loop_body_problems,
    model_problems,
    order_problems,
    reference_problems,
    stop_policy_problems,
    template_problems,
)
from agentmesh.spec.node import NodeSpec
from agentmesh.spec.operators import BranchParams, LoopParams
from agentmesh.spec.run_order import template_order_problems
from agentmesh.spec.stop import StopPolicy

SPEC_VERSION = 1
#: What each input type accepts (a boolean is not an integer or a number, though Python says it is); the spec's
#: defaults are checked against it at load and a run's inputs when it starts.
INPUT_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "object": (dict,),
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_RESERVED_NODES = {"START", "END", "__start__", "__end__"}
#: The pass-through steps the runtime adds after a node ``x``: ``x__done`` (a repeating node's or a loop's exit),
#: ``x__then``/``x__else`` (a branch's route into a join, :mod:`agentmesh.spec.joins`); a node of that name would clash.
_STEPS = ("done", "then", "else")


def name_problems(name: Any, nodes: Iterable[Any]) -> list[Problem]:
    """The graph's name and its nodes' names that are not identifiers: checked with a spec's type problems (they
    need nothing else resolved) and again with its cross-references."""
    out: list[Problem] = []
    if isinstance(name, str) and not _NAME.match(name):
        out.append(Problem(loc=("name",), message="expected letters, digits, '_' or '-'"))
    names = list(nodes)
    for node_name in names:
        if node_name in _RESERVED_NODES or not isinstance(node_name, str) or not _NAME.match(node_name):
            out.append(Problem(loc=("nodes", node_name), message="node names are identifiers, not START/END"))
            continue
        stem, _, step = node_name.rpartition("__")
        if step in _STEPS and stem in names:
            out.append(
                Problem(
                    loc=("nodes", node_name),
                    message=f"'{node_name}' is the name of a step the runtime adds after node {stem!r} (its "
                    f"'{step}'); name the node otherwise",
                )
            )
    return out


class InputSpec(BaseModel):
    """A graph input: its type, whether it must be given, its default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["string", "integer", "number", "boolean", "list", "object"] = "string"
    description: str = ""
    required: bool = True
    default: Any = None

    @model_validator(mode="after")
    def _default_of_its_type(self) -> InputSpec:
        # a run takes the default as it is: "no" for a boolean was true in every prompt's {% if %}, "three" for an
        # integer failed the first prompt that added to it
        kinds = INPUT_TYPES[self.type]
        wrong = isinstance(self.default, bool) and bool not in kinds
        if self.default is not None and (wrong or not isinstance(self.default, kinds)):
            raise ValueError(f"default {self.default!r} is not of the input's type {self.type}")
        return self


class GraphSpec(BaseModel):
    """A whole graph. ``agents`` maps names to cards; ``edges`` are ``[from, to]`` pairs between nodes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    version: int = SPEC_VERSION
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    agents: dict[str, AgentCard] = Field(default_factory=dict)
    nodes: dict[str, NodeSpec] = Field(min_length=1)
    edges: list[tuple[str, str]] = Field(default_factory=list)
    stop: StopPolicy | None = None
    output: str | None = Field(default=None, description="Node whose answer is the run's answer (default: the sink).")
    model: str | None = Field(default=None, description="Default model reference for this graph.")

    @model_validator(mode="before")
    @classmethod
    def _agent_names(cls, data: Any) -> Any:
        """Inline cards may omit ``name``: the key is the name."""
        if isinstance(data, dict) and isinstance(data.get("agents"), dict):
            agents = {}
            for key, card in data["agents"].items():
                if isinstance(card, dict) and "name" not in card:
                    card = {"name": key, **card}
                agents[key] = card
            data = {**data, "agents": agents}
        return data

    @model_validator(mode="after")
    def _cross_references(self, info: ValidationInfo) -> GraphSpec:
        if info.context and info.context.get("defer_checks"):
            return self
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(f"{p.field}: {p.message}" for p in problems))
        return self

    # --- checks -----------------------------------------------------------------------------------------

    def problems(self, *, stored: bool = False) -> list[Problem]:
        """Every cross-reference problem, each with the path of its field. ``stored``: the spec a run stored, read
        back (see :func:`~agentmesh.spec.loader.stored_graph`): what only new runs are refused is not a problem."""
        out: list[Problem] = name_problems(self.name, self.nodes)
        if self.version > SPEC_VERSION:
            out.append(Problem(loc=("version",), message=f"this agentmesh reads spec version {SPEC_VERSION}"))
        for key, card in self.agents.items():
            if card.name != key:
                out.append(Problem(loc=("agents", key, "name"), message=f"card name {card.name!r} differs from key"))
            several = None if stored else card.samples_problem()
            if several is not None:
                out.append(Problem(loc=("agents", key, "sampling", "n"), message=several))
        if not stored:  # (a provider a stored run's module registered need not be imported to read the run)
            out.extend(model_problems(self))
        unresolved = reference_problems(
            list(self.agents), list(self.nodes), {n: node.params for n, node in self.nodes.items()}, self.edges
        )
        out.extend(unresolved)
        # every name resolves: the checks across nodes can follow them (a badly spelt name, a graph's or a node's,
        # resolves as it is, and hid every problem below until it was fixed)
        resolved = not unresolved
        if resolved:
            out.extend(cycle_problems(self))
            out.extend(template_problems(self))
            out.extend(stop_policy_problems(self))
            out.extend(loop_body_problems(self))
        if self.output is not None and self.output not in self.nodes:
            out.append(Problem(loc=("output",), message=f"unknown node {self.output!r}"))
        elif self.output is None and not out:
            sinks = self.final_nodes()
            if len(sinks) != 1:
                out.append(
                    Problem(
                        loc=("output",),
                        message=f"the graph has {len(sinks)} final nodes ({', '.join(sinks)}); name one with 'output'",
                    )
                )
        if resolved:  # (after the final nodes: a missing edge often leaves two, said first)
            out.extend(order_problems(self))
            if not stored:  # (a stored run that failed on it stays readable: shown, exported)
                out.extend(template_order_problems(self))
        return out

    # --- structure ----------------------------------------------------------------------------------------

    def structure(self) -> nx.DiGraph[str]:
        """The node graph: declared edges plus the routes operators add (branch targets, loop bodies)."""
        g: nx.DiGraph[str] = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from(self.edges)
        for name, node in self.nodes.items():
            for path, ref in node.params.nodes_read():
                if path.startswith(("then", "else", "body")):
                    g.add_edge(name, ref, route=path)
        return g

    def final_nodes(self) -> list[str]:
        """The nodes after which a run ends: no declared edge leaves them and they route nowhere (a branch routes to
        its targets). A loop's body nodes never end a run -- each is followed by the next, the last by the loop's
        check -- and a loop is left only by its own edges, so a graph ending in a loop ends with the loop node."""
        followed = {a for a, _ in self.edges}
        for name, node in self.nodes.items():
            if isinstance(node.params, BranchParams):
                followed.add(name)
            if isinstance(node.params, LoopParams):
                followed.update(node.params.body)
        return [n for n in self.nodes if n not in followed]

    def output_node(self) -> str:
        """The node whose answer is the run's: ``output``, else the one final node."""
        return self.output if self.output is not None else self.final_nodes()[0]

    def spec_hash(self) -> str:
        """Hash of the canonical JSON dump: what a run records to tell which spec it ran."""
        return self.canonical()[1]

    def canonical(self) -> tuple[dict[str, Any], str]:
        """The spec as stored data (JSON, defaults left out) and its :meth:`spec_hash`, from one dump: a run
        stores both, and dumping a spec costs more than the rest of starting a run."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        return data, hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
