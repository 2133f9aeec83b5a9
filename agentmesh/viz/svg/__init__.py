"""Self-contained SVG drawing: text measurement (:mod:`.text`), boxes and arrows (:mod:`.shapes`), a layered
(Sugiyama-style) layout (:mod:`.layout`) and its rendering (:mod:`.render`).

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

from collections import defaultdict
from collections.abc import Collection, Sequence

from agentmesh.viz.svg.layout import (
    Label,
    Layout,
    Node,
    assign_layers,
    make_chains,
    order_layers,
    place_u,
    place_v,
    route_arc,
    route_chains,
    separate,
)
from agentmesh.viz.svg.render import render
from agentmesh.viz.svg.shapes import Arrow, Box, Direction, EdgeStyle, Key, Line, Shape
from agentmesh.viz.svg.text import FONT_FAMILY, LABEL_SIZE, MONO_FAMILY, esc, shorten, text_width, wrap

__all__ = [
    "FONT_FAMILY",
    "LABEL_SIZE",
    "MONO_FAMILY",
    "Arrow",
    "Box",
    "Direction",
    "EdgeStyle",
    "Key",
    "Line",
    "Shape",
    "assign_layers",
    "esc",
    "shorten",
    "svg_layers",
    "text_width",
    "wrap",
]


def svg_layers(
    boxes: Sequence[Box],
    arrows: Sequence[Arrow],
    *,
    layers: Sequence[Sequence[str]] | None = None,
    direction: Direction = "LR",
    title: str = "",
    subtitle: Sequence[str] = (),
    layer_labels: Sequence[str] = (),
    legend: Sequence[Key] = (),
    last: Collection[str] = (),
    layer_gap: float = 56.0,
    node_gap: float = 26.0,
    margin: float = 20.0,
) -> str:
    """Draw ``boxes`` in layers with ``arrows`` between them, as a standalone SVG document.

    ``layers`` (lists of box ids) fixes the layers, e.g. one per round; otherwise :func:`assign_layers` computes
    them (``last`` ids go in a final layer). Arrows between layers are routed through the layers between (an
    arrow pointing back leaves its source's back side and enters its target's front side); arrows within a
    layer and self-loops are arcs. ``layer_labels`` name the layers (``round 1``, ...); ``legend`` says under the
    drawing what its kinds of box and arrow mean.
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

    lay = Layout(arrows, direction)
    for li, layer in enumerate(layers):
        lay.order.append(list(layer))
        for box_id in layer:
            w, h = by_id[box_id].size()
            du, dv = (w, h) if direction == "LR" else (h, w)
            lay.nodes[box_id] = Node(box_id, li, du, dv, by_id[box_id])
    make_chains(lay)
    lay.order = order_layers(lay.order, lay.segments, {n: node.layer for n, node in lay.nodes.items()})
    place_u(lay, layer_gap)
    place_v(lay, node_gap if direction == "LR" else node_gap * 1.4)
    drawn, labels = route_chains(lay)
    for k in lay.arcs:
        route_arc(lay, k, drawn, labels)
    by_gap: dict[int, list[Label]] = defaultdict(list)
    for lab in labels:
        by_gap[lab.gap].append(lab)
    for group in by_gap.values():
        separate(group)
    return render(
        nodes=[n for n in lay.nodes.values() if not n.dummy],
        drawn=drawn,
        labels=labels,
        direction=direction,
        title=title,
        subtitle=subtitle,
        layer_heads=[(lab, lay.u_center[i]) for i, lab in enumerate(layer_labels[: len(lay.order)]) if lab],
        margin=margin,
        legend=legend,
    )
