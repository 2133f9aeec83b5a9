"""The batch report's picture of calls per item (``agentmesh report --batch``): readable however many items."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

import pytest

from agentmesh.viz.batch import calls_histogram
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
