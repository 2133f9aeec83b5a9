"""Importance scores as tables and pictures write them: close scores that differ are written differently, in the
order they have, in a column of one width (they read "0.2500" and "0.2500" beside ranks 1 and 2)."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from fractions import Fraction
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from agentmesh.cli.optimize import _print_calibration, _ties, ranking_table
from agentmesh.optimize.job import OptimizeResult
from agentmesh.spec import GraphSpec
from agentmesh.systems.sejury import JuryConfig
from agentmesh.systems.sejury.jury import Calibration
from agentmesh.systems.sejury.selection import Candidate, Selection, correlations
from agentmesh.viz.importance import importance_svg
from agentmesh.viz.jury import jury_svg
from agentmesh.viz.numbers import MOST_DECIMALS, decimals_apart, ranked_apart, written_apart
from agentmesh.viz.report import importance_table

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("values", "at_least", "decimals"),
    [
        ([0.25004, 0.24996], 4, 5),  # both "0.2500" at four
        ([0.5, 0.25, 0.125], 4, 4),  # told apart at four already: no more
        ([0.3, 0.3, 0.3], 4, 4),  # equal scores stay written alike
        ([0.1 + 0.2, 0.3], 4, 4),  # float noise (5.6e-17 apart) is no ranking
        ([Fraction(1, 3), Fraction(1, 3) + Fraction(1, 10**7)], 4, 7),  # exact fractions, compared exactly
        ([0.3334, 0.3333, 0.1], 3, 4),  # `agentmesh show` writes three
        ([1.0, 1.0 + 4e-12], 4, 12),  # as far as MOST_DECIMALS
        ([1.0, 1.0 + 4e-14], 4, 4),  # below it: noise
    ],
)
def test_the_fewest_decimals_that_tell_different_scores_apart(
    values: list[float | Fraction], at_least: int, decimals: int
) -> None:
    assert decimals_apart(values, at_least=at_least) == decimals


def test_scores_written_apart_read_in_their_order_and_keep_one_width() -> None:
    """Worked over many random columns with close scores: wherever two scores differ by more than float noise,
    their written forms differ and sort (as numbers) the same way; all have one length."""
    rng = random.Random(7)
    for _ in range(300):
        base = rng.random()
        values = {f"a{i}": base + rng.choice([0.0, 1e-9, 3e-7, 2e-5, 4e-5, 0.01]) * rng.random() for i in range(6)}
        written = written_apart(values)
        assert len({len(text) for text in written.values()}) == 1, written
        for a, x in values.items():
            for b, y in values.items():
                if x - y > 10**-MOST_DECIMALS:
                    assert float(written[a]) > float(written[b]), (x, y, written)


def _result(exact: dict[str, Fraction], team: list[str]) -> OptimizeResult:
    ranking = sorted(exact, key=lambda a: -exact[a])
    return OptimizeResult(
        graph="g",
        job="j",
        source="dylan",
        candidates=list(exact),
        scores={a: float(v) for a, v in exact.items()},
        ranking=ranking,
        team=team,
        optimized=GraphSpec.model_validate(
            {"name": "g", "agents": {}, "nodes": {"f": {"op": "function", "function": "len"}}}
        ),
        items=[],
        node_means={},
        layers=1,
        exact=exact,
        groups={"agents": list(exact)},
    )


def test_the_optimize_table_tells_close_means_apart_and_aligns_them() -> None:
    """``agentmesh optimize``'s table wrote 0.25002 and 0.24998 both as 0.2500, beside ranks 1 and 2."""
    exact = {
        "coder": Fraction(25002, 100000),
        "tester": Fraction(24998, 100000),
        "critic": Fraction(1, 2),
        "planner": Fraction(1, 8),
    }
    out = StringIO()
    Console(file=out, width=100, color_system=None).print(ranking_table(_result(exact, ["critic", "coder"]), "t"))
    rows = [line for line in out.getvalue().splitlines() if re.search(r"\d\.\d", line)]
    numbers = [re.findall(r"\d+\.\d+", row)[0] for row in rows]
    assert numbers == ["0.50000", "0.25002", "0.24998", "0.12500"]
    assert len({row.index(n) for row, n in zip(rows, numbers, strict=True)}) == 1  # one column, aligned


def test_a_tie_at_the_cut_is_written_as_the_table_writes_it() -> None:
    exact = {"a": Fraction(25001, 100000), "b": Fraction(25001, 100000), "c": Fraction(25, 100)}
    lines = _ties(_result(exact, ["a"]))
    assert lines and lines[0].startswith("tie at 0.25001: a kept, b not")


def test_the_report_and_show_list_close_scores_apart_from_their_exact_fractions() -> None:
    """A run stores floats and exact fractions: the fractions decide, and floats alone still work."""
    stored = {
        "per_agent": {"x": 1 / 3, "y": 500003 / 1500000, "z": 0.1},
        "per_agent_exact": {"x": "1/3", "y": "500003/1500000", "z": "1/10"},
    }
    assert ranked_apart(stored, at_least=3) == [("y", "0.33334"), ("x", "0.33333"), ("z", "0.10000")]
    floats_only = {"per_agent": stored["per_agent"]}
    assert [a for a, _ in ranked_apart(floats_only)] == ["y", "x", "z"]
    html = importance_table(stored)
    assert re.findall(r'<td class="num">([\d.]+)</td>', html) == ["0.33334", "0.33333", "0.10000"]


def test_the_pictures_bars_say_which_of_two_close_scores_is_higher() -> None:
    scores = {"a": 0.2501, "b": 0.2504, "c": 0.9}
    svg = importance_svg(title="t", candidates=list(scores), scores=scores, team=["c", "b"], node_means={}, layers=1)
    root = ET.fromstring(svg)
    labels = [t.text for t in root.iter(f"{SVG}text") if t.text and re.fullmatch(r"\d\.\d+", t.text)]
    assert labels == ["0.9000", "0.2504", "0.2501"]
    tips = [(r.findtext(f"{SVG}title") or "") for r in root.iter(f"{SVG}rect") if r.get("class") == "score"]
    assert tips == ["c: 0.9000", "b: 0.2504", "a: 0.2501"]


def test_the_jury_picture_says_which_of_two_close_teams_agrees_more() -> None:
    """Two teams 0.0003 apart both read 0.985 beside a ranking that chose one."""
    human = [1.0, 2.0, 3.0, 4.0]
    per_judge = {"S1": [0.0, 25.0, 50.0, 75.0], "S2": [10.0, 20.0, 60.0, 70.0]}
    corr = correlations(human, per_judge["S1"])

    def team(names: tuple[str, ...], score: float) -> Candidate:
        return Candidate(team=names, mean=[], ensemble=[], correlations=corr, score=score)

    chosen, runner_up = team(("S1", "S2"), 0.98512), team(("S1",), 0.98481)
    selection = Selection(
        config=JuryConfig(judges=("S1", "S2"), team_must_contain_any_of=("S1",)),
        candidates=[runner_up, chosen],
        selected=chosen,
        per_judge=per_judge,
        human=human,
    )
    root = ET.fromstring(jury_svg("t", selection))
    beside = [t.text for t in root.iter(f"{SVG}text") if t.get("font-size") == "11"]  # the bars' numbers, not ticks
    assert beside[:2] == ["0.9851", "0.9848"]
    tips = [r.findtext(f"{SVG}title") for r in root.iter(f"{SVG}rect") if r.findtext(f"{SVG}title")]
    assert tips[:2] == ["S1 + S2: 0.9851", "S1: 0.9848"]


def test_the_calibration_table_tells_close_teams_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``agentmesh calibrate``'s table wrote 0.9851 and 0.9848 both as 0.985, beside ranks 1 and 2."""
    human = [1.0, 2.0, 3.0, 4.0]
    per_judge = {"S1": [0.0, 25.0, 50.0, 75.0], "S2": [10.0, 20.0, 60.0, 70.0]}
    corr = correlations(human, per_judge["S1"])
    chosen = Candidate(team=("S1", "S2"), mean=[], ensemble=[], correlations=corr, score=0.98512)
    runner_up = Candidate(team=("S1",), mean=[], ensemble=[], correlations=corr, score=0.98481)
    config = JuryConfig(judges=("S1", "S2"), team_must_contain_any_of=("S1",))
    selection = Selection(
        config=config, candidates=[runner_up, chosen], selected=chosen, per_judge=per_judge, human=human
    )
    spec = GraphSpec.model_validate({"name": "j", "agents": {}, "nodes": {"f": {"op": "function", "function": "len"}}})
    found = Calibration(
        graph="j", config=config, selection=selection, team_graph=spec, calibration=[], held_out=[], test=None, jobs=[]
    )
    _print_calibration(found, tmp_path / "j.yaml", tmp_path / "j.svg", held_out=False)
    rows = [line for line in capsys.readouterr().out.splitlines() if re.match(r"\W*[12]\s", line)]
    assert [re.findall(r"0\.\d+", row)[0] for row in rows] == ["0.9851", "0.9848"]
