"""The agent network picture of a run (``agentmesh report``): what each node of each round did."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from agentmesh.viz.network import network_svg
from agentmesh.viz.svg import text_width

SVG = "{http://www.w3.org/2000/svg}"


def test_answered_unparsed_and_idle_nodes_are_told_apart() -> None:
    history = [
        {"round": 1, "nodes": [{"slot": 0, "key": "51"}, {"slot": 1, "key": None}, {"slot": 2, "key": "17"}]},
        {"round": 2, "nodes": [{"slot": 0, "key": "51", "seen": [1, 2]}, {"slot": 2, "key": None, "seen": [0, 1]}]},
    ]
    root = ET.fromstring(network_svg(history, ["a", "b", "c"], title="debate"))
    tips = [c.findtext(f"{SVG}title") for c in root.iter(f"{SVG}circle")]
    assert tips == [
        "a, round 1: answer 51",
        "a, round 2: answer 51",
        "b, round 1: replied, no answer parsed",
        "b, round 2: did not run",
        "c, round 1: answer 17",
        "c, round 2: replied, no answer parsed",
    ]
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert labels.count("no answer") == 2 and labels.count("51") == 2 and labels.count("17") == 1
    centres = [(float(c.get("cx") or 0), float(c.get("cy") or 0)) for c in root.iter(f"{SVG}circle")]
    x1, x2 = sorted({x for x, _ in centres})
    ys = sorted({y for _, y in centres})
    assert _seen(root) == {  # the answers each node of round 2 was shown: from round 1's column to round 2's
        ((x1, ys[1]), (x2, ys[0])),
        ((x1, ys[2]), (x2, ys[0])),
        ((x1, ys[0]), (x2, ys[2])),
        ((x1, ys[1]), (x2, ys[2])),
    }


def test_a_node_whose_reply_is_no_vote_says_what_it_gave() -> None:
    """A code writer's or a judge's node has no vote key: every node of a dylan_code network read "no answer"."""
    history = [
        {"round": 1, "kind": "writers", "nodes": [{"slot": 0, "key": None, "label": "code"}]},
        {"round": 2, "kind": "judges", "nodes": [{"slot": 1, "key": None, "label": "unit test results", "seen": [0]}]},
    ]
    root = ET.fromstring(network_svg(history, ["writer", "tester"], groups={"writers": [0], "judges": [1]}))
    tips = [c.findtext(f"{SVG}title") for c in root.iter(f"{SVG}circle")]
    assert tips == ["writer, round 1: code", "tester, round 2: unit test results"]
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "no answer" not in labels and "code" in labels and "unit test results" in labels


def _text_boxes(root: ET.Element) -> list[tuple[float, float, float, str]]:
    """(left, right, baseline y, text) of every answer beside a node (11 px, left-aligned)."""
    out = []
    for t in root.iter(f"{SVG}text"):
        if t.get("font-size") == "11" and t.get("text-anchor") is None:
            x, text = float(t.get("x") or 0), t.text or ""
            out.append((x, x + text_width(text, 11), float(t.get("y") or 0), text))
    return out


def _seen(root: ET.Element) -> set[tuple[tuple[float, float], tuple[float, float]]]:
    """The edges drawn, each from (x, y) to (x, y)."""
    out = set()
    for path in root.iter(f"{SVG}path"):
        if path.get("class") == "seen":
            for x1, y1, x2, y2 in re.findall(r"M([\d.]+) ([\d.]+)L([\d.]+) ([\d.]+)", path.get("d") or ""):
                out.add(((float(x1), float(y1)), (float(x2), float(y2))))
    return out


def test_a_large_full_mesh_stays_a_light_page() -> None:
    """40 agents over 20 rounds, each shown every other agent's answer: a line element per edge made 30,000
    elements, 2.9 MB of the report's 3.2 MB, and a grey slab over the nodes."""
    agents = [f"agent_{i:02d}" for i in range(40)]
    history = [
        {"round": r, "nodes": [{"slot": s, "key": str(r % 5), "seen": [o for o in range(40) if o != s] if r > 1 else []}
                               for s in range(40)]}
        for r in range(1, 21)
    ]  # fmt: skip
    svg = network_svg(history, agents, title="team")
    root = ET.fromstring(svg)
    assert len(_seen(root)) == 40 * 39 * 19  # every edge still drawn
    assert len(svg) < 1_200_000
    paths = [p for p in root.iter(f"{SVG}path") if p.get("class") == "seen"]
    assert len(paths) == 19 and all(float(p.get("stroke-opacity") or 1) <= 0.25 for p in paths)


@pytest.mark.parametrize("kind", ["key", "label"])
def test_long_answers_stay_in_their_column_and_in_the_picture(kind: str) -> None:
    """A shortened answer ("a_very_long…", 12 characters) beside a node grown by its importance ran into the next
    round's node, and the last round's ran past the right edge: columns were 120 px whatever they held."""
    rounds, agents = 7, ["a", "b"]
    value = "a_very_long_answer_string" if kind == "key" else "unit test results, and more"
    history = [
        {"round": r, "nodes": [{"slot": s, "key": None, kind: value, "seen": [0, 1] if r > 1 else []} for s in (0, 1)]}
        for r in range(1, rounds + 1)
    ]
    importance = {f"{r},{s}": 1.0 for r in range(1, rounds + 1) for s in (0, 1)}
    root = ET.fromstring(network_svg(history, agents, importance=importance, title="t"))
    width = float(root.get("width") or 0)
    circles = [
        (float(c.get("cx") or 0), float(c.get("cy") or 0), float(c.get("r") or 0)) for c in root.iter(f"{SVG}circle")
    ]
    texts = _text_boxes(root)
    assert len(texts) == rounds * len(agents) and all(t[3].endswith("…") for t in texts)
    for left, right, baseline, text in texts:
        assert right <= width, (text, right, width)
        for cx, cy, r in circles:
            same_row = abs(cy - (baseline - 4)) < r
            assert not (same_row and cx - r < right and left < cx + r), (text, left, right, cx)


def test_a_node_of_no_importance_is_the_lightest_not_the_no_score_blue() -> None:
    """A node whose importance was exactly 0 got the light blue of a run without scores, darker than a node of
    importance 0.05: it read as mattering more than one that mattered a little."""
    history = [{"round": 1, "nodes": [{"slot": s, "key": "1"} for s in range(3)]}]
    root = ET.fromstring(network_svg(history, ["a", "b", "c"], importance={"1,0": 0.0, "1,1": 1.0, "1,2": 0.05}))
    fills = [c.get("fill") or "" for c in root.iter(f"{SVG}circle")]

    def lightness(colour: str) -> int:
        return sum(int(colour[i : i + 2], 16) for i in (1, 3, 5))

    assert lightness(fills[0]) >= lightness(fills[2]) > lightness(fills[1])
    assert fills[0] == "#ffffff"
