"""What a drawing is made of: lines of text, boxes holding them, arrows between boxes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from agentmesh.viz.svg.text import text_width

Direction = Literal["LR", "TD"]
EdgeStyle = Literal["solid", "dashed", "dotted"]
Shape = Literal["rect", "pill", "circle"]


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


@dataclass(frozen=True)
class Key:
    """One entry of a drawing's legend: what a kind of box (``box``: its fill, stroke and stroke width) or of arrow
    (``line``: its colour and style) means."""

    text: str
    kind: Literal["box", "line"] = "box"
    fill: str = "#ffffff"
    stroke: str = "#4b5563"
    stroke_width: float = 1.5
    style: EdgeStyle = "solid"
