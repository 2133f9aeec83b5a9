"""One self-contained HTML page per run: what happened, drawn and folded, readable with no network and no script.

The page holds the run's summary (graph, model, status, stop reason, calls, tokens, cost, duration), a drawing of
the graph it ran, the agent network of every team node (inline SVG: nodes per round, the edges each node was shown,
pruned agents crossed out, idle ones grey, importance as size and colour when the run has scores) with its
importance table, and the timeline: the model calls over time (a bar per call, by agent), then one foldable block
per step with its calls, each call's prompt and reply folded again. Everything is escaped; the only styling is an
inline stylesheet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agentmesh._text import counted
from agentmesh.runtime.outcome import final_answer, is_ask_call
from agentmesh.spec import GraphSpec
from agentmesh.timeline import CallView, Step, Timeline
from agentmesh.viz.graph import graph_svg
from agentmesh.viz.network import network_svg
from agentmesh.viz.numbers import ranked_apart
from agentmesh.viz.svg import esc, shorten
from agentmesh.viz.timeline import timeline_svg

#: The pages' stylesheet (the run report's and the batch report's): inline, no network.
CSS = """
body{font-family:DejaVu Sans,Verdana,Helvetica,Arial,sans-serif;margin:24px;color:#111;max-width:1200px}
h1{font-size:22px;margin:0 0 8px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #e5e7eb;padding:4px 8px;text-align:left}
.summary td:first-child{font-weight:bold;background:#f9fafb} .stop{background:#fef3c7;padding:8px 12px;
border-radius:6px;display:inline-block} details{margin:4px 0 4px 8px} summary{cursor:pointer}
.call{font-size:13px} pre{white-space:pre-wrap;background:#f3f4f6;padding:8px;border-radius:4px;font-size:12px}
.muted{color:#6b7280} .err{color:#b91c1c} .ok{color:#15803d} .replayed{color:#6b7280;font-style:italic}
.figure{overflow-x:auto;max-width:100%} td.num{text-align:right;font-variant-numeric:tabular-nums}
"""


def figure(svg: str) -> str:
    """A picture in the page, in a box of the page's width that scrolls sideways when the picture is wider (a
    wide graph, a network of many rounds): unwrapped, a picture wider than the page made the whole page scroll."""
    return f'<div class="figure">{svg.strip()}</div>'


def _e(value: Any) -> str:
    """``value`` as HTML text or attribute value: escaped, and control characters (a model's NUL or terminal
    colour codes) replaced, as in the pictures; the page carried them raw, which HTML forbids and which made
    tools take the page for a binary file."""
    return esc(value)


#: The longest text a table cell shows in full; a longer one (an aggregator's essay, code, a long error) is
#: folded: its start, and the whole on a click.
CELL_CHARS = 120


def folded(value: Any) -> str:
    """An answer, input or error for a table cell, escaped: in full when short, else its start folded over the
    whole (line breaks kept). A cell holding the whole of a long text buried the table it was in."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= CELL_CHARS and "\n" not in text:
        return _e(text)
    return f"<details><summary>{_e(shorten(text, CELL_CHARS - 20))}</summary><pre>{_e(text)}</pre></details>"


def _money(value: float | None) -> str:
    """A cost; an unknown one (a call of a model without a price) is "n/a", as ``agentmesh show`` says."""
    return "n/a" if value is None else f"${value:.6f}"


def report_html(story: Timeline) -> str:
    """The HTML page of a run's timeline (see the module docstring)."""
    run = story.run
    totals = run.totals or {}
    duration = (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
    # (label, HTML): an input or an answer that is long or runs over several lines (a HumanEval prompt, an
    # aggregator's essay) is folded; the inputs were one JSON string cut at 2,000 characters without a mark,
    # their line breaks shown as \n
    rows = [
        ("run", _e(run.id)),
        ("graph", _e(run.graph)),
        ("status", _e(run.status)),
        ("answer", folded(_answer(story))),
        ("model", _e(run.model or "-")),
        *((f"input {key}", folded(value)) for key, value in run.inputs.items()),
        ("calls", _e(_calls(story))),
        ("tokens", _e(f"{totals.get('prompt_tokens', 0)} in + {totals.get('completion_tokens', 0)} out")),
        ("cost", _e(_money(totals.get("cost_usd")) if totals.get("calls") else "-")),
        ("duration", _e("-" if duration is None else f"{duration:.2f} s")),
    ]
    if run.parent_run_id:
        rows.append(("forked from", _e(run.parent_run_id)))
    if run.error:
        rows.append(("error", folded(run.error)))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(run.graph)} run {_e(run.id[:12])}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(run.graph)} <span class='muted'>run {_e(run.id[:12])}</span></h1>",
        f'<p class="stop" id="stop-reason"><b>stop reason:</b> {_e(run.stop_reason or "-")}</p>',
        '<table class="summary">' + "".join(f"<tr><td>{_e(k)}</td><td>{v}</td></tr>" for k, v in rows) + "</table>",
    ]
    if story.spec_problem:
        parts.append(f'<p class="muted">The run\'s spec cannot be read here: {_e(story.spec_problem)}</p>')
    parts += _graph_section(story.spec)
    for network in story.networks:
        scores = network.importance or {}
        parts.append(f"<h2>Agent network of <code>{_e(network.node)}</code></h2>")
        parts.append(
            figure(
                network_svg(
                    network.history,
                    network.agents,
                    importance=scores.get("per_node"),
                    title=network.node,
                    groups=network.groups,
                )
            )
        )
        if scores.get("per_agent"):
            parts.append(importance_table(scores))
    parts.append("<h2>Timeline</h2>")
    chart = timeline_svg(story)
    if chart is not None:
        parts.append(figure(chart))
    else:  # a run cut short before its first call, or a graph of functions only: say so, not an empty section
        parts.append('<p class="muted" id="no-calls">No model call was recorded for this run: nothing to draw.</p>')
    parts += [_step(number, step) for number, step in enumerate(story.steps, start=1)]
    parts.append("</body></html>")
    return "\n".join(parts)


def _calls(story: Timeline) -> str:
    """The run's calls as ``agentmesh show`` counts them, with what the count leaves out or holds: the calls a fork
    or a resume served from the record (listed below, not counted), and the failed attempts among them. The page
    said "calls 5" above a fork's 12 calls, and "calls 6" of a run whose two last calls had failed."""
    totals = story.run.totals or {}
    said = str(totals.get("calls", 0))
    served = sum(1 for step in story.steps for c in step.calls if c.replayed)
    errors = int(totals.get("errors") or 0)
    notes = ([f"{errors} failed"] if errors else []) + ([f"{served} more served from the record"] if served else [])
    return said + (f" ({', '.join(notes)})" if notes else "")


def importance_table(scores: Mapping[str, Any]) -> str:
    """A team node's importance scores (its ``per_agent``, ``per_agent_exact`` when stored), best first, each
    written with the decimals that tell it from the next (:mod:`agentmesh.viz.numbers`): at a fixed four, scores
    0.00002 apart read the same, in a table ranked by them. Numbers sit right-aligned, one width, in their column."""
    rows = "".join(f'<tr><td>{_e(a)}</td><td class="num">{v}</td></tr>' for a, v in ranked_apart(scores))
    table = f'<table class="importance"><tr><th>agent</th><th>importance</th></tr>{rows}</table>'
    # what the numbers are: a reader took 1.1685 for a share gone wrong (scores above 1, a total of 3)
    sums = [float(x) for x in scores.get("layer_sums") or [] if float(x) > 0]  # the layers that ran
    total = f"; over this run's {counted(len(sums), 'layer')} they add up to {sum(sums):.4g}" if sums else ""
    return table + (
        "<p class=\"muted importance-note\">An agent's importance is the sum of its nodes' over the layers, and the "
        f"nodes of each layer share 1 (DyLAN's Agent Importance Score){total}.</p>"
    )


def _answer(story: Timeline) -> str:
    """The run's answer, as ``agentmesh runs`` lists it (the output node's, or the best so far of a stopped run);
    "-" for a run that ended without one. The page said it only in the summary of its last step, folded at the
    bottom, if at all (a run stopped by its budget)."""
    run = story.run
    if str(run.status) in ("succeeded", "stopped") and is_ask_call(run):
        # ``agentmesh ask``: no graph, its one call's reply (as ``agentmesh runs`` lists it; the page said "-")
        replies = [c.reply for step in story.steps for c in step.calls if not c.error]
        return replies[-1] if replies else "-"
    if str(run.status) not in ("succeeded", "stopped") or story.spec is None or not story.outputs:
        return "-"
    answer = final_answer(story.spec, story.outputs)["answer"]
    return "-" if answer is None else str(answer)


def _graph_section(spec: GraphSpec | None) -> list[str]:
    """The drawing of the graph the run executed: the spec stored with the run, not today's file (which may
    have changed since). A run without a spec (``agentmesh ask``) has none."""
    return [] if spec is None else ["<h2>Graph</h2>", figure(graph_svg(spec, title=False))]


def _step(number: int, step: Step) -> str:
    facts = []
    if step.summary.get("answer") is not None:
        facts.append(f"answer <b>{_e(step.summary['answer'])}</b>")
    if step.summary.get("taken"):  # a branch: which way it went (what explains the nodes that follow, or not)
        facts.append(f"took {_e(step.summary['taken'])}")
    if step.scores is not None:
        facts.append(f"scores {_e(step.scores)}")
    if step.calls:
        facts.append(
            f"{counted(len(step.calls), 'call')}, {step.tokens} tokens, {_e(step.duration())}, {_money(step.cost_usd)}"
        )
    stop = step.summary.get("stop") or step.summary.get("stopped")
    if stop:
        facts.append(f"stop: {_e(stop)}")
    if step.summary.get("unfinished"):
        facts.append('<span class="err">unfinished</span>')
    where = f"{_e(step.node)}" + (f" ({_e(step.op)})" if step.op else "")
    where += step.place
    calls = "".join(_call(c) for c in step.calls)
    said = f" — {' · '.join(facts)}" if facts else ""  # (a loop's start: nothing to say but that it began)
    return f'<details class="step"><summary>{number}. {where}{said}</summary>{calls}</details>'


def _call(call: CallView) -> str:
    label = f"{_e(call.agent)}[{call.call_index}]"
    if call.error:
        return f'<div class="call err">{label}: error: {_e(call.error)}</div>'
    tokens = f"{call.tokens()}, {(call.latency_s or 0):.2f} s"
    replayed = ' <span class="replayed">(served from the parent run)</span>' if call.replayed else ""
    short = " ".join(call.reply.split())
    short = short if len(short) <= 140 else short[:139] + "…"
    prompt = "".join(f"<p class='muted'>{_e(m['role'])}</p><pre>{_e(m['content'])}</pre>" for m in call.messages)
    thought = f"<p class='muted'>reasoning</p><pre class='muted'>{_e(call.reasoning)}</pre>" if call.reasoning else ""
    return (
        f'<details class="call"><summary>{label}{replayed} → {_e(short)} <span class="muted">({tokens})</span>'
        f"</summary>{prompt}{thought}<p class='muted'>reply</p><pre>{_e(call.reply)}</pre></details>"
    )
