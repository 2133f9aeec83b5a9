"""The layered (Sugiyama-style) layout: layers from the arrows, an order within each layer that reduces
crossings (barycenter sweeps), positions, and arrows routed through the layers between, their labels in the gaps.

Layout works in abstract coordinates: ``u`` runs along the layers (x for ``LR``, y for ``TD``) and ``v`` across
them; :mod:`agentmesh.viz.svg.render` turns them into x and y.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import networkx as nx

from agentmesh.viz.svg.shapes import Arrow, Box, Direction
from agentmesh.viz.svg.text import LABEL_PAD_X, LABEL_PAD_Y, LABEL_SIZE, text_width


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
class Node:
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
class Label:
    text: str
    u: float
    v: float
    color: str
    ext_u: float
    ext_v: float
    gap: int  # the gap (after layer ``gap``) it sits in; labels are kept apart per gap


@dataclass
class Drawn:
    arrow: Arrow
    path: list[tuple[str, list[tuple[float, float]]]] = field(default_factory=list)  # (command, points) in (u, v)


@dataclass
class Layout:
    """The state of one layout, phase by phase."""

    arrows: Sequence[Arrow]
    direction: Direction
    nodes: dict[str, Node] = field(default_factory=dict)
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


def order_layers(order: list[list[str]], segments: list[tuple[str, str]], layer_of: dict[str, int]) -> list[list[str]]:
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


def _pack(ids: list[str], desired: dict[str, float | None], nodes: dict[str, Node], gap: float) -> dict[str, float]:
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


def label_extent(text: str, direction: Direction) -> tuple[float, float]:
    w = text_width(text, LABEL_SIZE) + 2 * LABEL_PAD_X
    h = LABEL_SIZE * 1.3 + 2 * LABEL_PAD_Y
    return (w, h) if direction == "LR" else (h, w)


def _side(node: Node, offset: float, sign: int) -> tuple[float, float]:
    """Where an arrow meets ``node``'s front (``sign`` 1) or back (-1) side, ``offset`` across the layers."""
    half = node.du / 2
    if node.box is not None and node.box.shape == "circle":
        half = math.sqrt(max(0.0, half * half - offset * offset))
    return node.u + sign * half, node.v + offset


def separate(labels: list[Label]) -> None:
    """Push labels that share a gap apart along ``v`` (each below the ones before it that it would overlap)."""
    labels.sort(key=lambda lab: lab.v)
    for i, lab in enumerate(labels):
        for prev in labels[:i]:
            if abs(prev.u - lab.u) < (prev.ext_u + lab.ext_u) / 2:
                lab.v = max(lab.v, prev.v + (prev.ext_v + lab.ext_v) / 2 + 2)


def make_chains(lay: Layout) -> None:
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
            nodes[d] = Node(d, li, 0.0, 2.0)
            lay.order[li].append(d)
            chain.append(d)
        chain.append(upper)
        lay.chains[k] = chain
        lay.segments.extend(itertools.pairwise(chain))


def place_u(lay: Layout, layer_gap: float) -> None:
    """Layer columns along u, with gaps wide enough for the labels that sit in them."""
    lay.col = [max((lay.nodes[n].du for n in layer), default=0.0) for layer in lay.order]
    gaps = [layer_gap] * max(0, len(lay.order) - 1)
    for k in lay.chains:
        label = lay.arrows[k].label
        if label:
            ext_u, _ = label_extent(label, lay.direction)
            gap = lay.label_gap(k)
            gaps[gap] = max(gaps[gap], ext_u + 2 * 14)
    for li, width in enumerate(lay.col):
        before = 0.0 if li == 0 else lay.u_center[-1] + lay.col[li - 1] / 2 + gaps[li - 1]
        lay.u_center.append(before + width / 2)
    for node in lay.nodes.values():
        node.u = lay.u_center[node.layer]


def place_v(lay: Layout, gap: float) -> None:
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


def _fan_offsets(lay: Layout) -> tuple[dict[tuple[int, str], float], dict[tuple[int, str], float]]:
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


def route_chains(lay: Layout) -> tuple[list[Drawn], list[Label]]:
    """Paths of the chains: straight within a layer's column, a smooth S across each gap."""
    out_off, in_off = _fan_offsets(lay)
    forward_pairs = {(c[0], c[-1]) for k, c in lay.chains.items() if k not in lay.reverse and len(c) == 2}
    drawn: list[Drawn] = []
    labels: list[Label] = []
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
        item = Drawn(a, [("M", [pts[0]])])
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
            ext_u, ext_v = label_extent(a.label, lay.direction)
            v = (va + vb) / 2 - 0.75 * bow
            labels.append(Label(a.label, (ua + ub) / 2, v, a.color, ext_u, ext_v, lay.label_gap(k)))
    return drawn, labels


def route_arc(lay: Layout, k: int, drawn: list[Drawn], labels: list[Label]) -> None:
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
    drawn.append(Drawn(a, [("M", [(u0, v0)]), ("C", [c1, c2, (u3, v3)])]))
    if a.label:
        ext_u, ext_v = label_extent(a.label, lay.direction)
        labels.append(Label(a.label, spot[0], spot[1], a.color, ext_u, ext_v, -1 - src.layer))
