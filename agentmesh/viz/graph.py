"""Drawing graph specs: Mermaid flowchart text and a self-contained SVG.

Both drawings show the same thing, computed once by :func:`graph_flow`:

- ``START`` (with the graph's inputs) and ``END``;
- one box per node: its name, its operator with the key parameters (the number of rounds, a loop's
  bound), the agents it calls (a repeated agent once, with its count) and its stop/until/condition;
- declared edges solid; operator routes dashed and labelled: a branch's ``then``/``else``, a loop's way into its
  body (``iterate``), the body's chain and the way back to the loop's check (``check``); a node's data read
  from a node it has no edge from (``weights``) dotted;
- the output node (the run's answer) with a thick border, its way to ``END`` labelled ``answer``.

Where the runtime goes next follows ``agentmesh.runtime.compile``: nodes nobody reaches start from ``START``;
nodes that lead nowhere end at ``END``; a loop leaves through its declared edges (``done``) or ends; a branch
without ``else`` ends when the condition is false.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import yaml
from pydantic import BaseModel

from agentmesh.spec.graph import GraphSpec
from agentmesh.spec.operators import (
    BranchParams,
    CodeTestsParams,
    FunctionParams,
    LoopParams,
    OperatorParams,
    RankParams,
    RoundsParams,
    ScoreParams,
    VoteParams,
)
from agentmesh.spec.stop import AllOf, AnyOf, Budget, Consensus, MaxRounds, ScoreThreshold, StopPolicy
from agentmesh.viz.svg import Arrow, Box, Direction, EdgeStyle, Key, Line, shorten, svg_layers, wrap

START = "START"
#: The multiplication sign of repeat counts.
TIMES = "\u00d7"
END = "END"

FlowKind = Literal["edge", "route", "back", "reads"]

_ROUTE = re.compile(r"^(then|else|body)(?:\[(\d+)\])?")
_AGENT_OPS = {"call", "team", "rounds"}
_AGGREGATE_OPS = {"vote", "rank", "score"}
_CONTROL_OPS = {"branch", "loop"}
_CODE_OPS = {"code_tests", "function"}
#: (fill, stroke) per family of operators.
_PALETTE = {
    "agents": ("#e0f2fe", "#0369a1"),
    "aggregate": ("#dcfce7", "#15803d"),
    "control": ("#fef3c7", "#b45309"),
    "code": ("#f3e8ff", "#7e22ce"),
    "other": ("#f3f4f6", "#4b5563"),
}
_EDGE_COLOR = {"edge": "#374151", "route": "#b45309", "back": "#b45309", "reads": "#6b7280"}
#: What the legend says a family's colour and an arrow's kind mean.
_FAMILY_TEXT = {
    "agents": "calls agents",
    "aggregate": "vote, rank, score",
    "control": "branch, loop",
    "code": "code tests, function",
    "other": "other operator",
}
_KIND_TEXT = {"edge": "edge", "route": "route (branch, loop)", "reads": "reads a node's output"}
_WRAP = 34


@dataclass(frozen=True)
class FlowEdge:
    """One arrow of the drawing. ``kind``: a declared ``edge``, an operator ``route``, a ``back`` route (a loop's
    way back to its check), or a ``reads`` of a node's output without an edge."""

    src: str
    dst: str
    kind: FlowKind
    label: str = ""


@dataclass(frozen=True)
class NodeText:
    """What a node's box says."""

    name: str
    op: str
    operation: str
    agents: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    description: str = ""

    @property
    def family(self) -> str:
        if self.op in _AGENT_OPS:
            return "agents"
        if self.op in _AGGREGATE_OPS:
            return "aggregate"
        if self.op in _CONTROL_OPS:
            return "control"
        if self.op in _CODE_OPS:
            return "code"
        return "agents" if self.agents else "other"


# --- what to draw ----------------------------------------------------------------------------------------------


def _routes(params: OperatorParams) -> tuple[list[tuple[str, str]], dict[int, str], list[tuple[str, str]]]:
    """A node's references split like :meth:`GraphSpec.structure`: ``(then/else routes, body by index, reads)``."""
    routes: list[tuple[str, str]] = []
    body: dict[int, str] = {}
    reads: list[tuple[str, str]] = []
    for path, ref in params.nodes_read():
        m = _ROUTE.match(path)
        if m is None:
            reads.append((path, ref))
        elif m.group(1) == "body":
            body[int(m.group(2) or 0)] = ref
        else:
            routes.append((path, ref))
    return routes, body, reads


def graph_flow(spec: GraphSpec) -> list[FlowEdge]:
    """Every arrow of the drawing, ``START`` and ``END`` included, in a stable order."""
    declared = list(dict.fromkeys((str(a), str(b)) for a, b in spec.edges))
    declared_set = set(declared)
    flow: list[FlowEdge] = []
    loops: dict[str, list[str]] = {}
    branches: dict[str, set[str]] = {}
    for name, node in spec.nodes.items():
        routes, by_index, _ = _routes(node.params)
        if by_index:
            loops[name] = [by_index[i] for i in sorted(by_index)]
        if routes:
            branches[name] = {path.split("[")[0] for path, _ in routes}

    for a, b in declared:
        flow.append(FlowEdge(a, b, "edge", "done" if a in loops else ""))
    chained: set[tuple[str, str]] = set()
    for name, node in spec.nodes.items():
        routes, _, reads = _routes(node.params)
        for path, ref in routes:
            flow.append(FlowEdge(name, ref, "route", path))
        if name in loops:
            chain = loops[name]
            flow.append(FlowEdge(name, chain[0], "route", "iterate"))
            for a, b in itertools.pairwise(chain):
                chained.add((a, b))
                if (a, b) not in declared_set:
                    flow.append(FlowEdge(a, b, "route"))
            flow.append(FlowEdge(chain[-1], name, "back", "check"))
        for path, ref in reads:
            if (ref, name) not in declared_set:
                flow.append(FlowEdge(ref, name, "reads", path))

    entered = {e.dst for e in flow if e.kind in ("edge", "route")}
    leaving = {a for a, _ in declared} | {a for a, _ in chained} | {body[-1] for body in loops.values()}
    output = spec.output_node()
    head = [FlowEdge(START, n, "edge") for n in spec.nodes if n not in entered]
    tail: list[FlowEdge] = []
    for n in spec.nodes:
        answer = "answer" if n == output else ""
        if n in branches:
            if "else" not in branches[n]:
                tail.append(FlowEdge(n, END, "route", "else"))
        elif n in loops:
            if n not in leaving:
                tail.append(FlowEdge(n, END, "edge", f"done, {answer}" if answer else "done"))
        elif n not in leaving:
            tail.append(FlowEdge(n, END, "edge", answer))
    return head + flow + tail


def _short_policy(policy: StopPolicy, *, top: bool = True) -> str:
    if isinstance(policy, AnyOf | AllOf):
        members = policy.any if isinstance(policy, AnyOf) else policy.all
        text = (" or " if isinstance(policy, AnyOf) else " and ").join(_short_policy(p, top=False) for p in members)
        return text if top else f"({text})"
    if isinstance(policy, Consensus):
        return f"consensus {'>' if policy.strict else '≥'} {policy.fraction:.2g}"
    if isinstance(policy, ScoreThreshold):
        of = f" of {policy.node}" if policy.node else ""
        return f"{policy.reduce} score{of} ≥ {policy.min:g}"
    if isinstance(policy, MaxRounds):
        return f"{policy.rounds} rounds"
    if isinstance(policy, Budget):
        return str(policy)
    return str(policy)  # pragma: no cover - every leaf kind is handled above


def _agent_items(params: OperatorParams) -> list[str]:
    """``debater`` (three times: with its count), ``judge: critic``: the agents a node calls, in order."""
    counts: dict[tuple[str, str], int] = {}
    for path, agent in params.agents_used():
        role = "" if path.startswith("agent") else path.split(".")[-1].split("[")[0]
        counts[(role, agent)] = counts.get((role, agent), 0) + 1
    items = []
    named: set[str] = set()
    for (role, agent), count in counts.items():
        # a role is named before its first agent only: "writers: python_assistant" on each of six lines made a
        # candidate team's box a column of "writers:" and "judges:"
        text = f"{role}: {agent}" if role and role not in named else agent
        named.add(role)
        items.append(f"{text} {TIMES}{count}" if count > 1 else text)
    return items


def node_text(spec: GraphSpec, name: str) -> NodeText:
    """The text of node ``name``'s box."""
    node = spec.nodes[name]
    p = node.params
    operation = node.op
    notes: list[str] = []
    if isinstance(p, RoundsParams):
        operation = f"rounds {TIMES}{p.rounds}" + (", sequential" if p.activation == "sequential" else "")
        if p.rank is not None:
            by = p.rank.function or p.rank.ranker or "ranker"
            notes.append(f"keep {p.rank.keep} from round {p.rank.before_round} ({by})")
        if p.stop is not None:
            notes.append(f"stop: {_short_policy(p.stop)}")
    elif isinstance(p, LoopParams):
        operation = f"loop ≤{p.max_iterations}"
        notes.append(f"until {_short_policy(p.until)}")
    elif isinstance(p, BranchParams):
        # over up to three lines: cut at one line, "if inputs.hard and inputs.questio…" hid the test in a picture
        notes += word_lines(f"if {p.condition}", _WRAP, 3)
    elif isinstance(p, RankParams):
        operation = f"rank, keep {p.keep}" + (f" ({p.function})" if p.function else "")
    elif isinstance(p, VoteParams):
        operation = "weighted vote" if p.weights else "vote"
    elif isinstance(p, ScoreParams):
        operation = "score" + (f" ({p.function})" if p.function else "")
    elif isinstance(p, CodeTestsParams):
        operation = f"code_tests {p.timeout_s:g} s, {p.memory_mb} MB"
    elif isinstance(p, FunctionParams):
        operation = f"function {shorten(p.function, _WRAP - 9)}"
    return NodeText(
        name=name,
        op=node.op,
        operation=operation,
        agents=wrap(_agent_items(p), _WRAP),
        notes=notes,
        description=node.description,
    )


# --- Mermaid ---------------------------------------------------------------------------------------------------


def _mm(text: str) -> str:
    """Text for inside a quoted Mermaid label: HTML-significant characters as Mermaid entity codes."""
    out = []
    for ch in text:
        if ch in '"#&<>|' or ord(ch) < 32:
            out.append(f"#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def graph_mermaid(spec: GraphSpec, direction: Direction = "LR") -> str:
    """Mermaid ``flowchart`` text of ``spec`` (paste into any Mermaid renderer, e.g. GitHub Markdown)."""
    ids = {name: f"n{i}" for i, name in enumerate(spec.nodes)}
    ids[START], ids[END] = "START", "END"
    inputs = ", ".join(spec.inputs)
    lines = [f"flowchart {direction}", f"  %% graph {_mm(spec.name)}"]
    lines.append(f'  START(["START{"<br/><small>" + _mm(inputs) + "</small>" if inputs else ""}"])')
    families: dict[str, list[str]] = {}
    for name in spec.nodes:
        t = node_text(spec, name)
        parts = [f"<b>{_mm(name)}</b>", _mm(t.operation), *(_mm(a) for a in t.agents)]
        parts += [f"<i>{_mm(note)}</i>" for note in t.notes]
        lines.append(f'  {ids[name]}["{"<br/>".join(parts)}"]')
        families.setdefault(t.family, []).append(ids[name])
    lines.append('  END(["END"])')
    arrow = {"edge": "-->", "route": "-.->", "back": "-.->", "reads": "-.->"}
    for e in graph_flow(spec):
        label = e.label if e.kind != "reads" else f"reads {e.label}"
        text = f'|"{_mm(label)}"|' if label else ""
        lines.append(f"  {ids[e.src]} {arrow[e.kind]}{text} {ids[e.dst]}")
    for family, members in families.items():
        fill, stroke = _PALETTE[family]
        lines.append(f"  classDef {family} fill:{fill},stroke:{stroke},color:#111827")
        lines.append(f"  class {','.join(members)} {family}")
    lines.append("  classDef terminal fill:#1f2937,stroke:#1f2937,color:#ffffff")
    lines.append("  class START,END terminal")
    lines.append("  classDef output stroke-width:3px")
    lines.append(f"  class {ids[spec.output_node()]} output")
    return "\n".join(lines) + "\n"


# --- SVG -------------------------------------------------------------------------------------------------------


#: A stop policy's classes: a tooltip says the rule in words (``str``), as a run's stop reason does.
_POLICIES = (AnyOf, AllOf, Consensus, ScoreThreshold, MaxRounds, Budget)


def _flow(value: object) -> str:
    """``value`` as a graph spec writes it, in YAML's flow style (``[a, b]``, ``{k: v}``, ``true``, ``null``): the
    tooltips showed Python's reprs (``['a', 'b']``, ``False``, ``None``), which no spec file contains."""
    if isinstance(value, _POLICIES):
        # the rule in words, as a run's stop reason says it, then every setting it takes, defaults included (the
        # words leave some out: a consensus's min_agents, a score threshold's node)
        return f"{value}\n  = {_flow(_policy_settings(value))}"
    if isinstance(value, str):
        return value  # a condition, a function's name: as written, unquoted and with its lines
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    # YAML's own writer: it quotes what would read otherwise ("I'm sorry, I can't" inside a mapping)
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10**6)
    return text.removesuffix("\n...\n").strip()


def _policy_settings(policy: StopPolicy) -> object:
    """``policy`` in its YAML form (``{consensus: {...}}``) with every setting it takes, defaults too; fractions
    to four significant digits (2/3 is 0.6667, not 0.6666666666666666)."""
    if isinstance(policy, AnyOf):
        return {"any": [_policy_settings(p) for p in policy.any]}
    if isinstance(policy, AllOf):
        return {"all": [_policy_settings(p) for p in policy.all]}
    if isinstance(policy, MaxRounds):
        return {"max_rounds": policy.rounds}
    settings = {
        k: float(f"{v:.4g}") if isinstance(v, float) else v
        for k, v in policy.model_dump(exclude_none=True).items()
        if k != "kind"
    }
    return {policy.kind: settings}


def param_lines(params: OperatorParams) -> list[str]:
    """A node's parameters as its tooltip lists them: those its spec sets (to other than their defaults), each with
    its effective value. A setting written with its defaults (``stop: {consensus: {}}``, ``ratings: {}``) showed
    as ``{}``; it now says what it does (``consensus (> 0.667 of active agents agree)``) or which values it takes,
    marked "(defaults)" when it takes nothing but defaults."""
    lines = []
    given = params.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    names = {info.alias or name: name for name, info in type(params).model_fields.items()}
    for key, written in given.items():
        value = getattr(params, names[key]) if key in names else written
        text = _flow(value)
        if isinstance(value, BaseModel) and not isinstance(value, _POLICIES) and written == {}:
            text += " (defaults)"
        lines.append(f"{key}: {text}")
    return lines


def _tooltip(spec: GraphSpec, t: NodeText) -> str:
    lines = [f"{t.name} ({t.op})"]
    if t.description:
        lines.append(t.description)
    lines += param_lines(spec.nodes[t.name].params)
    return "\n".join(lines)


def graph_boxes(spec: GraphSpec) -> list[Box]:
    """``START``, one box per node, ``END``."""
    inputs = [Line(s, 11, color="#d1d5db") for s in wrap(list(spec.inputs), _WRAP)]
    boxes = [
        Box(
            START,
            (Line("START", 12, bold=True, color="#ffffff"), *inputs),
            fill="#1f2937",
            stroke="#1f2937",
            shape="pill",
            tooltip="inputs: " + (", ".join(spec.inputs) or "none"),
        )
    ]
    output = spec.output_node()
    for name in spec.nodes:
        t = node_text(spec, name)
        fill, stroke = _PALETTE[t.family]
        lines = [Line(name, 14, bold=True), Line(t.operation, 12, color="#374151")]
        lines += [Line(a, 12, color="#0c4a6e") for a in t.agents]
        lines += [Line(n, 11, italic=True, color="#4b5563") for n in t.notes]
        boxes.append(
            Box(
                name,
                tuple(lines),
                fill=fill,
                stroke=stroke,
                stroke_width=3.0 if name == output else 1.5,
                tooltip=_tooltip(spec, t) + ("\n(the run's answer)" if name == output else ""),
                min_width=110,
            )
        )
    boxes.append(
        Box(END, (Line("END", 12, bold=True, color="#ffffff"),), fill="#1f2937", stroke="#1f2937", shape="pill")
    )
    return boxes


def graph_arrows(spec: GraphSpec) -> list[Arrow]:
    out = []
    for e in graph_flow(spec):
        style: EdgeStyle = "solid" if e.kind == "edge" else "dotted" if e.kind == "reads" else "dashed"
        out.append(
            Arrow(e.src, e.dst, e.label, style=style, color=_EDGE_COLOR[e.kind], back=e.kind == "back", width=1.6)
        )
    return out


def graph_legend(spec: GraphSpec) -> list[Key]:
    """What the drawing's colours, borders and arrow styles mean, for those it uses: without it a reader had to
    guess why one box is amber and an arrow dotted."""
    families = list(dict.fromkeys(node_text(spec, name).family for name in spec.nodes))
    keys = [Key(_FAMILY_TEXT[f], fill=_PALETTE[f][0], stroke=_PALETTE[f][1]) for f in families]
    keys.append(Key("the run's answer", fill="#ffffff", stroke="#374151", stroke_width=3.0))
    kinds = list(dict.fromkeys("route" if e.kind == "back" else e.kind for e in graph_flow(spec)))
    for kind in ("edge", "route", "reads"):
        if kind in kinds:
            style: EdgeStyle = "solid" if kind == "edge" else "dotted" if kind == "reads" else "dashed"
            keys.append(Key(_KIND_TEXT[kind], kind="line", stroke=_EDGE_COLOR[kind], stroke_width=1.6, style=style))
    return keys


#: The description under a drawing's title: lines of about this many characters, at most this many lines.
DESCRIPTION_CHARS = 100
DESCRIPTION_LINES = 4


def description_lines(description: str) -> list[str]:
    """A graph's description as the lines under the drawing's title, broken between words; cut (with an ellipsis)
    only past :data:`DESCRIPTION_LINES` lines. It was one line cut at 110 characters, mid-word ("each layer
    seei…"), in a PNG where no tooltip shows the rest."""
    return word_lines(description, DESCRIPTION_CHARS, DESCRIPTION_LINES)


def word_lines(text: str, width: int, most: int) -> list[str]:
    """``text`` in lines of about ``width`` characters broken between words, at most ``most`` of them: the last one
    cut with an ellipsis when more is left (a word longer than two lines' width is cut too)."""
    lines = [shorten(line, 2 * width) for line in wrap(text.split(), width, sep=" ")]
    if len(lines) > most:
        lines = [*lines[: most - 1], shorten(" ".join(lines[most - 1 :]), width)]
    return lines


def graph_svg(spec: GraphSpec, direction: Direction = "LR", *, title: bool = True) -> str:
    """A standalone SVG drawing of ``spec`` (layers by ``networkx.topological_generations``)."""
    subtitle: list[str] = []
    if title:
        subtitle += description_lines(spec.description)
        facts = [f"output: {spec.output_node()}"]
        if spec.stop is not None:
            facts.append(f"stop: {_short_policy(spec.stop)}")
        subtitle.append(" · ".join(facts))
    return svg_layers(
        graph_boxes(spec),
        graph_arrows(spec),
        direction=direction,
        title=f"graph {spec.name}" if title else "",
        subtitle=subtitle,
        legend=graph_legend(spec),
        last=[END],
    )


__all__: Sequence[str] = [
    "END",
    "START",
    "TIMES",
    "FlowEdge",
    "NodeText",
    "graph_arrows",
    "graph_boxes",
    "graph_flow",
    "graph_legend",
    "graph_mermaid",
    "graph_svg",
    "node_text",
    "param_lines",
]
