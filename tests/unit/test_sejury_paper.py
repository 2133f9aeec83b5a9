"""SE-Jury's worked vectors (sejury.md §7 "Vector format") for calibration: ``round_score``, ``calibration_split``
and ``team_selection``, every vector of ``$AGENTMESH_EXAMPLES_DIR/sejury_examples.json`` whatever its id.

``parse_score`` and ``map_score`` are parsing vectors, checked by ``test_parsers_paper.py``. Keys a vector holds and
this file does not know are ignored; optional expected keys are checked when present.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from agentmesh.systems.sejury.selection import (
    JuryConfig,
    aggregate,
    calibration_split,
    correlations,
    scale_scores,
    select_team,
    team_mean,
)
from tests._paper import vectors_of_kind

pytestmark = pytest.mark.paper

TOL = 1e-6


def of_kind(kind: str) -> list[Any]:
    return vectors_of_kind("sejury", kind)


def close(actual: Any, expected: Any, where: str) -> None:
    """Ints, strings, lists and ``None`` exactly; floats within 1e-6; ``None`` expected = NaN (§7 "Comparison")."""
    if expected is None:
        assert actual is None or (isinstance(actual, float) and math.isnan(actual)), f"{where}: {actual} != NaN"
    elif isinstance(expected, list):
        assert isinstance(actual, list | tuple) and len(actual) == len(expected), f"{where}: {actual} != {expected}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            close(a, e, f"{where}[{i}]")
    elif isinstance(expected, bool | str):
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
    else:
        assert actual is not None and not math.isnan(actual), f"{where}: NaN != {expected}"
        assert actual == pytest.approx(expected, abs=TOL), f"{where}: {actual} != {expected}"


@pytest.mark.parametrize("vector", of_kind("round_score"))
def test_round_score(vector: dict[str, Any]) -> None:
    (rounded,) = aggregate([vector["inputs"]["value"]], "round")
    assert rounded == vector["expected"]["rounded"]


@pytest.mark.parametrize("vector", of_kind("calibration_split"))
def test_calibration_split(vector: dict[str, Any]) -> None:
    config = vector.get("config", {})
    indices = calibration_split(
        vector["inputs"]["n_items"], n_calibration=config.get("n_calibration", 20), seed=config.get("seed", 12345)
    )
    assert indices == vector["expected"]["calibration_indices"]


def config_of(vector: dict[str, Any]) -> JuryConfig:
    c = vector["config"]
    must = c.get("team_must_contain_any_of")
    return JuryConfig(
        judges=tuple(c["judges"]),
        scale=c["scale"],
        selection_aggregation=c["selection_aggregation"],
        final_aggregation=c["final_aggregation"],
        criterion=c["criterion"],
        team_must_contain_any_of=None if must is None else tuple(must),
        min_team_size=c["min_team_size"],
        nan_policy=c["nan_policy"],
    )


@pytest.mark.parametrize("vector", of_kind("team_selection"))
def test_team_selection(vector: dict[str, Any]) -> None:
    config = config_of(vector)
    inputs, expected = vector["inputs"], vector["expected"]
    human = inputs["human_calibration"]
    selection = select_team(human, inputs["judge_scores_calibration"], config)

    assert list(selection.team) == expected["selected_team"]
    close(selection.selected.score, expected["selected_score"], "selected_score")

    if "per_judge_unrounded_calibration" in expected:
        for judge, want in expected["per_judge_unrounded_calibration"].items():
            close(scale_scores(inputs["judge_scores_calibration"][judge], "to_1_5"), want, f"unrounded {judge}")
    if "per_judge_calibration" in expected:
        for judge, want in expected["per_judge_calibration"].items():
            close(selection.per_judge[judge], want, f"per_judge_calibration {judge}")
    if "n_candidate_teams" in expected:
        assert len(selection.candidates) == expected["n_candidate_teams"]
    if "candidates" in expected:
        assert [list(c.team) for c in selection.candidates] == [c["team"] for c in expected["candidates"]]
        for got, want in zip(selection.candidates, expected["candidates"], strict=True):
            where = f"candidate {want['team']}"
            close(got.ensemble, want["ensemble"], f"{where} ensemble")
            close(got.correlations.kendall, want["kendall"], f"{where} kendall")
            close(got.correlations.spearman, want["spearman"], f"{where} spearman")
            close(got.score, want["score"], f"{where} score")
            if "pearson" in want:
                close(got.correlations.pearson, want["pearson"], f"{where} pearson")
            if "mean" in want:
                close(got.mean, want["mean"], f"{where} mean")
    for key, attr in (
        ("selected_kendall", "kendall"),
        ("selected_spearman", "spearman"),
        ("selected_pearson", "pearson"),
    ):
        if key in expected:
            close(getattr(selection.selected.correlations, attr), expected[key], key)
    if "runner_up" in expected:
        runner = selection.runner_up
        if expected["runner_up"] is None:
            assert runner is None
        else:
            assert runner is not None and list(runner.team) == expected["runner_up"]["team"]
            close(runner.score, expected["runner_up"]["score"], "runner_up score")
    if "all_teams_tied_at_max" in expected:
        assert [list(t) for t in selection.tied_at_max] == expected["all_teams_tied_at_max"]
    if "mean_calibration_items" in expected:
        close(team_mean(selection.per_judge, selection.team), expected["mean_calibration_items"], "mean_calibration")
    if "ensemble_calibration_items" in expected:
        close(selection.ensemble(selection.per_judge), expected["ensemble_calibration_items"], "ensemble_calibration")

    if "human_test" in inputs:
        test_scores = {j: scale_scores(s, config.scale) for j, s in inputs["judge_scores_test"].items()}
        if "per_judge_test" in expected:
            for judge, want in expected["per_judge_test"].items():
                close(test_scores[judge], want, f"per_judge_test {judge}")
        ensemble = selection.ensemble(test_scores)
        if "ensemble_test_items" in expected:
            close(ensemble, expected["ensemble_test_items"], "ensemble_test_items")
        corr = correlations(inputs["human_test"], ensemble)
        for key, value in (
            ("test_kendall", corr.kendall),
            ("test_spearman", corr.spearman),
            ("test_pearson", corr.pearson),
        ):
            if key in expected:
                close(value, expected[key], key)
