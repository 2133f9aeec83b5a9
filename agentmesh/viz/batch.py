"""One self-contained HTML page for a batch (``agentmesh run --input-file``): how its runs ended, its accuracy on the
labelled items, how many calls the items needed (where early stopping paid off: a histogram), and a row per item.

Built from the store alone (each run's record, its batch tag and its stored answer), so it can be written long
after the batch ran, and again after ``agentmesh resume --batch`` finished what was left.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from agentmesh.datasets import matches_gold
from agentmesh.store import RunRecord
from agentmesh.viz.report import CSS
from agentmesh.viz.svg import FONT_FAMILY, esc


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _tag(record: RunRecord) -> dict[str, Any]:
    tag = record.meta.get("batch")
    return dict(tag) if isinstance(tag, Mapping) else {}


def batch_html(batch: str, records: Sequence[RunRecord], answers: Mapping[str, Any]) -> str:
    """The page of batch ``batch``: ``records`` are its runs, ``answers`` their stored answers by run id."""
    rows = sorted(records, key=lambda r: (int(_tag(r).get("line") or 0), r.created_at))
    statuses = Counter(str(r.status) for r in rows)
    totals = [r.totals or {} for r in rows]
    costs = [float(t["cost_usd"]) for t in totals if t.get("cost_usd") is not None]
    labelled = [r for r in rows if _tag(r).get("gold") is not None]
    right = sum(1 for r in labelled if _correct(r, answers) is True)
    graphs = sorted({r.graph for r in rows})
    source = next((str(_tag(r)["file"]) for r in rows if _tag(r).get("file")), "")
    facts = [
        ("batch", batch),
        ("graph", ", ".join(graphs)),
        ("items", f"{len(rows)}" + (f" from {source}" if source else "")),
        ("runs", ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))),
        ("calls", sum(int(t.get("calls", 0)) for t in totals)),
        ("tokens", sum(int(t.get("total_tokens", 0)) for t in totals)),
        ("cost", f"${sum(costs):.6f}" if costs else "-"),
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
        calls_histogram([int(t.get("calls", 0)) for t in totals]),
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
            "-" if answer is None else _e(answer),
        ]
        if labelled:
            correct = _correct(r, answers)
            mark = {True: ' <span class="ok">✓</span>', False: ' <span class="err">✗</span>', None: ""}[correct]
            cells.append("-" if tag.get("gold") is None else _e(tag["gold"]) + mark)
        cost = t.get("cost_usd")
        cells += [
            _e(t.get("calls", 0)),
            _e(t.get("total_tokens", 0)),
            "-" if cost is None else f"${cost:.6f}",
            f'<span class="err">{_e(r.error)}</span>' if r.error else _e(r.stop_reason or "-"),
        ]
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts += ["</table>", "<p class='muted'>Each run in full: <code>agentmesh report RUN</code>.</p>", "</body></html>"]
    return "\n".join(parts)


def _correct(record: RunRecord, answers: Mapping[str, Any]) -> bool | None:
    """Whether the run's stored answer is its item's gold one (``None``: no gold, or no answer because it failed)."""
    gold = _tag(record).get("gold")
    if gold is None or str(record.status) not in ("succeeded", "stopped"):
        return None
    return matches_gold(answers.get(record.id), str(gold))


def calls_histogram(calls: Sequence[int]) -> str:
    """How many items needed each number of model calls, as SVG bars: with an early stop, the items that stopped
    early stand apart from those that ran every round."""
    counts = Counter(calls)
    if not counts:
        return "<p class='muted'>no runs</p>"
    values = sorted(counts)
    bar, gap, height, base = 34.0, 10.0, 140.0, 170.0
    width = max(60 + len(values) * (bar + gap), 320.0)
    top = max(counts.values())
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{base + 40:.0f}" '
        f'viewBox="0 0 {width:.0f} {base + 40:.0f}" font-family="{FONT_FAMILY}" class="calls-histogram">',
        f'<rect width="{width:.0f}" height="{base + 40:.0f}" fill="white"/>',
        f'<line x1="30" y1="{base}" x2="{width - 10:.0f}" y2="{base}" stroke="#9ca3af"/>',
    ]
    for i, value in enumerate(values):
        n = counts[value]
        x = 40 + i * (bar + gap)
        h = height * n / top
        out.append(
            f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar:.0f}" height="{h:.1f}" fill="#60a5fa" class="bar">'
            f"<title>{esc(f'{n} item{_s(n)} made {value} call{_s(value)}')}</title></rect>"
        )
        out.append(f'<text x="{x + bar / 2:.1f}" y="{base - h - 4:.1f}" font-size="11" text-anchor="middle">{n}</text>')
        out.append(
            f'<text x="{x + bar / 2:.1f}" y="{base + 16:.0f}" font-size="11" text-anchor="middle" '
            f'fill="#374151">{value}</text>'
        )
    out.append(
        f'<text x="{width / 2:.0f}" y="{base + 34:.0f}" font-size="11" text-anchor="middle" fill="#555">'
        "model calls per item (bars: how many items)</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def _s(n: int) -> str:
    return "" if n == 1 else "s"
