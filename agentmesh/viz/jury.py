"""The picture of an SE-Jury calibration: every candidate team's agreement with the humans, the chosen one marked,
beside each judge alone, and the chosen team's agreement on the held-out items.

A table of 46 teams' scores is read faster as bars: how far ahead the chosen team is, whether several tie, and
whether any team beats the best single judge (the paper's claim) show at a glance. One self-contained SVG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agentmesh.systems.sejury.selection import Correlations, Selection, correlations
from agentmesh.viz.numbers import written_apart
from agentmesh.viz.svg import FONT_FAMILY, esc, text_width

_TEAM = "#2563eb"
_OTHER = "#9ca3af"
_JUDGE = "#f59e0b"
_LABEL_GAP = 30.0
"""Least distance (px) between two tick labels of the axis ("-0.9" is about 18 px wide at its size)."""


def jury_svg(title: str, selection: Selection, test: Correlations | None = None, n_test: int = 0) -> str:
    """Bars of the criterion, (τ_b + ρ)/2 or v1's, for each candidate team (best first) and each judge alone."""
    human = selection.human
    singles: list[tuple[str, float]] = []
    for judge, scores in selection.per_judge.items():
        corr = _safe(human, scores)
        singles.append((judge, math.nan if corr is None else (corr.kendall + corr.spearman) / 2))
    teams = sorted(selection.candidates, key=lambda c: -_sortable(c.score))
    rows: list[tuple[str, float, str]] = [
        (" + ".join(c.team), c.score, _TEAM if c is selection.selected else _OTHER) for c in teams
    ]
    rows += [(f"{judge} alone", score, _JUDGE) for judge, score in singles]
    # a bar without a correlation says which side was constant: "constant" beside every bar read as if each team's
    # scores were, when it was the humans' labels (all one value) that left nothing to correlate with
    no_correlation = (
        "no correlation: the human labels are all one value"
        if len(set(human)) <= 1
        else "no correlation: its scores are all one value"
    )
    label_w = max([text_width(label, 12) for label, _, _ in rows] + [120.0]) + 24
    row_h, top, bar_len = 20.0, 96.0, 360.0
    finite = [s for _, s, _ in rows if not math.isnan(s)]
    # the axis starts at the tenth below the lowest score: teams often differ by hundredths, which bars from 0
    # would hide; the ticks say where the axis starts
    low = math.floor(min(finite) * 10) / 10 if finite else 0.0
    low = min(low, 0.9)
    span = 1.0 - low
    height = top + row_h * (len(rows) + 1) + (40 if test is not None else 16)
    subtitle = f"agreement with the humans on the {len(human)} calibration items, {_criterion(selection)}"
    colours = "chosen team in blue, the other teams grey, each judge alone amber"
    held_out = (
        f"chosen team on {n_test} held-out items: Kendall τ {_fmt(test.kendall)}, Spearman ρ {_fmt(test.spearman)}, "
        f"Pearson r {_fmt(test.pearson)}"
        if test is not None
        else ""
    )
    # as wide as the bars, and as the lines of text: with a team of two judges the bars are narrow, and a long
    # graph name in the title or a thousand held-out items ran past the right edge
    texts = [(title, 16.0, True), (subtitle, 12.0, False), (colours, 12.0, False), (held_out, 13.0, False)]
    # each bar's number with the decimals that tell it from the others: at three, teams 0.0004 apart all read
    # 0.985 beside a ranking that put one first
    scored = {label: score for label, score, _ in rows if not math.isnan(score)}
    numbers, tips = written_apart(scored, at_least=3), written_apart(scored, at_least=4)
    number_w = max([text_width(n, 11) for n in numbers.values()] + [84.0]) + 6  # 84: "0.985" and a margin
    width = max([label_w + bar_len + number_w] + [16 + text_width(t, size, bold=bold) + 16 for t, size, bold in texts])

    def x(value: float) -> float:
        return label_w + bar_len * (value - low) / span

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{FONT_FAMILY}">',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
        f'<text x="16" y="26" font-size="16" font-weight="bold">{esc(title)}</text>',
        f'<text x="16" y="46" font-size="12" fill="#555">{esc(subtitle)}</text>',
        f'<text x="16" y="62" font-size="12" fill="#555">{esc(colours)}</text>',
    ]
    # a grid line every tenth, but a label only every `every` tenths: over the whole -1..1 range a label per tenth
    # is 18 px apart, and "-0.9-0.8-0.7" ran together; the axis's start is always labelled
    every = math.ceil(_LABEL_GAP / (bar_len * 0.1 / span))
    first = round(low * 10)
    for tenth in range(first, 11):
        tick = tenth / 10
        out.append(
            f'<line x1="{x(tick):.1f}" y1="{top - 8:.0f}" x2="{x(tick):.1f}" y2="{top + row_h * (len(rows) + 1):.0f}" '
            f'stroke="{"#111" if tenth == 0 else "#e5e7eb"}" stroke-width="0.8"/>'
        )
        if tenth == first or (tenth % every == 0 and tenth - first >= every):
            out.append(
                f'<text x="{x(tick):.1f}" y="{top - 12:.0f}" font-size="10" fill="#555" text-anchor="middle">'
                f"{tick:.1f}</text>"
            )
    for i, (label, score, colour) in enumerate(rows):
        y = top + row_h * i + (row_h if colour == _JUDGE else 0)  # a gap before the single judges
        weight = "bold" if colour == _TEAM else "normal"
        out.append(
            f'<text x="{label_w - 10:.0f}" y="{y + 13:.1f}" font-size="12" text-anchor="end" '
            f'font-weight="{weight}">{esc(label)}</text>'
        )
        if math.isnan(score):
            out.append(
                f'<text x="{x(max(low, 0.0)) + 6:.1f}" y="{y + 13:.1f}" font-size="11" fill="#b91c1c">'
                f"{esc(no_correlation)}</text>"
            )
            continue
        start, end = sorted((x(max(low, 0.0)), x(score)))
        out.append(
            f'<rect x="{start:.1f}" y="{y + 3:.1f}" width="{end - start:.1f}" height="{row_h - 6:.1f}" rx="2" '
            f'fill="{colour}"><title>{esc(label)}: {tips[label]}</title></rect>'
        )
        out.append(f'<text x="{end + 5:.1f}" y="{y + 13:.1f}" font-size="11">{numbers[label]}</text>')
    if test is not None:
        y = top + row_h * (len(rows) + 1) + 20
        out.append(f'<text x="16" y="{y:.0f}" font-size="13">{esc(held_out)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _safe(human: Sequence[float], scores: Sequence[float]) -> Correlations | None:
    try:
        return correlations(human, scores)
    except ValueError:
        return None


def _sortable(score: float) -> float:
    return -math.inf if math.isnan(score) else score


def _criterion(selection: Selection) -> str:
    return "(Kendall τ_b + Spearman ρ)/2" if selection.config.criterion == "tau_rho" else "round((τ + r + ρ)/3, 3)"


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"
