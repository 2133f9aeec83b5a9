"""Self-contained SVG drawing: text measurement, boxes, arrows and a layered (Sugiyama-style) layout.

No external tools and no fonts are needed to *write* the SVG: text widths are estimated from per-character
widths of DejaVu Sans / Verdana (generous, so text never overflows its box). Everything a viewer shows is
escaped XML.

The drawing is generic, so the graph-spec drawing (:mod:`agentmesh.viz.graph`) and, later, agent networks
(agents per round, greyed deactivated agents, box size by importance) use the same code:

- :class:`Line` — one line of text (size, weight, colour);
- :class:`Box` — a node: lines of text in a rectangle, pill or circle; fill, stroke, dashes, opacity, a
  ``scale`` that grows its minimum size, a tooltip;
- :class:`Arrow` — an edge: solid, dashed or dotted, colour, width, an optional label;
- :func:`assign_layers` — layers from the arrows (``networkx.topological_generations`` of the acyclic part);
- :func:`svg_layers` — lay out boxes in layers (given, or computed), order each layer to reduce crossings
  (barycenter sweeps), route arrows through the layers between (an arrow pointing back runs against the layers,
  from its source's back side to its target's front side), place labels in the gaps, and render.

Layout works in abstract coordinates: ``u`` runs along the layers (x for ``LR``, y for ``TD``) and ``v``
across them.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

import networkx as nx

Direction = Literal["LR", "TD"]
EdgeStyle = Literal["solid", "dashed", "dotted"]
Shape = Literal["rect", "pill", "circle"]

FONT_FAMILY = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
MONO_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"
LABEL_SIZE = 11.5
_LABEL_PAD_X = 4.0
_LABEL_PAD_Y = 2.0

_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#39;"))
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def esc(text: object) -> str:
    """``text`` as XML character data or attribute value: ``& < > " '`` escaped, invalid characters replaced."""
    s = _INVALID_XML.sub("\ufffd", str(text))
    for raw, entity in _ENTITIES:
        s = s.replace(raw, entity)
    return s


# --- text ------------------------------------------------------------------------------------------------------

_CHAR_EM: dict[str, float] = {
    **dict.fromkeys("ijl|!.,:;'`", 0.30),
    **dict.fromkeys('frt()[]{}/\\"-', 0.43),
    " ": 0.33,
    **dict.fromkeys("mwMW@%", 0.98),
}


def text_width(text: str, size: float, *, bold: bool = False, mono: bool = False) -> float:
    """Estimated rendered width of ``text`` at ``size`` px (slightly generous for DejaVu Sans / Verdana)."""
    if mono:
        return len(text) * 0.61 * size
    em = 0.0
    for ch in text:
        if ch in _CHAR_EM:
            em += _CHAR_EM[ch]
        elif ch.isupper():
            em += 0.73
        elif ch.isdigit():
            em += 0.65
        elif ord(ch) < 128:
            em += 0.62
        elif unicodedata.east_asian_width(ch) in ("W", "F"):
            em += 1.0
        elif unicodedata.combining(ch):
            continue
        else:
            em += 0.8
    return em * size * (1.1 if bold else 1.0)


def shorten(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (whitespace collapsed, an ellipsis when cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(1, limit - 1)].rstrip() + "…"


def wrap(items: Sequence[str], limit: int, sep: str = ", ") -> list[str]:
    """Join ``items`` with ``sep`` into lines of about ``limit`` characters (an item is never split)."""
    lines: list[str] = []
    current = ""
    for item in items:
        candidate = f"{current}{sep}{item}" if current else item
        if current and len(candidate) > limit:
            lines.append(current + sep.rstrip())
            current = item
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


@dataclass(frozen=True)
class Line:
    """One line of text inside a box."""

    text: str
    size: float = 13.0
    bold: bool = False
    italic: bool = False
    mono: bool = False
    color: str = "#111827"

    @property
    def height(self) -> float:
        return self.size * 1.35

    @property
    def width(self) -> float:
        return text_width(self.text, self.size, bold=self.bold, mono=self.mono)


@dataclass(frozen=True)
class Box:
    """A node: lines of text in a shape. ``scale`` multiplies the minimum size (e.g. by importance)."""

    id: str
    lines: tuple[Line, ...]
    fill: str = "#ffffff"
    stroke: str = "#4b5563"
    stroke_width: float = 1.5
    dashed: bool = False
    shape: Shape = "rect"
    opacity: float = 1.0
    scale: float = 1.0
    tooltip: str = ""
    min_width: float = 0.0
    min_height: float = 0.0
    pad_x: float = 12.0
    pad_y: float = 8.0

    def size(self) -> tuple[float, float]:
        text_w = max((line.width for line in self.lines), default=0.0)
        text_h = sum(line.height for line in self.lines)
        w = max(text_w + 2 * self.pad_x, self.min_width * self.scale)
        h = max(text_h + 2 * self.pad_y, self.min_height * self.scale)
        if self.shape == "pill":
            w += h * 0.4
        if self.shape == "circle":
            w = h = max(w, h, math.hypot(text_w + 8, text_h + 4))
        return w, h


@dataclass(frozen=True)
class Arrow:
    """An edge between two boxes (by id). ``back`` marks a way back (a loop's return): it is left out when
    layers are computed, so it never pushes its target after its source."""

    src: str
    dst: str
    label: str = ""
    style: EdgeStyle = "solid"
    color: str = "#4b5563"
    width: float = 1.5
    back: bool = False
    opacity: float = 1.0


# --- layout ----------------------------------------------------------------------------------------------------


def assign_layers(ids: Sequence[str], arrows: Sequence[Arrow], *, last: Collection[str] = ()) -> list[list[str]]:
    """Layers from the arrows: ``topological_generations`` of the acyclic part (arrows that would close a cycle,
    self-loops and ``back`` arrows are left out), sources moved next to their first successor, ``last`` ids in a
    final layer of their own. Within a layer, ids keep their order in ``ids``."""
    g: nx.DiGraph[str] = nx.DiGraph()
    g.add_nodes_from(ids)
    for a in arrows:
        if a.back or a.src == a.dst or g.has_edge(a.src, a.dst) or a.src in last:
            continue
        if nx.has_path(g, a.dst, a.src):
            continue
        g.add_edge(a.src, a.dst)
    rest = g.subgraph([n for n in ids if n not in last])
    layer: dict[str, int] = {}
    for i, generation in enumerate(nx.topological_generations(rest)):
        for n in generation:
            layer[n] = i
    for n in ids:
        if n in layer and rest.in_degree(n) == 0 and rest.out_degree(n) > 0:
            layer[n] = min(layer[s] for s in rest.successors(n)) - 1
    used = sorted(set(layer.values()))
    renumber = {old: new for new, old in enumerate(used)}
    layers: list[list[str]] = [[] for _ in used]
    for n in ids:
        if n in layer:
            layers[renumber[layer[n]]].append(n)
    tail = [n for n in ids if n in last]
    if tail:
        layers.append(tail)
    return layers


@dataclass
class _Node:
    id: str
    layer: int
    du: float  # size along the layers' axis
    dv: float  # size across
    box: Box | None = None  # None: a dummy point of a long arrow
    u: float = 0.0
    v: float = 0.0

    @property
    def dummy(self) -> bool:
        return self.box is None


@dataclass
class _Label:
    text: str
    u: float
    v: float
    color: str
    ext_u: float
    ext_v: float
    gap: int  # the gap (after layer ``gap``) it sits in; labels are kept apart per gap


@dataclass
class _Drawn:
    arrow: Arrow
    path: list[tuple[str, list[tuple[float, float]]]] = field(default_factory=list)  # (command, points) in (u, v)


@dataclass
class _Layout:
    """The state of one layout, phase by phase."""

    arrows: Sequence[Arrow]
    direction: Direction
    nodes: dict[str, _Node] = field(default_factory=dict)
    order: list[list[str]] = field(default_factory=list)
    chains: dict[int, list[str]] = field(default_factory=dict)  # arrow index -> ids in layer order
    reverse: set[int] = field(default_factory=set)  # chains drawn against the layer order
    arcs: list[int] = field(default_factory=list)  # arrows within one layer
    segments: list[tuple[str, str]] = field(default_factory=list)
    col: list[float] = field(default_factory=list)  # each layer's extent along u
    u_center: list[float] = field(default_factory=list)

    def label_gap(self, k: int) -> int:
        """The gap a chain's label sits in: the first one it crosses, in its own direction."""
        chain = self.chains[k]
        return self.nodes[chain[-2 if k in self.reverse else 0]].layer

    def edge(self, layer: int, sign: int) -> float:
        """The u of a layer column's front (``sign`` 1) or back (-1) edge."""
        return self.u_center[layer] + sign * self.col[layer] / 2


def _crossings(order: list[list[str]], segments: list[tuple[str, str]], layer_of: dict[str, int]) -> int:
    index = {n: i for layer in order for i, n in enumerate(layer)}
    by_layer: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for a, b in segments:
        by_layer[layer_of[a]].append((index[a], index[b]))
    total = 0
    for pairs in by_layer.values():
        for i, (a1, b1) in enumerate(pairs):
            for a2, b2 in pairs[i + 1 :]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _order_layers(order: list[list[str]], segments: list[tuple[str, str]], layer_of: dict[str, int]) -> list[list[str]]:
    """Barycenter sweeps, keeping the ordering with the fewest crossings."""
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for a, b in segments:
        succs[a].append(b)
        preds[b].append(a)
    best = [list(layer) for layer in order]
    best_count = _crossings(best, segments, layer_of)
    current = [list(layer) for layer in order]
    for sweep in range(8):
        down = sweep % 2 == 0
        layer_ids = range(1, len(current)) if down else range(len(current) - 2, -1, -1)
        for li in layer_ids:
            ref = current[li - 1] if down else current[li + 1]
            ref_index = {n: i for i, n in enumerate(ref)}
            neighbours = preds if down else succs
            here = {n: i for i, n in enumerate(current[li])}

            keys = {}
            for n in current[li]:
                near = [ref_index[m] for m in neighbours[n] if m in ref_index]
                keys[n] = sum(near) / len(near) if near else float(here[n])
            current[li] = sorted(current[li], key=keys.__getitem__)
        count = _crossings(current, segments, layer_of)
        if count < best_count:
            best, best_count = [list(layer) for layer in current], count
    return best


def _pack(ids: list[str], desired: dict[str, float | None], nodes: dict[str, _Node], gap: float) -> dict[str, float]:
    """Positions as near ``desired`` as possible, in order, without overlaps (average of two greedy passes).
    A node that wants nothing (``None``) sits tight against its neighbours."""
    if not ids:
        return {}

    def spacing(a: str, b: str) -> float:
        g = gap if not (nodes[a].dummy or nodes[b].dummy) else gap / 2
        return (nodes[a].dv + nodes[b].dv) / 2 + g

    # Nodes that want nothing want to sit right after the node before them (or before the first that wants).
    want: list[float | None] = [desired[n] for n in ids]
    for i in range(1, len(ids)):
        before = want[i - 1]
        if want[i] is None and before is not None:
            want[i] = before + spacing(ids[i - 1], ids[i])
    for i in range(len(ids) - 2, -1, -1):
        after = want[i + 1]
        if want[i] is None and after is not None:
            want[i] = after - spacing(ids[i], ids[i + 1])
    wants = [w if w is not None else 0.0 for w in want]
    fwd = [wants[0]]
    for i in range(1, len(ids)):
        fwd.append(max(wants[i], fwd[-1] + spacing(ids[i - 1], ids[i])))
    bwd = [wants[-1]]
    for i in range(len(ids) - 2, -1, -1):
        bwd.append(min(wants[i], bwd[-1] - spacing(ids[i], ids[i + 1])))
    bwd.reverse()
    return {n: (f + b) / 2 for n, f, b in zip(ids, fwd, bwd, strict=True)}


def _label_extent(text: str, direction: Direction) -> tuple[float, float]:
    w = text_width(text, LABEL_SIZE) + 2 * _LABEL_PAD_X
    h = LABEL_SIZE * 1.3 + 2 * _LABEL_PAD_Y
    return (w, h) if direction == "LR" else (h, w)


def _side(node: _Node, offset: float, sign: int) -> tuple[float, float]:
    """Where an arrow meets ``node``'s front (``sign`` 1) or back (-1) side, ``offset`` across the layers."""
    half = node.du / 2
    if node.box is not None and node.box.shape == "circle":
        half = math.sqrt(max(0.0, half * half - offset * offset))
    return node.u + sign * half, node.v + offset


def _separate(labels: list[_Label]) -> None:
    """Push labels that share a gap apart along ``v`` (each below the ones before it that it would overlap)."""
    labels.sort(key=lambda lab: lab.v)
    for i, lab in enumerate(labels):
        for prev in labels[:i]:
            if abs(prev.u - lab.u) < (prev.ext_u + lab.ext_u) / 2:
                lab.v = max(lab.v, prev.v + (prev.ext_v + lab.ext_v) / 2 + 2)


def svg_layers(
    boxes: Sequence[Box],
    arrows: Sequence[Arrow],
    *,
    layers: Sequence[Sequence[str]] | None = None,
    direction: Direction = "LR",
    title: str = "",
    subtitle: Sequence[str] = (),
    layer_labels: Sequence[str] = (),
    last: Collection[str] = (),
    layer_gap: float = 56.0,
    node_gap: float = 26.0,
    margin: float = 20.0,
) -> str:
    """Draw ``boxes`` in layers with ``arrows`` between them, as a standalone SVG document.

    ``layers`` (lists of box ids) fixes the layers, e.g. one per round; otherwise :func:`assign_layers` computes
    them (``last`` ids go in a final layer). Arrows between layers are routed through the layers between (an
    arrow pointing back leaves its source's back side and enters its target's front side); arrows within a
    layer and self-loops are arcs. ``layer_labels`` name the layers (``round 1``, ...).
    """
    by_id = {b.id: b for b in boxes}
    if len(by_id) != len(boxes):
        raise ValueError("box ids must be unique")
    for a in arrows:
        for end in (a.src, a.dst):
            if end not in by_id:
                raise ValueError(f"arrow {a.src!r} -> {a.dst!r}: no box {end!r}")
    if layers is None:
        layers = assign_layers([b.id for b in boxes], arrows, last=last)
    if sorted(box_id for layer in layers for box_id in layer) != sorted(by_id):
        raise ValueError("layers must list every box exactly once")

    lay = _Layout(arrows, direction)
    for li, layer in enumerate(layers):
        lay.order.append(list(layer))
        for box_id in layer:
            w, h = by_id[box_id].size()
            du, dv = (w, h) if direction == "LR" else (h, w)
            lay.nodes[box_id] = _Node(box_id, li, du, dv, by_id[box_id])
    _make_chains(lay)
    lay.order = _order_layers(lay.order, lay.segments, {n: node.layer for n, node in lay.nodes.items()})
    _place_u(lay, layer_gap)
    _place_v(lay, node_gap if direction == "LR" else node_gap * 1.4)
    drawn, labels = _route_chains(lay)
    for k in lay.arcs:
        _route_arc(lay, k, drawn, labels)
    by_gap: dict[int, list[_Label]] = defaultdict(list)
    for lab in labels:
        by_gap[lab.gap].append(lab)
    for group in by_gap.values():
        _separate(group)
    return _render(
        nodes=[n for n in lay.nodes.values() if not n.dummy],
        drawn=drawn,
        labels=labels,
        direction=direction,
        title=title,
        subtitle=subtitle,
        layer_heads=[(lab, lay.u_center[i]) for i, lab in enumerate(layer_labels[: len(lay.order)]) if lab],
        margin=margin,
    )


def _make_chains(lay: _Layout) -> None:
    """Arrows between layers become chains through a dummy point in each layer between; the others are arcs."""
    nodes = lay.nodes
    for k, a in enumerate(lay.arrows):
        ls, ld = nodes[a.src].layer, nodes[a.dst].layer
        if ls == ld:
            lay.arcs.append(k)
            continue
        lower, upper = (a.src, a.dst) if ls < ld else (a.dst, a.src)
        if ls > ld:
            lay.reverse.add(k)
        chain = [lower]
        for li in range(nodes[lower].layer + 1, nodes[upper].layer):
            d = f"\0{k}:{li}"
            nodes[d] = _Node(d, li, 0.0, 2.0)
            lay.order[li].append(d)
            chain.append(d)
        chain.append(upper)
        lay.chains[k] = chain
        lay.segments.extend(itertools.pairwise(chain))


def _place_u(lay: _Layout, layer_gap: float) -> None:
    """Layer columns along u, with gaps wide enough for the labels that sit in them."""
    lay.col = [max((lay.nodes[n].du for n in layer), default=0.0) for layer in lay.order]
    gaps = [layer_gap] * max(0, len(lay.order) - 1)
    for k in lay.chains:
        label = lay.arrows[k].label
        if label:
            ext_u, _ = _label_extent(label, lay.direction)
            gap = lay.label_gap(k)
            gaps[gap] = max(gaps[gap], ext_u + 2 * 14)
    for li, width in enumerate(lay.col):
        before = 0.0 if li == 0 else lay.u_center[-1] + lay.col[li - 1] / 2 + gaps[li - 1]
        lay.u_center.append(before + width / 2)
    for node in lay.nodes.values():
        node.u = lay.u_center[node.layer]


def _place_v(lay: _Layout, gap: float) -> None:
    """Each layer stacked, then pulled toward its neighbours' positions, sweeping forth and back."""
    neighbours: dict[str, list[str]] = defaultdict(list)
    for a, b in lay.segments:
        neighbours[a].append(b)
        neighbours[b].append(a)
    for layer in lay.order:
        for n, v in _pack(layer, dict.fromkeys(layer), lay.nodes, gap).items():
            lay.nodes[n].v = v
    for sweep in range(10):
        seq = range(len(lay.order)) if sweep % 2 == 0 else range(len(lay.order) - 1, -1, -1)
        for li in seq:
            desired: dict[str, float | None] = {}
            for n in lay.order[li]:
                near = [lay.nodes[m].v for m in neighbours[n]]
                desired[n] = sum(near) / len(near) if near else None
            for n, v in _pack(lay.order[li], desired, lay.nodes, gap).items():
                lay.nodes[n].v = v


def _fan_offsets(lay: _Layout) -> tuple[dict[tuple[int, str], float], dict[tuple[int, str], float]]:
    """Where several chains leave (or enter) one side of a box, spread them out; reversed ones on the low-v side."""
    out_off: dict[tuple[int, str], float] = {}
    in_off: dict[tuple[int, str], float] = {}
    for at, offsets, pick in ((0, out_off, 1), (-1, in_off, -2)):
        groups: dict[str, list[int]] = defaultdict(list)
        for k, chain in lay.chains.items():
            groups[chain[at]].append(k)
        for n, ks in groups.items():
            ks.sort(key={k: (lay.nodes[lay.chains[k][pick]].v, k not in lay.reverse) for k in ks}.__getitem__)
            step = min(12.0, lay.nodes[n].dv * 0.7 / max(1, len(ks)))
            for i, k in enumerate(ks):
                offsets[(k, n)] = (i - (len(ks) - 1) / 2) * step
    return out_off, in_off


def _route_chains(lay: _Layout) -> tuple[list[_Drawn], list[_Label]]:
    """Paths of the chains: straight within a layer's column, a smooth S across each gap."""
    out_off, in_off = _fan_offsets(lay)
    forward_pairs = {(c[0], c[-1]) for k, c in lay.chains.items() if k not in lay.reverse and len(c) == 2}
    drawn: list[_Drawn] = []
    labels: list[_Label] = []
    for k, chain in lay.chains.items():
        a = lay.arrows[k]
        first, final = lay.nodes[chain[0]], lay.nodes[chain[-1]]
        v_first, v_final = first.v + out_off[(k, first.id)], final.v + in_off[(k, final.id)]
        # Points alternate: [box side, column edge] (straight), then across a gap, and so on to the last box side.
        pts = [_side(first, out_off[(k, first.id)], +1), (lay.edge(first.layer, +1), v_first)]
        for d in chain[1:-1]:
            node = lay.nodes[d]
            pts += [(lay.edge(node.layer, -1), node.v), (lay.edge(node.layer, +1), node.v)]
        pts += [(lay.edge(final.layer, -1), v_final), _side(final, in_off[(k, final.id)], -1)]
        # A reversed arrow alongside a forward one between the same two boxes bows out to the low-v side.
        bow = 0.0
        if k in lay.reverse and len(chain) == 2 and (chain[0], chain[-1]) in forward_pairs:
            bow = min(28.0, (pts[2][0] - pts[1][0]) * 0.45)
        if k in lay.reverse:
            pts.reverse()
        item = _Drawn(a, [("M", [pts[0]])])
        for i in range(1, len(pts)):
            (ua, va), (ub, vb) = pts[i - 1], pts[i]
            if i % 2 == 0:  # across a gap
                half = (ub - ua) / 2
                item.path.append(("C", [(ua + half, va - bow), (ub - half, vb - bow), (ub, vb)]))
            elif abs(ub - ua) > 0.5:  # along a column (skipped when empty)
                item.path.append(("L", [(ub, vb)]))
        drawn.append(item)
        if a.label:
            (ua, va), (ub, vb) = pts[1], pts[2]
            ext_u, ext_v = _label_extent(a.label, lay.direction)
            v = (va + vb) / 2 - 0.75 * bow
            labels.append(_Label(a.label, (ua + ub) / 2, v, a.color, ext_u, ext_v, lay.label_gap(k)))
    return drawn, labels


def _route_arc(lay: _Layout, k: int, drawn: list[_Drawn], labels: list[_Label]) -> None:
    """A self-loop above its box; an arrow within a layer bulges into the gap after the layer."""
    a = lay.arrows[k]
    src, dst = lay.nodes[a.src], lay.nodes[a.dst]
    if a.src == a.dst:
        peak = src.v - src.dv / 2 - 26
        u0, u3 = src.u + src.du * 0.25, src.u - src.du * 0.25
        v0 = v3 = src.v - src.dv / 2
        c = (8 * peak - v0 - v3) / 6  # the curve's midpoint reaches the peak
        c1, c2 = (u0 + 14, c), (u3 - 14, c)
        spot = ((u0 + u3) / 2, peak)
    else:
        reach = lay.edge(src.layer, +1) + 36
        u0, v0 = src.u + src.du / 2, src.v
        u3, v3 = dst.u + dst.du / 2, dst.v
        c1, c2 = (reach, v0), (reach, v3)
        spot = ((u0 + 6 * reach + u3) / 8, (v0 + v3) / 2)
    drawn.append(_Drawn(a, [("M", [(u0, v0)]), ("C", [c1, c2, (u3, v3)])]))
    if a.label:
        ext_u, ext_v = _label_extent(a.label, lay.direction)
        labels.append(_Label(a.label, spot[0], spot[1], a.color, ext_u, ext_v, -1 - src.layer))


# --- rendering -------------------------------------------------------------------------------------------------


def _xy(u: float, v: float, direction: Direction) -> tuple[float, float]:
    return (u, v) if direction == "LR" else (v, u)


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _dash(style: EdgeStyle, width: float) -> str:
    if style == "dashed":
        return f' stroke-dasharray="{_f(6 * max(1.0, width / 1.5))} {_f(4 * max(1.0, width / 1.5))}"'
    if style == "dotted":
        return f' stroke-dasharray="1.5 {_f(3 + width)}" stroke-linecap="round"'
    return ""


def _marker_id(color: str) -> str:
    return "arrow-" + re.sub(r"[^A-Za-z0-9]", "", color)


def _render(
    *,
    nodes: list[_Node],
    drawn: list[_Drawn],
    labels: list[_Label],
    direction: Direction,
    title: str,
    subtitle: Sequence[str],
    layer_heads: list[tuple[str, float]],
    margin: float,
) -> str:
    # Bounds in (x, y), from boxes, path points (control points bound a Bezier curve) and labels.
    xs: list[float] = []
    ys: list[float] = []
    for n in nodes:
        x, y = _xy(n.u, n.v, direction)
        w, h = (n.du, n.dv) if direction == "LR" else (n.dv, n.du)
        xs += [x - w / 2, x + w / 2]
        ys += [y - h / 2, y + h / 2]
    for d in drawn:
        for _, pts in d.path:
            for u, v in pts:
                x, y = _xy(u, v, direction)
                xs.append(x)
                ys.append(y)
    for lab in labels:
        x, y = _xy(lab.u, lab.v, direction)
        w, h = (lab.ext_u, lab.ext_v) if direction == "LR" else (lab.ext_v, lab.ext_u)
        xs += [x - w / 2, x + w / 2]
        ys += [y - h / 2, y + h / 2]
    if not xs:
        xs, ys = [0.0], [0.0]
    head_h = 0.0
    if layer_heads:
        head_h = 22.0
        if direction == "LR":
            ys.append(min(ys) - head_h)
        else:
            xs.append(min(xs) - max(text_width(t, 12, bold=True) for t, _ in layer_heads) - 12)
    title_lines = ([Line(title, 16, bold=True)] if title else []) + [
        Line(s, 12, color="#4b5563") for s in subtitle if s
    ]
    title_h = sum(line.height for line in title_lines) + (10 if title_lines else 0)
    min_x, min_y = min(xs), min(ys)
    width = max(max(xs) - min_x, max((line.width for line in title_lines), default=0.0)) + 2 * margin
    height = max(ys) - min_y + 2 * margin + title_h
    ox, oy = margin - min_x, margin + title_h - min_y

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" font-family="{esc(FONT_FAMILY)}">',
    ]
    if title:
        out.append(f"<title>{esc(title)}</title>")
    colors = sorted({d.arrow.color for d in drawn})
    out.append("<defs>")
    for color in colors:
        out.append(
            f'<marker id="{_marker_id(color)}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
            f'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{esc(color)}"/></marker>'
        )
    out.append("</defs>")
    out.append(f'<rect x="0" y="0" width="{_f(width)}" height="{_f(height)}" fill="#ffffff"/>')
    y = margin
    for line in title_lines:
        y += line.height
        out.append(_text(margin, y - line.size * 0.3, line, anchor="start"))
    out.append(f'<g transform="translate({_f(ox)},{_f(oy)})">')

    for text, u in layer_heads:
        if direction == "LR":
            x, yy = u, min_y + 14
            out.append(_text(x, yy, Line(text, 12, bold=True, color="#6b7280"), anchor="middle"))
        else:
            x, yy = min_x + 4, u + 4
            out.append(_text(x, yy, Line(text, 12, bold=True, color="#6b7280"), anchor="start"))

    out.append('<g class="edges" fill="none">')
    for d in drawn:
        a = d.arrow
        parts = []
        for cmd, pts in d.path:
            coords = " ".join(f"{_f(x)},{_f(yy)}" for x, yy in (_xy(u, v, direction) for u, v in pts))
            parts.append(f"{cmd}{coords}")
        opacity = f' opacity="{_f(a.opacity)}"' if a.opacity < 1 else ""
        out.append(
            f'<path class="edge edge-{a.style}" d="{" ".join(parts)}" stroke="{esc(a.color)}" '
            f'stroke-width="{_f(a.width)}"{_dash(a.style, a.width)}{opacity} '
            f'marker-end="url(#{_marker_id(a.color)})"><title>{esc(a.src)} → {esc(a.dst)}'
            f"{(': ' + esc(a.label)) if a.label else ''}</title></path>"
        )
    out.append("</g>")

    out.append('<g class="nodes">')
    for n in nodes:
        assert n.box is not None
        out.append(_box(n.box, *_xy(n.u, n.v, direction)))
    out.append("</g>")

    out.append('<g class="labels">')
    for lab in labels:
        x, yy = _xy(lab.u, lab.v, direction)
        w = text_width(lab.text, LABEL_SIZE) + 2 * _LABEL_PAD_X
        h = LABEL_SIZE * 1.3 + 2 * _LABEL_PAD_Y
        out.append(
            f'<rect x="{_f(x - w / 2)}" y="{_f(yy - h / 2)}" width="{_f(w)}" height="{_f(h)}" rx="3" '
            f'fill="#ffffff" fill-opacity="0.92"/>'
        )
        out.append(_text(x, yy + LABEL_SIZE * 0.36, Line(lab.text, LABEL_SIZE, color=lab.color), anchor="middle"))
    out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def _text(x: float, y: float, line: Line, *, anchor: str) -> str:
    attrs = [f'x="{_f(x)}"', f'y="{_f(y)}"', f'font-size="{_f(line.size)}"', f'fill="{esc(line.color)}"']
    if anchor != "start":
        attrs.append(f'text-anchor="{anchor}"')
    if line.bold:
        attrs.append('font-weight="bold"')
    if line.italic:
        attrs.append('font-style="italic"')
    if line.mono:
        attrs.append(f'font-family="{esc(MONO_FAMILY)}"')
    return f"<text {' '.join(attrs)}>{esc(line.text)}</text>"


def _box(box: Box, cx: float, cy: float) -> str:
    w, h = box.size()
    x, y = cx - w / 2, cy - h / 2
    dash = ' stroke-dasharray="5 3"' if box.dashed else ""
    paint = f'fill="{esc(box.fill)}" stroke="{esc(box.stroke)}" stroke-width="{_f(box.stroke_width)}"{dash}'
    opacity = f' opacity="{_f(box.opacity)}"' if box.opacity < 1 else ""
    out = [f'<g class="node" id="{esc("node-" + box.id)}"{opacity}>']
    if box.tooltip:
        out.append(f"<title>{esc(box.tooltip)}</title>")
    if box.shape == "circle":
        out.append(f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="{_f(w / 2)}" {paint}/>')
    else:
        rx = h / 2 if box.shape == "pill" else 7.0
        out.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" rx="{_f(rx)}" {paint}/>')
    text_h = sum(line.height for line in box.lines)
    ty = cy - text_h / 2
    for line in box.lines:
        # Baseline: the line's box top plus its ascent (about 0.95 em, centred in a 1.35 em line).
        out.append(_text(cx, ty + line.size * 1.0, line, anchor="middle"))
        ty += line.height
    out.append("</g>")
    return "".join(out)
