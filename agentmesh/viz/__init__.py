"""Drawings: graph specs as Mermaid text or a self-contained SVG (no external tools).

A leaf package: it reads :mod:`agentmesh.spec` objects and imports nothing else of agentmesh. The SVG drawing
primitives (boxes, arrows, text, a layered layout) are generic, for other drawings such as agent networks per
round: :func:`svg_layers` with :class:`Box` and :class:`Arrow`.
"""

from agentmesh.viz.graph import FlowEdge, graph_flow, graph_mermaid, graph_svg
from agentmesh.viz.svg import Arrow, Box, Line, assign_layers, svg_layers

__all__ = [
    "Arrow",
    "Box",
    "FlowEdge",
    "Line",
    "assign_layers",
    "graph_flow",
    "graph_mermaid",
    "graph_svg",
    "svg_layers",
]
