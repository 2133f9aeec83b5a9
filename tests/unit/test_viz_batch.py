"""The batch report's picture of calls per item (``agentmesh report --batch``): readable however many items."""

from __future__ import annotations

import html
import itertools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from agentmesh.store import RunRecord
from agentmesh.viz.batch import batch_html, calls_histogram
from agentmesh.viz.svg import text_width

SVG = "{http://www.w3.org/2000/svg}"


def _bars(svg: str) -> tuple[float, list[tuple[float, float, str]], list[tuple[float, float, str]]]:
    """The picture's width, each bar (x, x end, tooltip) and each axis label (left, right, text)."""
    root = ET.fromstring(svg)
    bars = []
    for rect in root.iter(f"{SVG}rect"):
        if rect.get("class") == "bar":
            x = float(rect.get("x") or 0)
            bars.append((x, x + float(rect.get("width") or 0), rect.findtext(f"{SVG}title") or ""))
    labels = []
    for t in root.iter(f"{SVG}text"):
        if t.get("fill") == "#374151":  # the call counts under the bars
            x, w = float(t.get("x") or 0), text_width(t.text or "", 11)
            labels.append((x - w / 2, x + w / 2, t.text or ""))
    return float(root.get("width") or 0), bars, labels


def test_few_call_counts_get_a_bar_each() -> None:
    width, bars, labels = _bars(calls_histogram([3] * 5 + [6] * 2 + [9]))
    assert [t for *_, t in bars] == ["5 items made 3 calls", "2 items made 6 calls", "1 item made 9 calls"]
    assert [t for *_, t in labels] == ["3", "6", "9"] and width == 320


@pytest.mark.parametrize("calls", [list(range(1, 301)), [i * 997 for i in range(300)], [2] * 299 + [5000]])
def test_many_call_counts_are_grouped_into_ranges_that_fit_a_page(calls: list[int]) -> None:
    """A bar per distinct count made a 300-item batch whose items each needed a different number of calls a
    picture 6,500 px wide, past any page (the report's is 1,200 px)."""
    width, bars, labels = _bars(calls_histogram(calls))
    assert width <= 1200
    told = 0
    for *_, tip in bars:
        match = re.fullmatch(r"(\d+) items? made (\d+)(?: to (\d+))? calls?", tip)
        assert match is not None, tip
        told += int(match.group(1))
        assert int(match.group(2)) <= int(match.group(3) or match.group(2))
    assert told == len(calls)  # every item in one bar
    for (_, right, a), (left, _, b) in itertools.pairwise(labels):
        assert right <= left, (a, b)  # the ranges under the bars do not run together
    for (x0, x1, _), (left, right, _) in zip(bars, labels, strict=True):
        assert left >= x0 - 5 and right <= x1 + 5


def _record(line: int, *, error: str | None = None) -> RunRecord:
    return RunRecord(
        id=f"run{line:04d}" + "0" * 24, graph="mixture_of_agents", spec_hash=None, inputs={"question": "q"},
        status="failed" if error else "succeeded", stop_reason=None if error else "completed", parent_run_id=None,
        model="scripted:x", totals={"calls": 7, "total_tokens": 100}, error=error,
        created_at=datetime(2026, 1, 1, tzinfo=UTC), finished_at=None, meta={"batch": {"line": line}},
        schema_version=1,
    )  # fmt: skip


def test_long_answers_and_errors_are_folded_and_escaped_in_the_items_table() -> None:
    """Every row carried the whole of a long answer (an aggregator's essay): a few hundred items made a page of
    walls of text in which the table could not be read."""
    essay = "<script>alert(1)</script> An essay & more. " + "word " * 400
    records = [_record(1), _record(2), _record(3, error="ModelError: " + "x" * 500)]
    page = batch_html("b1", records, {records[0].id: essay, records[1].id: "42"})
    assert "<script>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # in the folded line and in the whole text
    rows = re.findall(r"<tr><td>\d+</td>.*?</tr>", page, re.S)
    assert len(rows) == 3
    for row in rows:
        shown = re.sub(r"<pre>.*?</pre>", "", row, flags=re.S)  # what shows before a click
        assert len(re.sub(r"<[^>]+>", "", html.unescape(shown))) < 400, shown
    assert f"<pre>{html.escape(essay)}</pre>" in rows[0]  # the whole answer, one click away
    assert "<td>42</td>" in rows[1] and "<details>" not in rows[1]  # a short answer as it is
    assert "x" * 500 in rows[2]


def test_a_batch_with_runs_of_unknown_cost_does_not_pass_a_partial_sum_for_its_cost() -> None:
    """A run with a call of a model the price table lacks has an unknown cost (n/a, README): the page summed the
    known costs alone and gave $0.500000 as the batch's cost."""
    priced = _record(1).model_copy(update={"totals": {"calls": 3, "total_tokens": 10, "cost_usd": 0.5}})
    unpriced = _record(2).model_copy(update={"totals": {"calls": 3, "total_tokens": 10, "cost_usd": None}})
    never = _record(3).model_copy(update={"totals": {"calls": 0, "total_tokens": 0, "cost_usd": None}})
    page = batch_html("b1", [priced, unpriced, never], {})
    cost = re.search(r"<tr><td>cost</td><td>(.*?)</td></tr>", page)
    assert cost is not None and cost.group(1) == "$0.500000 + n/a: 1 run of unknown cost (a model without a price)"
    rows = re.findall(r"<tr><td>\d+</td>.*?</tr>", page, re.S)
    assert [re.findall(r"<td>(\$[\d.]+|n/a|-)</td>", row)[-1] for row in rows] == ["$0.500000", "n/a", "-"]
    only = batch_html("b2", [priced, never], {})
    assert "<tr><td>cost</td><td>$0.500000</td></tr>" in only  # a run without calls costs nothing


def test_control_characters_of_an_answer_are_replaced_in_the_page() -> None:
    record = _record(1)
    page = batch_html("b1", [record], {record.id: "4\x002\x1b[0m"})
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", page) and "<td>4\ufffd2\ufffd[0m</td>" in page


def test_the_lines_an_interruption_kept_from_starting_are_counted_and_named() -> None:
    """A batch of 4 lines interrupted before its fourth started: its page said "items 3" and nothing of the line
    left to run (agentmesh run said "Never started: line 4" and how to run it)."""
    tag = {"id": "b1b1b1b1b1b1", "file": "/data/items.jsonl", "items": 4}
    records = [_record(n).model_copy(update={"meta": {"batch": {**tag, "line": n}}}) for n in (1, 2, 3)]
    page = batch_html("b1b1b1b1b1b1", records, {})
    assert (
        "<tr><td>items</td><td>4 from /data/items.jsonl (1 never started: agentmesh resume --batch b1b1b1b1b1b1 "
        "runs it)</td></tr>"
    ) in page
    assert "<tr><td>runs</td><td>3 succeeded; 1 line without a run</td></tr>" in page
    whole = batch_html(
        "b1b1b1b1b1b1", [*records, records[0].model_copy(update={"meta": {"batch": {**tag, "line": 4}}})], {}
    )
    assert "<tr><td>items</td><td>4 from /data/items.jsonl</td></tr>" in whole and "without a run" not in whole
    assert "<tr><td>items</td><td>3</td></tr>" in batch_html("b1", [_record(1), _record(2), _record(3)], {})
