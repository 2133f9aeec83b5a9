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
