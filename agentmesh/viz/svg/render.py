"""Writing the SVG document of a finished layout: boxes, arrow paths with their markers, labels, titles."""

from __future__ import annotations

import re
from collections.abc import Sequence

from agentmesh.viz.svg.layout import Drawn, Label, Node
from agentmesh.viz.svg.shapes import Box, Direction, EdgeStyle, Key, Line
from agentmesh.viz.svg.text import FONT_FAMILY, LABEL_PAD_X, LABEL_PAD_Y, LABEL_SIZE, MONO_FAMILY, esc, text_width


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


def render(
    *,
    nodes: list[Node],
    drawn: list[Drawn],
    labels: list[Label],
    direction: Direction,
    title: str,
    subtitle: Sequence[str],
    layer_heads: list[tuple[str, float]],
    margin: float,
    legend: Sequence[Key] = (),
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
    inner = max(max(xs) - min_x, max((line.width for line in title_lines), default=0.0))
    rows = _legend_rows(legend, max(inner, 360.0))
    legend_h = len(rows) * _KEY_ROW + (8 if rows else 0)
    inner = max([inner] + [sum(w for _, w in row) - _KEY_GAP for row in rows])
    width = inner + 2 * margin
    height = max(ys) - min_y + 2 * margin + title_h + legend_h
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
        w = text_width(lab.text, LABEL_SIZE) + 2 * LABEL_PAD_X
        h = LABEL_SIZE * 1.3 + 2 * LABEL_PAD_Y
        out.append(
            f'<rect x="{_f(x - w / 2)}" y="{_f(yy - h / 2)}" width="{_f(w)}" height="{_f(h)}" rx="3" '
            f'fill="#ffffff" fill-opacity="0.92"/>'
        )
        out.append(_text(x, yy + LABEL_SIZE * 0.36, Line(lab.text, LABEL_SIZE, color=lab.color), anchor="middle"))
    out.append("</g>")
    out.append("</g>")
    out += _legend(rows, margin, height - margin - legend_h + 8)
    out.append("</svg>")
    return "\n".join(out) + "\n"


_KEY_ROW = 18.0
_KEY_GAP = 18.0
_KEY_SWATCH = 24.0


def _legend_rows(legend: Sequence[Key], room: float) -> list[list[tuple[Key, float]]]:
    """The legend's entries with their widths, in rows no wider than ``room`` (an entry is never split)."""
    rows: list[list[tuple[Key, float]]] = []
    used = 0.0
    for key in legend:
        w = _KEY_SWATCH + 6 + text_width(key.text, 11) + _KEY_GAP
        if not rows or (rows[-1] and used + w - _KEY_GAP > room):
            rows.append([])
            used = 0.0
        rows[-1].append((key, w))
        used += w
    return rows


def _legend(rows: list[list[tuple[Key, float]]], x0: float, y0: float) -> list[str]:
    """The legend under the drawing: a swatch (a small box, or a stretch of arrow) and its meaning per entry."""
    if not rows:
        return []
    out = ['<g class="legend">']
    for i, row in enumerate(rows):
        x, mid = x0, y0 + i * _KEY_ROW + _KEY_ROW / 2
        for key, w in row:
            if key.kind == "box":
                out.append(
                    f'<rect x="{_f(x + 1)}" y="{_f(mid - 6)}" width="{_f(_KEY_SWATCH - 2)}" height="12" rx="3" '
                    f'fill="{esc(key.fill)}" stroke="{esc(key.stroke)}" stroke-width="{_f(key.stroke_width)}"/>'
                )
            else:
                out.append(
                    f'<line x1="{_f(x)}" y1="{_f(mid)}" x2="{_f(x + _KEY_SWATCH)}" y2="{_f(mid)}" '
                    f'stroke="{esc(key.stroke)}" stroke-width="{_f(key.stroke_width)}"'
                    f"{_dash(key.style, key.stroke_width)}/>"
                )
            out.append(_text(x + _KEY_SWATCH + 6, mid + 4, Line(key.text, 11, color="#374151"), anchor="start"))
            x += w
    out.append("</g>")
    return out


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
