"""The picture of a team-optimisation job: the candidate network with each node coloured and sized by its mean
importance, and the agents ranked by mean Agent Importance Score with the selected team marked.

One self-contained SVG (no scripts, no fonts to fetch), so it opens in any browser and embeds in the HTML
report. Rows are agents, columns are layers: a node is drawn where the agent answered in some item of the job,
its area grows and its colour darkens with the node's mean importance, and the faint lines between layers are the
network's edges (every node of a layer feeds every node of the next).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from agentmesh.viz.numbers import written_apart
from agentmesh.viz.svg import FONT_FAMILY, esc, text_width

_TEAM = "#2563eb"
_OTHER = "#9ca3af"


def shade(value: float, top: float) -> str:
    """White → deep blue as value goes 0 → top."""
    t = 0.0 if top <= 0 else max(0.0, min(1.0, value / top))
    r, g, b = (int(255 + (c - 255) * t) for c in (30, 64, 175))
    return f"#{r:02x}{g:02x}{b:02x}"


def importance_svg(
    *,
    title: str,
    candidates: Sequence[str],
    scores: Mapping[str, float],
    team: Sequence[str],
    node_means: Mapping[str, float],
    layers: int,
) -> str:
    """The job's picture. ``node_means`` maps ``"round,slot"`` (1-based round) to the node's mean importance."""
    label_w = max([text_width(c, 13, bold=True) for c in candidates] + [80.0]) + 28
    col, row, top_pad = 90.0, 44.0, 86.0
    net_w = label_w + col * layers + 20
    bar_x = net_w + 40
    bar_len = 260.0
    ranking = "mean Agent Importance Score, best first (team in blue)"
    # every bar's number with the decimals that tell it from its neighbours: at a fixed three, two bars of
    # visibly different length could both read 0.250, and the ranking looked like a tie broken at random
    valued = {name: scores.get(name, 0.0) for name in candidates}
    labels, tips = written_apart(valued, at_least=3), written_apart(valued, at_least=4)
    number_w = max([text_width(t, 12) for t in labels.values()] + [84.0]) + 6  # 84: "0.250" and a margin
    # the small grey dots said nothing of themselves: a reader took them for nodes of no importance
    slots = range(len(candidates))
    never_ran = (
        "small grey dot: the agent never ran in that layer in any item (an early stop, or the ranker left it out)"
        if any(f"{layer},{slot}" not in node_means for layer in range(1, layers + 1) for slot in slots)
        else ""
    )
    width = max(
        bar_x + label_w + max(bar_len + number_w, text_width(ranking, 12) + 16),
        16 + text_width(title, 17, bold=True) + 16,
        16 + text_width(never_ran, 12) + 16,
    )
    height = top_pad + row * len(candidates) + 50
    top_score = max(scores.values(), default=0.0)
    top_node = max(node_means.values(), default=0.0)
    chosen = set(team)
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT_FAMILY}">',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
        f'<text x="16" y="28" font-size="17" font-weight="bold">{esc(title)}</text>',
        f'<text x="{label_w:.0f}" y="50" font-size="12" fill="#555">network: node colour and size = mean '
        "importance</text>",
        f'<text x="{bar_x + label_w:.0f}" y="50" font-size="12" fill="#555">{ranking}</text>',
    ]

    def cx(layer: int) -> float:
        return label_w + col * (layer - 0.5)

    def cy(slot: int) -> float:
        return top_pad + row * (slot + 0.5)

    for layer in range(1, layers):  # edges between consecutive layers, faint: every node feeds the next layer
        for a in range(len(candidates)):
            if f"{layer},{a}" not in node_means:
                continue
            for b in range(len(candidates)):
                if f"{layer + 1},{b}" in node_means:
                    out.append(
                        f'<line x1="{cx(layer):.1f}" y1="{cy(a):.1f}" x2="{cx(layer + 1):.1f}" y2="{cy(b):.1f}" '
                        'stroke="#d1d5db" stroke-width="0.8"/>'
                    )
    for layer in range(1, layers + 1):
        out.append(
            f'<text x="{cx(layer):.1f}" y="{top_pad - 8:.0f}" font-size="12" text-anchor="middle">layer {layer}</text>'
        )
    for slot, name in enumerate(candidates):
        colour = _TEAM if name in chosen else "#111"
        weight = "bold" if name in chosen else "normal"
        out.append(
            f'<text x="{label_w - 12:.0f}" y="{cy(slot) + 4:.1f}" font-size="13" text-anchor="end" '
            f'fill="{colour}" font-weight="{weight}">{esc(name)}</text>'
        )
        for layer in range(1, layers + 1):
            value = node_means.get(f"{layer},{slot}")
            if value is None:
                out.append(
                    f'<circle cx="{cx(layer):.1f}" cy="{cy(slot):.1f}" r="4" fill="#f3f4f6" '
                    'stroke="#d1d5db"><title>never ran</title></circle>'
                )
                continue
            radius = 6 + 12 * math.sqrt(value / top_node) if top_node > 0 else 6
            out.append(
                f'<circle cx="{cx(layer):.1f}" cy="{cy(slot):.1f}" r="{radius:.1f}" fill="{shade(value, top_node)}" '
                f'stroke="#1e3a8a" stroke-width="1"><title>{esc(name)}, layer {layer}: {value:.3f}</title></circle>'
            )
    if never_ran:
        out.append(f'<text x="16" y="{height - 16:.0f}" font-size="12" fill="#555">{never_ran}</text>')
    # The bars are the ranking, best first (ties keep the candidates' order): drawn in the network's rows, the
    # candidates' order, the best agent could sit third under two that barely counted.
    ranked = sorted(range(len(candidates)), key=lambda i: -scores.get(candidates[i], 0.0))
    for place, slot in enumerate(ranked):
        name = candidates[slot]
        colour = _TEAM if name in chosen else "#111"
        weight = "bold" if name in chosen else "normal"
        score = scores.get(name, 0.0)
        length = bar_len * (score / top_score) if top_score > 0 else 0.0
        y = cy(place)
        out.append(
            f'<text x="{bar_x + label_w - 12:.0f}" y="{y + 4:.1f}" font-size="13" text-anchor="end" '
            f'fill="{colour}" font-weight="{weight}">{esc(name)}</text>'
        )
        out.append(
            f'<rect x="{bar_x + label_w:.1f}" y="{y - 11:.1f}" width="{length:.1f}" height="22" rx="3" '
            f'fill="{_TEAM if name in chosen else _OTHER}" class="score"><title>{esc(name)}: {tips[name]}</title>'
            "</rect>"
        )
        out.append(f'<text x="{bar_x + label_w + length + 6:.1f}" y="{y + 4:.1f}" font-size="12">{labels[name]}</text>')
    out.append("</svg>")
    return "\n".join(out)
