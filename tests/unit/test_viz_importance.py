"""The picture of a team-optimisation job (``agentmesh optimize``): the network by mean importance and the ranking."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from agentmesh.viz.importance import importance_svg
from agentmesh.viz.svg import text_width

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    "graph", ["dylan_mmlu", "reviewers_of_pull_requests_and_of_their_follow_up_changes_in_the_monorepo_v2"]
)
def test_the_bars_rank_the_agents_best_first_and_everything_fits(graph: str) -> None:
    """The bars were drawn in the candidates' order: the best agent (1.958) sat third, under two at 0.125; a long
    graph name ran the title past the right edge."""
    scores = {"economist": 0.125, "doctor": 0.125, "mathematician": 1.958, "historian": 0.792}
    node_means = {"1,0": 0.125, "1,1": 0.125, "1,2": 0.625, "1,3": 0.125, "2,2": 0.83, "3,2": 0.5, "3,3": 0.5}
    svg = importance_svg(
        title=f"{graph}: agent importance over 3 items",
        candidates=list(scores),
        scores=scores,
        team=["mathematician", "historian"],
        node_means=node_means,
        layers=3,
    )
    root = ET.fromstring(svg)
    bars = [r for r in root.iter(f"{SVG}rect") if re.fullmatch(r"\w+: [\d.]+", r.findtext(f"{SVG}title") or "")]
    by_height = sorted(bars, key=lambda r: float(r.get("y") or 0))
    names = [(r.findtext(f"{SVG}title") or "").split(":")[0] for r in by_height]
    assert names == ["mathematician", "historian", "economist", "doctor"]
    assert [r.get("fill") for r in by_height] == ["#2563eb", "#2563eb", "#9ca3af", "#9ca3af"]  # the team in blue
    width = float(root.get("width") or 0)
    for t in root.iter(f"{SVG}text"):
        if t.get("text-anchor") is None:  # left-aligned: its right end must be in the picture
            size = float(t.get("font-size") or 12)
            right = float(t.get("x") or 0) + text_width(t.text or "", size, bold=t.get("font-weight") == "bold")
            assert right <= width, t.text
