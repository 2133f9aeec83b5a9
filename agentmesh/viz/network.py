"""The agent network of one run, as a self-contained SVG: what people want to see rather than read.

Columns are the rounds (layers) of a ``rounds`` or ``dylan_code`` node, rows its agents. A node is drawn where an
agent answered, labelled with its answer; its colour and size follow its importance when the run has scores;
nodes a rank step pruned are greyed and crossed out, agents that never ran in a round (an early stop, a ranker
that left them out) are small grey dots, and the edges are the answers each node was really shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentmesh.viz.importance import shade
from agentmesh.viz.svg import FONT_FAMILY, esc, shorten, text_width

_TEXT_SIZE = 11.0
_GAP = 4.0
"""Between a node's circle and the text beside it (its answer, what it gave, or "no answer")."""


@dataclass(frozen=True)
class _Drawn:
    """How one node that ran is drawn: its circle's radius and the text beside it, measured before the layout
    (the columns are made wide enough for them)."""

    score: float | None
    radius: float
    kind: str  # "answer", "label" (a reply that is no vote) or "none" (no answer parsed)
    text: str
    text_w: float


def _drawn(node: Mapping[str, Any], score: float | None, top_score: float) -> _Drawn:
    radius = 9.0 + (11.0 * math.sqrt(score / top_score) if score and top_score > 0 else 0.0)
    key, label = node.get("key"), node.get("label")
    if key is not None:
        kind, text = "answer", shorten(str(key), 12)
    elif label:
        kind, text = "label", shorten(str(label), 18)
    else:  # it ran, but its reply held no answer the parser could read
        kind, text = "none", "no answer"
    return _Drawn(score, radius, kind, text, text_width(text, _TEXT_SIZE))


def network_svg(
    history: Sequence[Mapping[str, Any]],
    agents: Sequence[str],
    *,
    importance: Mapping[str, float] | None = None,
    title: str = "",
    groups: Mapping[str, Sequence[int]] | None = None,
) -> str:
    """The network of a recorded ``history`` (see :mod:`agentmesh.runtime.operators.rounds`).

    ``agents`` names the slots; ``importance`` maps ``"round,slot"`` to a node's score; ``groups`` says which
    slots a layer of each kind holds (a code network's ``writers`` and ``judges``), so a writer is not drawn as
    idle in a judges' layer.
    """
    ran: dict[tuple[int, int], Mapping[str, Any]] = {}
    pruned: set[tuple[int, int]] = set()
    kinds: dict[int, str] = {}
    cut: set[int] = set()  # a round the run stopped in: its nodes are the agents that answered before it stopped
    for entry in history:
        rnd = int(entry["round"])
        kinds[rnd] = str(entry.get("kind") or "")
        if entry.get("cut_short"):
            cut.add(rnd)
        for node in entry.get("nodes") or []:
            ran[(rnd, int(node["slot"]))] = node
        ranked = entry.get("ranked")
        if ranked and not ranked.get("reference_compat"):
            pruned |= {(rnd, int(n["slot"])) for n in entry.get("nodes") or [] if n["slot"] not in ranked["kept"]}

    rounds = [int(h["round"]) for h in history]
    n_rounds = max(rounds, default=0)
    top_score = max(importance.values(), default=0.0) if importance else 0.0
    drawn = {at: _drawn(node, (importance or {}).get(f"{at[0]},{at[1]}"), top_score) for at, node in ran.items()}
    # A column is as wide as its widest node with its answer beside it, plus room for the next column's largest
    # node: a fixed 120 px let a shortened answer ("a_very_long…") run into the next round's node, and the last
    # round's answers ran past the picture's right edge.
    reach = max((d.radius + _GAP + d.text_w for d in drawn.values()), default=0.0)
    widest = max((d.radius for d in drawn.values()), default=9.0)
    label_w = max([text_width(a, 12.5, bold=True) for a in agents] + [70.0]) + 28
    col, row, top = max(120.0, reach + widest + 10), 46.0, 74.0
    # what the marks mean: the text beside a node was not explained, and read as a score as often as an answer
    caption = (
        "beside a node: its answer; edges: the answers each node was shown; "
        + ("size and colour: importance; " if importance else "")
        + "grey: pruned or never ran"
    )
    width = max(label_w + col * (max(n_rounds, 1) - 0.5) + max(reach, col / 2) + 16, text_width(caption, 11.5) + 28)
    height = top + row * len(agents) + 48

    def xy(rnd: int, slot: int) -> tuple[float, float]:
        return label_w + col * (rnd - 0.5), top + row * (slot + 0.5)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT_FAMILY}" class="agent-network">',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
        f'<text x="14" y="24" font-size="15" font-weight="bold">{esc(title)}</text>',
        f'<text x="14" y="44" font-size="11.5" fill="#555">{esc(caption)}</text>',
    ]
    # Edges first, under the nodes: one path per round, its segments the answers each node was shown. A line
    # element per edge made a 40-agent, 20-round debate's network 30,000 elements and 2.9 MB of its 3.2 MB page;
    # where each node saw many, the edges are fainter, so the mesh does not hide the nodes.
    seen_by_round: dict[int, list[str]] = {}
    fan_in: dict[int, int] = {}
    for (rnd, slot), node in sorted(ran.items()):
        x2, y2 = xy(rnd, slot)
        preds = node.get("seen") or []
        fan_in[rnd] = max(fan_in.get(rnd, 0), len(preds))
        for pred in preds:
            x1, y1 = xy(rnd - 1, int(pred))
            seen_by_round.setdefault(rnd, []).append(f"M{x1:.1f} {y1:.1f}L{x2:.1f} {y2:.1f}")
    for rnd, segments in seen_by_round.items():
        faint = f' stroke-opacity="{max(0.25, 6 / fan_in[rnd]):.2f}"' if fan_in[rnd] > 6 else ""
        out.append(
            f'<path class="seen" d="{"".join(segments)}" stroke="#c7cdd6" stroke-width="1" fill="none"{faint}>'
            f"<title>round {rnd}: the answers each node was shown</title></path>"
        )
    for rnd in range(1, n_rounds + 1):
        x, _ = xy(rnd, 0)
        label = f"{kinds.get(rnd) or 'round'} {rnd}" + (" (cut short)" if rnd in cut else "")
        out.append(f'<text x="{x:.1f}" y="{top - 10:.0f}" font-size="12" text-anchor="middle">{esc(label)}</text>')
    for slot, name in enumerate(agents):
        _, y = xy(1, slot)
        out.append(
            f'<text x="{label_w - 14:.0f}" y="{y + 4:.1f}" font-size="12.5" text-anchor="end">{esc(name)}</text>'
        )
        for rnd in range(1, n_rounds + 1):
            x, y = xy(rnd, slot)
            node = ran.get((rnd, slot))
            kind_slots = (groups or {}).get(kinds.get(rnd, ""))
            if node is None and kind_slots is not None and slot not in kind_slots:
                continue  # not this kind of layer's agent
            if node is None:
                out.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#eef0f3" stroke="#c7cdd6" class="idle">'
                    f"<title>{esc(name)}, round {rnd}: "
                    + ("had not answered when the run stopped" if rnd in cut else "did not run")
                    + "</title></circle>"
                )
                continue
            d = drawn[(rnd, slot)]
            score, radius = d.score, d.radius
            fill = "#e5e7eb" if (rnd, slot) in pruned else (shade(score, top_score) if score is not None else "#dbeafe")
            key = node.get("key")
            node_label = node.get("label")  # a reply that is no vote (a code writer's, a judge's): what it gave
            if key is not None:
                tip = f"{name}, round {rnd}: answer {key}"
            else:
                tip = f"{name}, round {rnd}: " + (str(node_label) if node_label else "replied, no answer parsed")
            tip += f", importance {score:.3f}" if score is not None else ""
            tip += " (pruned by the ranker)" if (rnd, slot) in pruned else ""
            css = "pruned" if (rnd, slot) in pruned else "ran"
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{fill}" stroke="#1e3a8a" '
                f'stroke-width="1" class="{css}"><title>{esc(tip)}</title></circle>'
            )
            if (rnd, slot) in pruned:
                out.append(
                    f'<line x1="{x - radius:.1f}" y1="{y - radius:.1f}" x2="{x + radius:.1f}" y2="{y + radius:.1f}" '
                    'stroke="#9ca3af" stroke-width="1.5"/>'
                )
            style = {"answer": 'fill="#374151"', "label": 'fill="#6b7280"'}.get(
                d.kind, 'fill="#9ca3af" font-style="italic"'
            )
            out.append(
                f'<text x="{x + radius + _GAP:.1f}" y="{y + 4:.1f}" font-size="{_TEXT_SIZE:g}" {style}>'
                f"{esc(d.text)}</text>"
            )
    out.append("</svg>")
    return "\n".join(out)
