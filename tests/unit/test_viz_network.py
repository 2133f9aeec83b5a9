"""The agent network picture of a run (``agentmesh report``): what each node of each round did."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from agentmesh.viz.network import network_svg

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
    assert len(list(root.iter(f"{SVG}line"))) == 4  # the answers each node of round 2 was shown


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
