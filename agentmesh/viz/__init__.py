"""Drawings: graph specs as Mermaid text or a self-contained SVG (no external tools).

What this module exports reads :mod:`agentmesh.spec` objects only (the reports, :mod:`.report` and :mod:`.batch`,
also read stored runs, their timelines and answers, and are imported by name). The SVG drawing
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
