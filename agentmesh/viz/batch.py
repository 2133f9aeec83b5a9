"""One self-contained HTML page for a batch (``agentmesh run --input-file``): how its runs ended, its accuracy on the
labelled items, how many calls the items needed (where early stopping paid off: a histogram), and a row per item.

Built from the store alone (each run's record, its batch tag and its stored answer), so it can be written long
after the batch ran, and again after ``agentmesh resume --batch`` finished what was left.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from agentmesh.datasets import matches_gold
from agentmesh.store import RunRecord
from agentmesh.viz.report import CSS, figure, folded
from agentmesh.viz.svg import FONT_FAMILY, esc, text_width


def _e(value: Any) -> str:
    """``value`` as HTML text or attribute value: escaped, and control characters (a model's NUL or terminal
    colour codes) replaced, as in the pictures; the page carried them raw, which HTML forbids and which made
    tools take the page for a binary file."""
    return esc(value)


def _tag(record: RunRecord) -> dict[str, Any]:
    tag = record.meta.get("batch")
    return dict(tag) if isinstance(tag, Mapping) else {}


def batch_html(batch: str, records: Sequence[RunRecord], answers: Mapping[str, Any]) -> str:
    """The page of batch ``batch``: ``records`` are its runs, ``answers`` their stored answers by run id."""
    rows = sorted(records, key=lambda r: (int(_tag(r).get("line") or 0), r.created_at))
    statuses = Counter(str(r.status) for r in rows)
    totals = [r.totals or {} for r in rows]
    labelled = [r for r in rows if _tag(r).get("gold") is not None]
    right = sum(1 for r in labelled if _correct(r, answers) is True)
    graphs = sorted({r.graph for r in rows})
    source = next((str(_tag(r)["file"]) for r in rows if _tag(r).get("file")), "")
    # the lines an interruption kept from starting have no run: the page counted its runs as the batch's items
    # ("3 items" of a file of 4) and never said that one was left to run
    read = max([int(_tag(r).get("items") or 0) for r in rows] or [0])
    unstarted = read - len({_tag(r).get("line") for r in rows})
    never = (
        f" ({unstarted} never started: agentmesh resume --batch {batch} runs {'it' if unstarted == 1 else 'them'})"
        if unstarted > 0
        else ""
    )
    facts = [
        ("batch", batch),
        ("graph", ", ".join(graphs)),
        ("items", f"{max(read, len(rows))}" + (f" from {source}" if source else "") + never),
        (
            "runs",
            ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
            + (f"; {unstarted} line{_s(unstarted)} without a run" if unstarted > 0 else ""),
        ),
        ("calls", sum(int(t.get("calls", 0)) for t in totals)),
        ("tokens", sum(int(t.get("total_tokens", 0)) for t in totals)),
        ("cost", _batch_cost(totals)),
    ]
    if labelled:
        facts.insert(4, ("accuracy", f"{right} of {len(labelled)} labelled items right ({right / len(labelled):.1%})"))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>batch {_e(batch)}</title><style>{CSS}</style></head><body>",
        f"<h1>batch {_e(batch)} <span class='muted'>{_e(', '.join(graphs))}</span></h1>",
        '<table class="summary">'
        + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in facts)
        + "</table>",
        "<h2>Calls per item</h2>",
        figure(calls_histogram([int(t.get("calls", 0)) for t in totals])),
        "<h2>Items</h2>",
        '<table class="items"><tr><th>line</th><th>run</th><th>status</th><th>answer</th>'
        + ("<th>gold</th>" if labelled else "")
        + "<th>calls</th><th>tokens</th><th>cost</th><th>stop reason / error</th></tr>",
    ]
    for r in rows:
        tag, t = _tag(r), r.totals or {}
        answer = answers.get(r.id)
        cells = [
            _e(tag.get("line", "")),
            f"<code>{_e(r.id[:12])}</code>",
            _e(r.status),
            "-" if answer is None else folded(answer),
        ]
        if labelled:
            correct = _correct(r, answers)
            mark = {True: ' <span class="ok">✓</span>', False: ' <span class="err">✗</span>', None: ""}[correct]
            cells.append("-" if tag.get("gold") is None else _e(tag["gold"]) + mark)
        cost = t.get("cost_usd")
        cells += [
            _e(t.get("calls", 0)),
            _e(t.get("total_tokens", 0)),
            ("n/a" if int(t.get("calls", 0)) else "-") if cost is None else f"${cost:.6f}",
            f'<span class="err">{folded(r.error)}</span>' if r.error else _e(r.stop_reason or "-"),
        ]
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts += ["</table>", "<p class='muted'>Each run in full: <code>agentmesh report RUN</code>.</p>", "</body></html>"]
    return "\n".join(parts)


def _batch_cost(totals: Sequence[Mapping[str, Any]]) -> str:
    """The batch's cost: the sum of its runs' known costs, saying how many runs that made calls have none (a
    model without a price). The bare sum of the known ones passed for the batch's cost, which the README's rule
    for a run forbids: an unknown cost is n/a, not a partial sum."""
    known = [float(t["cost_usd"]) for t in totals if t.get("cost_usd") is not None]
    unknown = sum(1 for t in totals if t.get("cost_usd") is None and int(t.get("calls", 0)))
    if not unknown:
        return f"${sum(known):.6f}" if known else "-"
    missing = f"{unknown} run{_s(unknown)} of unknown cost (a model without a price)"
    return f"${sum(known):.6f} + n/a: {missing}" if known else f"n/a: {missing}"


def _correct(record: RunRecord, answers: Mapping[str, Any]) -> bool | None:
    """Whether the run's stored answer is its item's gold one (``None``: no gold, or no answer because it failed)."""
    gold = _tag(record).get("gold")
    if gold is None or str(record.status) not in ("succeeded", "stopped"):
        return None
    return matches_gold(answers.get(record.id), str(gold))


#: The widest the picture gets (px): the report's page is 1,200 px wide.
MAX_WIDTH = 1180.0
_GAP = 10.0


def _bins(counts: Counter[int], most: int) -> list[tuple[int, int, int]]:
    """``(low, high, items)`` per bar: a bar per call count, or, past ``most`` distinct counts, at most ``most``
    ranges of a round width (1, 2 or 5 times a power of ten). A bar per count made a 300-item batch whose items
    each needed a different number of calls a picture 6,500 px wide."""
    values = sorted(counts)
    if len(values) <= most:
        return [(v, v, counts[v]) for v in values]
    span = values[-1] - values[0] + 1
    width, power = 0, 1
    while not width:  # the first range starts at a multiple of the width: one range more than span / width
        width = next((m * power for m in (1, 2, 5) if math.ceil(span / (m * power)) + 1 <= most), 0)
        power *= 10
    first = values[0] // width * width
    grouped: Counter[int] = Counter()
    for v, n in counts.items():
        grouped[(v - first) // width] += n
    return [(first + i * width, first + (i + 1) * width - 1, grouped[i]) for i in range(max(grouped) + 1)]


def _layout(counts: Counter[int]) -> tuple[list[tuple[int, int, int]], list[str], float]:
    """The bars, their names under them and the bars' width: as many bars as fit :data:`MAX_WIDTH` with each name
    within its bar's room (ranges of large counts have long names, so fewer of them fit)."""
    for most in (24, 16, 12, 8, 6, 4, 3):
        bins = _bins(counts, most)
        names = [str(low) if low == high else f"{low}\u2013{high}" for low, high, _ in bins]
        bar = max(34.0, max(text_width(name, 11) for name in names) + 4 - _GAP)
        if 60 + len(bins) * (bar + _GAP) <= MAX_WIDTH:
            break
    return bins, names, bar


def calls_histogram(calls: Sequence[int]) -> str:
    """How many items needed each number of model calls, as SVG bars: with an early stop, the items that stopped
    early stand apart from those that ran every round."""
    counts = Counter(calls)
    if not counts:
        return "<p class='muted'>no runs</p>"
    bins, names, bar = _layout(counts)
    gap, height, base = _GAP, 140.0, 170.0
    width = max(60 + len(bins) * (bar + gap), 320.0)
    top = max(n for _, _, n in bins)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{base + 40:.0f}" '
        f'viewBox="0 0 {width:.0f} {base + 40:.0f}" font-family="{FONT_FAMILY}" class="calls-histogram">',
        f'<rect width="{width:.0f}" height="{base + 40:.0f}" fill="white"/>',
        f'<line x1="30" y1="{base}" x2="{width - 10:.0f}" y2="{base}" stroke="#9ca3af"/>',
    ]
    for i, ((low, high, n), name) in enumerate(zip(bins, names, strict=True)):
        x = 40 + i * (bar + gap)
        h = height * n / top
        made = f"{low} call{_s(low)}" if low == high else f"{low} to {high} calls"
        out.append(
            f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar:.0f}" height="{h:.1f}" fill="#60a5fa" class="bar">'
            f"<title>{esc(f'{n} item{_s(n)} made {made}')}</title></rect>"
        )
        out.append(f'<text x="{x + bar / 2:.1f}" y="{base - h - 4:.1f}" font-size="11" text-anchor="middle">{n}</text>')
        out.append(
            f'<text x="{x + bar / 2:.1f}" y="{base + 16:.0f}" font-size="11" text-anchor="middle" '
            f'fill="#374151">{esc(name)}</text>'
        )
    out.append(
        f'<text x="{width / 2:.0f}" y="{base + 34:.0f}" font-size="11" text-anchor="middle" fill="#555">'
        "model calls per item (bars: how many items)</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def _s(n: int) -> str:
    return "" if n == 1 else "s"
