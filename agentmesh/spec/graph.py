"""Graph specs: a team of agents, the nodes (operators) they work in, the edges between nodes, when to stop.

The same objects come from YAML (:func:`agentmesh.spec.loader.load_graph`) or are built in Python, and dump back
to YAML that loads to an equal spec. Structural checks are pydantic's; the cross-references (unknown agent or
node, a cycle the operators do not allow, a template variable nobody provides) are :meth:`GraphSpec.problems`,
each with the path of the field at fault, so the loader can point at the file and line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_serializer, model_validator

from agentmesh._yaml import Loc
from agentmesh.spec.agent import AgentCard
from agentmesh.spec.operators import (
    COMMON_OUTPUTS,
    COMMON_VARIABLES,
    BranchParams,
    LoopParams,
    OperatorParams,
    RankParams,
    ScoreParams,
    VoteParams,
    operator_names,
    operator_params,
    unknown_operator,
)
from agentmesh.spec.stop import AllOf, AnyOf, Budget, Consensus, MaxRounds, ScoreThreshold, StopPolicy, iter_policies
from agentmesh.spec.templates import (
    TemplateSyntaxProblem,
    guarded_variables,
    node_references,
    template_variables,
)

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
_POLICY_TYPES = (AnyOf, AllOf, Consensus, ScoreThreshold, MaxRounds, Budget)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_RESERVED_NODES = {"START", "END", "__start__", "__end__"}
#: What a loop node's output copies from its last body node's, when that node has it (the ``loop`` operator).
_LOOP_PASSES_ON = frozenset({"answers", "answer", "value", "text", "scores"})


class Problem(BaseModel):
    """One thing wrong with a spec: where (a field path) and what was expected."""

    model_config = ConfigDict(frozen=True)

    loc: Loc
    message: str

    @property
    def field(self) -> str:
        return _dotted(self.loc)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
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


class NodeSpec(BaseModel):
    """A node: an operator name and its parameters, written flat in YAML (``{op: rounds, rounds: 3, ...}``).

    In Python the same flat form works as keywords (``NodeSpec(op="call", agent="solver")``), and so does the
    parameters given apart, as a mapping or the operator's parameter model (``NodeSpec(op="loop", params={...})``).
    """

    model_config = ConfigDict(frozen=True)

    op: str
    description: str = ""
    params: OperatorParams

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "op" not in data:
            raise ValueError(f"a node needs 'op' (one of {', '.join(operator_names())})")
        op = data["op"]
        params_model = operator_params(str(op))
        if params_model is None:
            raise ValueError(unknown_operator(op))
        nested = data.get("params")
        if isinstance(nested, OperatorParams):
            if not isinstance(nested, params_model):
                wrong = type(nested).__name__
                raise ValueError(f"params of a {op!r} node must be {params_model.__name__}, not {wrong}")
            return data
        rest = {k: v for k, v in data.items() if k not in ("op", "description", "params")}
        if isinstance(nested, Mapping):
            rest = {**nested, **rest}
        elif nested is not None:
            raise ValueError(
                f"params of a {op!r} node: expected a mapping or {params_model.__name__}, got {type(nested).__name__}"
            )
        return {"op": op, "description": data.get("description", ""), "params": params_model.model_validate(rest)}

    @model_serializer(mode="plain")
    def _dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op}
        if self.description:
            out["description"] = self.description
        out.update(self.params.model_dump(mode="json", by_alias=True, exclude_defaults=True))
        return out


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

    def problems(self) -> list[Problem]:
        """Every cross-reference problem, each with the path of its field."""
        out: list[Problem] = []
        if not _NAME.match(self.name):
            out.append(Problem(loc=("name",), message="expected letters, digits, '_' or '-'"))
        if self.version > SPEC_VERSION:
            out.append(Problem(loc=("version",), message=f"this agentmesh reads spec version {SPEC_VERSION}"))
        for key, card in self.agents.items():
            if card.name != key:
                out.append(Problem(loc=("agents", key, "name"), message=f"card name {card.name!r} differs from key"))
            several = card.samples_problem()
            if several is not None:
                out.append(Problem(loc=("agents", key, "sampling", "n"), message=several))
        for node_name in self.nodes:
            if node_name in _RESERVED_NODES or not _NAME.match(node_name):
                out.append(Problem(loc=("nodes", node_name), message="node names are identifiers, not START/END"))
        out.extend(
            reference_problems(
                list(self.agents), list(self.nodes), {n: node.params for n, node in self.nodes.items()}, self.edges
            )
        )
        if not out:
            out.extend(self._cycle_problems())
            out.extend(self._template_problems())
            out.extend(self._stop_policy_problems())
            out.extend(self._loop_body_problems())
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
        return out

    def _cycle_problems(self) -> list[Problem]:
        """Edges must not form a cycle, nor may a branch route back to a node before it: work is repeated by
        operators that say when to stop (``loop``, ``rounds``), never by an open-ended cycle."""
        g: nx.DiGraph[str] = nx.DiGraph(self.edges)
        g.add_nodes_from(self.nodes)
        advice = "repeat work with a 'loop' node (op: loop) or 'rounds'"
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            pass
        else:
            path = " -> ".join([str(cycle[0][0]), *(str(e[1]) for e in cycle)])
            last = (cycle[-1][0], cycle[-1][1])
            index = self.edges.index(last) if last in self.edges else 0
            return [Problem(loc=("edges", index), message=f"edges form a cycle ({path}); {advice}")]
        routes: dict[tuple[str, str], str] = {}
        for name, node in self.nodes.items():
            if isinstance(node.params, BranchParams):
                for field, target in (("then", node.params.then), ("else", node.params.otherwise)):
                    if target is not None and (name, target) not in g.edges:
                        routes[(name, target)] = field
                        g.add_edge(name, target)
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            return []
        path = " -> ".join([str(cycle[0][0]), *(str(e[1]) for e in cycle)])
        branch, target = next((u, v) for u, v, *_ in cycle if (u, v) in routes)
        return [
            Problem(
                loc=("nodes", branch, routes[(branch, target)]),
                message=f"branch {branch!r} routes back to {target!r}, which runs before it ({path}); {advice}",
            )
        ]

    def _template_problems(self) -> list[Problem]:
        out: list[Problem] = []
        base = COMMON_VARIABLES | set(self.inputs)
        reported: set[tuple[str, str]] = set()
        for node_name, node in self.nodes.items():
            for field_path, agent_name in node.params.agents_used():
                available = base | node.params.provides_for(field_path)
                card = self.agents[agent_name]
                for field, source in (("prompt", card.prompt), ("system", card.system)):
                    if source is None:
                        continue
                    # (``nodes`` and ``inputs`` are read as the runtime's on purpose, and an operator's own variables
                    # may repeat an input so: op alu gives ``query``)
                    for var in sorted(template_variables(source) & set(_RUNTIME_VARIABLES) & set(self.inputs)):
                        if (agent_name, var) not in reported:
                            reported.add((agent_name, var))
                            out.append(_shadowed_input(("agents", agent_name, field), var))
                    for var in sorted(template_variables(source) - available - guarded_variables(source)):
                        if (agent_name, var) in reported:
                            continue
                        reported.add((agent_name, var))
                        out.append(
                            Problem(
                                loc=("agents", agent_name, field),
                                message=f"template uses undefined variable {var!r} (agent {agent_name!r} in node "
                                f"{node_name!r}, op {node.op!r}); available: {', '.join(sorted(available))}",
                            )
                        )
                    for message in self._node_reference_problems(source):
                        if (agent_name, message) not in reported:
                            reported.add((agent_name, message))
                            out.append(Problem(loc=("agents", agent_name, field), message=message))
        # a condition sees the inputs, ``inputs`` and ``nodes`` (as the branch operator renders it): a misspelt
        # name there would otherwise fail the run at the branch, after the model calls of every node before it
        condition_variables = set(self.inputs) | {"inputs", "nodes"}
        for node_name, node in self.nodes.items():
            if isinstance(node.params, BranchParams):
                loc = ("nodes", node_name, "condition")
                try:
                    condition = node.params.condition_template()
                    messages = [
                        f"condition uses undefined variable {var!r}; available: "
                        f"{', '.join(sorted(condition_variables))}"
                        for var in sorted(
                            template_variables(condition) - condition_variables - guarded_variables(condition)
                        )
                    ]
                    messages += self._node_reference_problems(condition)
                except TemplateSyntaxProblem as exc:
                    messages = [f"condition is not a valid Jinja2 expression or template: {exc}"]
                out += [Problem(loc=loc, message=message) for message in messages]
        return out

    def _loop_body_problems(self) -> list[Problem]:
        """Edges and branch routes that enter or leave a loop's body. The loop runs its body (a chain back to the
        loop node); an edge into a body node ran it a second time outside the loop, and an edge out of one ran its
        target after every iteration rather than once after the loop."""
        owner: dict[str, str] = {}
        for name, node in self.nodes.items():
            if isinstance(node.params, LoopParams):
                for member in node.params.body:
                    owner.setdefault(member, name)
        out: list[Problem] = []
        for i, (a, b) in enumerate(self.edges):
            for j, end in ((1, b), (0, a)):
                if end in owner:
                    loop = owner[end]
                    if j == 1:
                        why, hint = f"an edge into it would also run it outside the loop; connect [{a}, {loop}]", ""
                    else:
                        why, hint = f"an edge out of it would run {b!r} after every iteration", f"[{loop}, {b}]"
                        why += f"; connect {hint} to run it once after the loop"
                    out.append(
                        Problem(
                            loc=("edges", i, j),
                            message=f"node {end!r} is in the body of loop {loop!r}, which runs it: {why}",
                        )
                    )
                    break
        for name, node in self.nodes.items():
            if isinstance(node.params, BranchParams):
                for field, target in (("then", node.params.then), ("else", node.params.otherwise)):
                    if name in owner and target is not None and target not in owner:
                        # the body chains on to the loop node whatever the branch says: its route ran the target
                        # beside every next iteration, and the loop's answer was the branch's (none)
                        out.append(
                            Problem(
                                loc=("nodes", name, field),
                                message=f"branch {name!r} is in the body of loop {owner[name]!r}, which goes on to "
                                f"its next iteration whatever the branch says: the route to {target!r} would run "
                                f"it beside every iteration; take it out of the body and branch after the loop (an "
                                f"edge [{owner[name]}, {name}]), or decide inside a function node",
                            )
                        )
                    elif target in owner:
                        out.append(
                            Problem(
                                loc=("nodes", name, field),
                                message=f"node {target!r} is in the body of loop {owner[target]!r}, which runs it; "
                                f"route to the loop node instead ({field}: {owner[target]})",
                            )
                        )
        return out

    def _stop_policy_problems(self) -> list[Problem]:
        """A ``score_threshold`` naming a node the graph does not have: the policy read the scores of the node it is
        attached to instead, so a misspelt name silently checked another node's scores."""
        places: list[tuple[Loc, Any]] = [(("stop",), self.stop)]
        for node_name, node in self.nodes.items():
            for field in type(node.params).model_fields:
                places.append((("nodes", node_name, field), getattr(node.params, field)))
        out: list[Problem] = []
        for loc, value in places:
            if not isinstance(value, _POLICY_TYPES):
                continue
            for leaf in iter_policies(value):
                if isinstance(leaf, Consensus) and loc[0] == "nodes":
                    out.extend(self._consensus_problems(leaf, loc))
                if isinstance(leaf, Consensus) and loc[0] == "stop":
                    most = self._most_answers()
                    if most is not None and most < leaf.min_agents:
                        out.append(
                            Problem(
                                loc=loc,
                                message=f"consensus needs {leaf.min_agents} agents (min_agents) and no node of the "
                                f"graph gives more than {most} answer{'s' * (most != 1)}, so it would never hold; "
                                "use another policy, or a team",
                            )
                        )
                if not isinstance(leaf, ScoreThreshold):
                    continue
                if leaf.node is not None and leaf.node not in self.nodes:
                    message = f"score_threshold reads node {leaf.node!r}, which the graph does not have; nodes: "
                    out.append(Problem(loc=loc, message=message + ", ".join(self.nodes)))
                elif leaf.node is not None and not self._may_score(leaf.node):
                    out.append(
                        Problem(
                            loc=loc,
                            message=f"score_threshold reads the scores of node {leaf.node!r}, and a "
                            f"{self.nodes[leaf.node].op!r} node has none, so it would never hold; name a scored node",
                        )
                    )
                elif leaf.node is None and loc[0] == "stop" and not any(self._may_score(n) for n in self.nodes):
                    out.append(
                        Problem(
                            loc=loc,
                            message="score_threshold without 'node' reads the scores of each node as it finishes, "
                            "and no node of the graph has scores, so it would never hold; add a scored node "
                            "(op: score) or use another policy",
                        )
                    )
                elif leaf.node is None and loc[0] == "nodes":
                    # without a node it reads the output it is checked on: a loop's last body node's, else its own
                    owner = self.nodes[str(loc[1])]
                    read = owner.params.body[-1] if isinstance(owner.params, LoopParams) else str(loc[1])
                    outputs = type(self.nodes[read].params).outputs
                    if outputs is not None and "scores" not in outputs:
                        out.append(
                            Problem(
                                loc=loc,
                                message=f"score_threshold without 'node' reads the scores of node {read!r}, and a "
                                f"{self.nodes[read].op!r} node has none, so it would never hold; name the scored "
                                "node (node: ...)",
                            )
                        )
        return out

    def _may_score(self, name: str) -> bool:
        """Whether node ``name`` may output ``scores`` (``True`` when its operator does not say what it outputs)."""
        outputs = type(self.nodes[name].params).outputs
        return outputs is None or "scores" in outputs

    def _most_answers(self) -> int | None:
        """The most answers any node of the graph can give (what a graph-level consensus counts), or ``None`` when
        some node's count is not known before the run (a function's, a user operator's, a method's own)."""
        counts: list[int] = []
        for name in self.nodes:
            count = self._answers_of(name, depth=0)
            if count is None:
                return None
            counts.append(count)
        return max(counts, default=0)

    def _answers_of(self, name: str, depth: int) -> int | None:
        node = self.nodes[name]
        params = node.params
        outputs = type(params).outputs
        if outputs is not None and "answers" not in outputs:
            return 0  # (a branch's route, a loop check without a body that answers is counted through its body)
        if node.op in ("call", "team", "rounds"):
            return sum(1 for path, _ in params.agents_used() if path == "agent" or path.startswith("agents["))
        if depth > len(self.nodes):
            return None
        if isinstance(params, LoopParams):
            return self._answers_of(params.body[-1], depth + 1)
        if isinstance(params, VoteParams | ScoreParams | RankParams):
            return self._answers_of(params.source, depth + 1)
        return None

    def _consensus_problems(self, policy: Consensus, loc: Loc) -> list[Problem]:
        """A consensus over fewer answers than its ``min_agents`` never holds: a loop whose body ends in one
        ``call`` ran to its last iteration without a word. Checked where the answers are known before the run (a
        ``call``, ``team`` or ``rounds`` node)."""
        owner = self.nodes[str(loc[1])]
        read = owner.params.body[-1] if isinstance(owner.params, LoopParams) else str(loc[1])
        node = self.nodes[read]
        if node.op not in ("call", "team", "rounds"):
            return []
        answers = sum(1 for path, _ in node.params.agents_used() if path == "agent" or path.startswith("agents["))
        if answers >= policy.min_agents:
            return []
        return [
            Problem(
                loc=loc,
                message=f"consensus needs {policy.min_agents} agents (min_agents) and node {read!r} gives "
                f"{answers} answer{'s' * (answers != 1)}, so it would never hold; end the loop on a team, or use "
                "another policy",
            )
        ]

    def _node_reference_problems(self, source: str) -> list[str]:
        """What is wrong with the ``nodes.<node>.<key>`` a template reads: a node the graph does not have, or a
        key its operator never outputs (when the operator says what it outputs)."""
        out: list[str] = []
        for node_name, key in dict.fromkeys(node_references(source)):
            node = self.nodes.get(node_name)
            if node is None:
                out.append(
                    f"template reads nodes.{node_name}, but the graph has no node {node_name!r}; "
                    f"nodes: {', '.join(self.nodes)}"
                )
                continue
            outputs = self._outputs_of(node_name)
            if key is None or outputs is None or key in outputs | COMMON_OUTPUTS:
                continue
            passed_on = ""
            if isinstance(node.params, LoopParams) and key in _LOOP_PASSES_ON:
                last = node.params.body[-1]
                passed_on = (
                    f" (a loop passes on its last body node's {key}, and node {last!r} (op "
                    f"{self.nodes[last].op!r}) has none)"
                )
            out.append(
                f"template reads nodes.{node_name}.{key}, but node {node_name!r} (op {node.op!r}) outputs "
                f"{', '.join(sorted(outputs | COMMON_OUTPUTS))}{passed_on}"
            )
        return out

    def _outputs_of(self, name: str, depth: int = 0) -> frozenset[str] | None:
        """The keys node ``name`` may output (``None``: not known before the run). A loop's are its own count and,
        of the keys it passes on, those its last body node has: ``nodes.<loop>.text`` after a body ending in a
        ``score`` node passed this check and failed the run at the node reading it, after the loop's calls."""
        params = self.nodes[name].params
        outputs = type(params).outputs
        if outputs is None or not isinstance(params, LoopParams) or depth > len(self.nodes):
            return outputs
        last = self._outputs_of(params.body[-1], depth + 1)
        return outputs if last is None else (outputs - _LOOP_PASSES_ON) | (last & _LOOP_PASSES_ON)

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


#: What the runtime gives every prompt under a name an input may well have, in the input's place.
_RUNTIME_VARIABLES = {"agent": "the agent's name", "role": "the agent's role"}


def _shadowed_input(loc: Loc, var: str) -> Problem:
    """A template reads ``var``, which is both an input and a variable the runtime gives every prompt (``agent``,
    ``role``). The runtime's wins, so ``You are {{ role }}.`` with an input ``role`` rendered the agent's role
    (often nothing), silently."""
    given = _RUNTIME_VARIABLES[var]
    return Problem(
        loc=loc,
        message=f"template reads {var!r}, which names an input of the graph and also {given}; the template gets "
        f"the latter, not the input: read the input as inputs.{var}, or rename it",
    )


def reference_problems(
    agents: Sequence[str],
    nodes: Sequence[str],
    params: Mapping[str, OperatorParams],
    edges: Iterable[Any],
) -> list[Problem]:
    """Names that point nowhere: agents a node uses, nodes a node reads, edge ends.

    ``params`` holds the operator parameters of the nodes that could be read, some perhaps only in part (a node
    whose parameters are invalid is still a known name in ``nodes``), so the loader reports these together with
    the type problems of the file, rather than one kind per attempt. Edges that are not pairs are left to the
    type checks.
    """
    out: list[Problem] = []
    known_agents, known_nodes = set(agents), set(nodes)
    agent_list, node_list = ", ".join(sorted(agents)) or "none", ", ".join(nodes)
    for node_name, node_params in params.items():
        for path, agent in node_params.agents_used():
            # (a name that is not a string is a type problem, reported as such by the caller)
            if isinstance(agent, str) and agent not in known_agents:
                out.append(
                    Problem(
                        loc=("nodes", node_name, *_split(path)),
                        message=f"unknown agent {agent!r}; known agents: {agent_list}",
                    )
                )
        for path, ref in node_params.nodes_read():
            if isinstance(ref, str) and ref not in known_nodes:
                out.append(
                    Problem(
                        loc=("nodes", node_name, *_split(path)), message=f"unknown node {ref!r}; nodes: {node_list}"
                    )
                )
    for i, edge in enumerate(edges):
        if not isinstance(edge, list | tuple) or len(edge) != 2:
            continue
        for j, end in enumerate(edge):
            if isinstance(end, str) and end not in known_nodes:
                out.append(Problem(loc=("edges", i, j), message=f"unknown node {end!r}; nodes: {node_list}"))
    return out


def _split(path: str) -> tuple[str | int, ...]:
    """``"rank.ranker"`` -> ("rank", "ranker"); ``"agents[2]"`` -> ("agents", 2)."""
    out: list[str | int] = []
    for part in path.split("."):
        m = re.fullmatch(r"([^\[]+)((?:\[\d+\])*)", part)
        if not m:
            out.append(part)
            continue
        out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(out)
