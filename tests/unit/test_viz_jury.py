"""The picture of an SE-Jury calibration (``agentmesh optimize`` on a jury graph): every line of it in the picture."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from agentmesh.systems.sejury import JuryConfig
from agentmesh.systems.sejury.selection import correlations, select_team
from agentmesh.viz.jury import jury_svg
from agentmesh.viz.svg import text_width

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("title", "n_test"),
    [("sejury: choosing the jury", 1234), ("a_graph_with_a_long_name_for_its_jury_of_judges: choosing the jury", 30)],
)
def test_every_line_of_text_is_within_the_picture(title: str, n_test: int) -> None:
    """With a team of two judges the bars are narrow (594 px): a long graph name in the title, or a thousand
    held-out items in the last line, ran past the right edge."""
    human = [1, 2, 3, 4, 5, 1, 2]
    scores = {"S1": [0, 25, 50, 75, 100, 0, 20], "S2": [10, 20, 60, 70, 90, 5, 30]}
    selection = select_team(human, scores, JuryConfig(judges=("S1", "S2"), team_must_contain_any_of=("S1",)))
    root = ET.fromstring(jury_svg(title, selection, correlations(human, scores["S1"]), n_test))
    width = float(root.get("width") or 0)
    lines = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert title in lines and any(line.startswith(f"chosen team on {n_test} held-out items") for line in lines)
    for t in root.iter(f"{SVG}text"):
        if t.get("text-anchor") is None:  # left-aligned: its right end must be in the picture
            text = "".join(t.itertext())
            size, bold = float(t.get("font-size") or 12), t.get("font-weight") == "bold"
            assert float(t.get("x") or 0) + text_width(text, size, bold=bold) <= width, text


@pytest.mark.parametrize(
    ("human", "scores", "said"),
    [
        ([3, 3, 3, 3], {"S1": [0, 25, 50, 75], "S2": [10, 20, 60, 70]}, "the human labels are all one value"),
        ([1, 2, 3, 4], {"S1": [0, 25, 50, 75], "S2": [50, 50, 50, 50]}, "its scores are all one value"),
    ],
)
def test_a_bar_without_a_correlation_says_which_side_was_constant(
    human: list[float], scores: dict[str, list[float]], said: str
) -> None:
    """Every bar read "constant: no correlation" when the human labels were all one value, as if each team's
    scores were constant; the judges' scores were not."""
    selection = select_team(human, scores, JuryConfig(judges=("S1", "S2"), team_must_contain_any_of=("S1",)))
    lines = ["".join(t.itertext()) for t in ET.fromstring(jury_svg("t", selection)).iter(f"{SVG}text")]
    assert f"no correlation: {said}" in lines
    assert not any(line.startswith("no correlation") and said not in line for line in lines)
