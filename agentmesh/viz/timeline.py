"""A run's model calls over time, as a self-contained SVG (a Gantt chart): where a run's time went.

One row per agent of each node (``debate · debater[0]``), by the step they first called in; one bar per attempt,
from its start to its end (the event's time less its latency), coloured by the step (a node's round) it belongs
to, red when it failed; calls served from a stored run (a replay or a fork) are grey ticks, as they took no time.
A band above the rows spans each step, from its first call's start to its last call's end. The title says how much
model time the run spent in how much wall time, i.e. how many calls ran at once on average: what tells a
team waiting on a serialised model (an in-process one) from one that used a server's concurrency.
A long stretch without a call running (a run interrupted and resumed later) is cut short, hatched and labelled
with its length, so the calls on either side of it stay readable; the calls at once are averaged over the rest.
One too short to cut (under a quarter of the run) is drawn to scale and labelled "N s without a call".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from agentmesh._text import counted
from agentmesh.timeline import CallView, Step, Timeline
from agentmesh.viz.svg import FONT_FAMILY, esc, shorten, text_width

#: Fills of the steps' bars, in turn (a step's colour says which round a bar belongs to).
PALETTE = ("#60a5fa", "#34d399", "#fbbf24", "#a78bfa", "#f472b6", "#22d3ee", "#a3e635", "#fb923c")
FAILED = "#dc2626"
WIDTH = 1000.0
ROW = 20.0
BAR = 12.0


def nice_step(span: float, ticks: int = 8) -> float:
    """A round tick interval (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def _seconds(value: float) -> str:
    """``value`` seconds to three significant digits, in ms below a second. Rounding to hundredths of a second
    first, as the title did, made a scripted or cached run's few milliseconds of model time "0 s", beside bars
    that plainly took time."""
    if value == 0:
        return "0 s"
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.3g} s"
    return f"{value * 1000:.3g} ms"


def _tick_label(value: float, tick: float) -> str:
    """A tick's time with as many decimals as the ticks' interval needs: to three significant digits, 501.5 s
    read "502 s" after a cut stretch, beside the tick of 502 s."""
    if value == 0:
        return "0 s"
    if value >= 1:
        return f"{value:.{max(0, math.ceil(-math.log10(tick) - 1e-9))}f} s"
    return f"{value * 1000:.{max(0, math.ceil(-math.log10(tick * 1000) - 1e-9))}f} ms"


def _ratio(value: float) -> str:
    """Calls at once on average: two significant digits (0.045, 1.6, 12), never a bare 0.0."""
    return f"{value:.2g}" if value < 100 else f"{value:.0f}"


def timeline_svg(story: Timeline) -> str | None:
    """The calls-over-time chart of a run; ``None`` when no call of it has a time (no calls)."""
    timed = [
        (number, step, call)
        for number, step in enumerate(story.steps, start=1)
        for call in step.calls
        if call.finished_at is not None
    ]
    if not timed:
        return None
    start = min(_start(c) for _, _, c in timed)
    start = min(start, story.run.created_at)
    end = max(c.finished_at for _, _, c in timed if c.finished_at is not None)
    if story.run.finished_at is not None:
        end = max(end, story.run.finished_at)
    wall = max((end - start).total_seconds(), 1e-6)

    rows: dict[tuple[str, str, int], int] = {}
    for _, _, call in sorted(timed, key=lambda t: (t[0], t[2].call_index)):  # by the step they first called in
        rows.setdefault((call.node, call.agent, call.call_index), len(rows))
    labels = [f"{node} · {agent}[{index}]" for node, agent, index in rows]
    label_w = max(text_width(shorten(label, 40), 11.5) for label in labels) + 20
    plot_x, plot_w = label_w, WIDTH - label_w - 20
    band_y, top = 56.0, 84.0
    height = top + ROW * len(rows) + 34

    busy = [(_start(c), c.finished_at) for _, _, c in timed if c.finished_at is not None]
    pieces = _pieces(busy, start, end, plot_x, plot_w)
    cuts = [p for p in pieces if p.cut]
    idle = sum(p.seconds for p in cuts)
    active = max(wall - idle, 1e-6)

    def x(when: datetime) -> float:
        for piece in pieces:
            if when <= piece.t1:
                return piece.at(when)
        return pieces[-1].x1

    model_time = sum(c.latency_s or 0.0 for _, _, c in timed if not c.replayed)
    facts = f": {counted(len(timed), 'call')} over {_seconds(wall)}"
    if cuts:
        facts += f" ({_seconds(idle)} idle, cut short)"
    if model_time:
        at_once = _ratio(model_time / active)
        facts += (
            f" · {_seconds(model_time)} of model time, {at_once} call{'' if at_once == '1' else 's'} at once on average"
        )
    # the graph's name gives way so that the title fits the chart's width (a long name ran past its right edge)
    room = WIDTH - 28 - text_width(facts, 14, bold=True)
    name = story.run.graph
    while len(name) > 8 and text_width(name, 14, bold=True) > room:
        name = shorten(name, len(name) - 2)
    title = name + facts
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH:.0f} {height:.0f}" font-family="{FONT_FAMILY}" class="call-timeline">',
        f'<rect width="{WIDTH:.0f}" height="{height:.0f}" fill="white"/>',
        f'<text x="14" y="22" font-size="14" font-weight="bold">{esc(title)}</text>',
        '<text x="14" y="40" font-size="11" fill="#555">a bar per model call, from its start to its answer; colour: '
        "the step (node and round) it belongs to; red, outlined: failed; grey tick: served from a stored run</text>",
    ]
    taken: list[tuple[float, float]] = []  # the axis labels' extents, so that none runs into another
    axis_y = height - 14
    for piece in cuts:
        mid = (piece.x0 + piece.x1) / 2
        text = f"{_seconds(piece.seconds)} idle"
        w = text_width(text, 10)
        taken.append((mid - w / 2, mid + w / 2))
        out.append(
            f'<rect x="{piece.x0:.1f}" y="{band_y - 4:.0f}" width="{piece.x1 - piece.x0:.1f}" '
            f'height="{height - 28 - band_y + 4:.0f}" fill="url(#idle-hatch)" stroke="#d1d5db" stroke-dasharray="3 2" '
            f'class="idle-cut"><title>{esc(_seconds(piece.seconds))} without a call running: cut short</title></rect>'
        )
        out.append(
            f'<text x="{mid:.1f}" y="{axis_y:.0f}" font-size="10" fill="#6b7280" text-anchor="middle">'
            f"{esc(text)}</text>"
        )
    if cuts:
        out.insert(
            2,
            '<defs><pattern id="idle-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f9fafb"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#e5e7eb" stroke-width="2"/></pattern></defs>',
        )
    tick = nice_step(active)
    for piece in pieces:
        if piece.cut:
            continue
        e0, e1 = piece.elapsed(start)
        for i in range(math.ceil(e0 / tick - 1e-9), math.floor(e1 / tick + 1e-9) + 1):
            tx = piece.at(start + timedelta(seconds=i * tick))
            text = _tick_label(i * tick, tick)
            w = text_width(text, 10.5)
            if any(tx - w / 2 - 4 < b and a < tx + w / 2 + 4 for a, b in taken):
                continue
            taken.append((tx - w / 2, tx + w / 2))
            out.append(
                f'<line x1="{tx:.1f}" y1="{band_y - 4:.0f}" x2="{tx:.1f}" y2="{height - 28:.0f}" stroke="#eef0f3"/>'
            )
            out.append(
                f'<text x="{tx:.1f}" y="{axis_y:.0f}" font-size="10.5" fill="#555" text-anchor="middle">'
                f"{esc(text)}</text>"
            )
    # the run's end, where no tick falls there (after a cut stretch, the calls beyond it had no time on the axis)
    end_text = _tick_label(wall, tick)  # to the ticks' precision: at three digits, 501.7 s read "502 s"
    end_x, end_w = plot_x + plot_w, text_width(end_text, 10.5)
    if not any(end_x - end_w - 4 < b and a < end_x + 4 for a, b in taken):
        out.append(
            f'<text x="{end_x:.1f}" y="{axis_y:.0f}" font-size="10.5" fill="#555" text-anchor="end" class="end">'
            f"{esc(end_text)}</text>"
        )
    # a long stretch without a call that is drawn to scale (under a quarter of the run) is said to be one: 250 s of
    # empty chart between two rounds (a run interrupted and resumed) read as a drawing fault
    for g0, g1 in _gaps(busy, start, end):
        seconds = (g1 - g0).total_seconds()
        gx0, gx1 = x(g0), x(g1)
        text = f"{_seconds(seconds)} without a call"
        if (
            seconds > IDLE_CUT_S
            and not any(p.cut and p.t0 == g0 for p in pieces)
            and gx1 - gx0 > text_width(text, 10) + 8
        ):
            out.append(
                f'<text x="{(gx0 + gx1) / 2:.1f}" y="{top + ROW * len(rows) / 2 + 4:.1f}" font-size="10" '
                f'fill="#9ca3af" font-style="italic" text-anchor="middle" class="idle">{esc(text)}</text>'
            )
    out += _step_bands(story.steps, x, band_y)
    for i, label in enumerate(labels):
        y = top + ROW * i
        out.append(
            f'<text x="{plot_x - 8:.1f}" y="{y + ROW / 2 + 4:.1f}" font-size="11.5" text-anchor="end">'
            f"<title>{esc(label)}</title>{esc(shorten(label, 40))}</text>"
        )
    for number, step, call in timed:
        y = top + ROW * rows[(call.node, call.agent, call.call_index)] + (ROW - BAR) / 2
        out.append(_bar(number, step, call, x, y))
    out.append("</svg>")
    return "\n".join(out)


#: A stretch of a run without a call running is cut short when it lasts longer than this many seconds and this
#: share of the run: a run interrupted and resumed ten minutes later was drawn as ten minutes of nothing with its
#: calls as slivers at either end (and "0.012 calls at once on average").
IDLE_CUT_S = 30.0
IDLE_CUT_SHARE = 0.25
#: The width (px) of a cut stretch.
CUT_W = 56.0


@dataclass(frozen=True)
class _Piece:
    """A stretch of the run's time and the part of the x axis it takes: drawn to scale, or cut short."""

    t0: datetime
    t1: datetime
    x0: float
    x1: float
    cut: bool

    @property
    def seconds(self) -> float:
        return (self.t1 - self.t0).total_seconds()

    def at(self, when: datetime) -> float:
        span = self.seconds
        share = 0.0 if span <= 0 else (when - self.t0).total_seconds() / span
        return self.x0 + (self.x1 - self.x0) * min(1.0, max(0.0, share))

    def elapsed(self, start: datetime) -> tuple[float, float]:
        return (self.t0 - start).total_seconds(), (self.t1 - start).total_seconds()


def _gaps(busy: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches from ``start`` to ``end`` without a call running, in order."""
    gaps: list[tuple[datetime, datetime]] = []
    reached = start
    for b0, b1 in sorted(busy):
        if b0 > reached:
            gaps.append((reached, b0))
        reached = max(reached, b1)
    if end > reached:
        gaps.append((reached, end))
    return gaps


def _pieces(
    busy: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime, x0: float, width: float
) -> list[_Piece]:
    """The x axis from ``start`` to ``end``: the stretches without a call running longer than :data:`IDLE_CUT_S`
    and :data:`IDLE_CUT_SHARE` of the run cut to :data:`CUT_W` px, the rest to scale."""
    wall = max((end - start).total_seconds(), 1e-6)
    gaps = _gaps(busy, start, end)
    cut = [(g0, g1) for g0, g1 in gaps if (g1 - g0).total_seconds() > max(IDLE_CUT_S, IDLE_CUT_SHARE * wall)]
    kept = wall - sum((g1 - g0).total_seconds() for g0, g1 in cut)
    scale = (width - CUT_W * len(cut)) / max(kept, 1e-6)
    pieces: list[_Piece] = []
    t, x = start, x0
    for g0, g1 in cut:
        if g0 > t:
            pieces.append(_Piece(t, g0, x, x + (g0 - t).total_seconds() * scale, False))
            x = pieces[-1].x1
        pieces.append(_Piece(g0, g1, x, x + CUT_W, True))
        t, x = g1, x + CUT_W
    pieces.append(_Piece(t, end, x, x0 + width, False))
    return pieces


def _start(call: CallView) -> datetime:
    """Where a call's bar starts: a served call takes no time, so it sits at its event's time."""
    started = None if call.replayed else call.started_at
    assert call.finished_at is not None
    return started or call.finished_at


def _step_name(step: Step) -> str:
    return step.node + step.place


def _step_bands(steps: Sequence[Step], x: Callable[[datetime], float], y: float) -> list[str]:
    """A thin band per step above the rows, from its first call's start to its last call's end."""
    out = []
    for number, step in enumerate(steps, start=1):
        calls = [c for c in step.calls if c.finished_at is not None]
        if not calls:
            continue
        first, last = min(_start(c) for c in calls), max(c.finished_at for c in calls if c.finished_at)
        x1, x2 = x(first), max(x(last), x(first) + 2)
        colour = PALETTE[(number - 1) % len(PALETTE)]
        span = (last - first).total_seconds()
        tip = f"step {number}: {_step_name(step)}, {counted(len(calls), 'call')}, {_seconds(span)}"
        out.append(
            f'<rect x="{x1:.1f}" y="{y:.1f}" width="{x2 - x1:.1f}" height="8" rx="2" fill="{colour}" '
            f'opacity="0.55" class="step"><title>{esc(tip)}</title></rect>'
        )
        # the step's name when the band has room for it ("2. debate round 2"), else its number: a bare number
        # sent the reader to the step list below the chart to learn what it was
        named = f"{number}. {_step_name(step)}"
        label = named if x2 - x1 > text_width(named, 10) + 4 else str(number)
        if x2 - x1 > text_width(label, 10) + 4:
            out.append(
                f'<text x="{(x1 + x2) / 2:.1f}" y="{y - 3:.1f}" font-size="10" fill="#374151" '
                f'text-anchor="middle">{esc(label)}</text>'
            )
    return out


def _bar(number: int, step: Step, call: CallView, x: Callable[[datetime], float], y: float) -> str:
    assert call.finished_at is not None
    where = f"step {number}: {_step_name(step)} · {call.agent}[{call.call_index}]"
    if call.replayed:
        tip = f"{where}: served from a stored run"
        cx = x(call.finished_at)
        return (
            f'<rect x="{cx - 1:.1f}" y="{y:.1f}" width="2" height="{BAR:.0f}" fill="#9ca3af" class="call served">'
            f"<title>{esc(tip)}</title></rect>"
        )
    x1, x2 = x(_start(call)), x(call.finished_at)
    tokens = f"{call.prompt_tokens or 0}+{call.completion_tokens or 0} tokens"
    css = "call failed" if call.error else "call"
    # a failed bar is told by its thick dark outline too, not by its red alone: the steps' orange and pink bars
    # are hard to tell from red for many readers
    stroke = 'stroke="#450a0a" stroke-width="1.6"' if call.error else 'stroke="#1f2937" stroke-width="0.4"'
    if call.error:
        fill, tip = FAILED, f"{where}: failed after {_seconds(call.latency_s or 0)}: {call.error}"
    else:
        fill = PALETTE[(number - 1) % len(PALETTE)]
        reply = shorten(" ".join(call.reply.split()), 80)
        tip = f"{where}: {_seconds(call.latency_s or 0)}, {tokens} → {reply}"
    return (
        f'<rect x="{x1:.1f}" y="{y:.1f}" width="{max(x2 - x1, 1.5):.1f}" height="{BAR:.0f}" rx="2" fill="{fill}" '
        f'{stroke} class="{css}"><title>{esc(tip)}</title></rect>'
    )
