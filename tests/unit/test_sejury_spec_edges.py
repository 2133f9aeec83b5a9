"""SE-Jury edge cases the shipped worked examples do not exercise, as ``team_selection`` vectors in their format
(``tests/data/sejury_edge_vectors.json``), run through the paper test's own check. Each vector's ``description``
holds the hand arithmetic (τ_b = (P-Q)/sqrt((n0-n1)(n0-n2)), ρ = Pearson of average ranks; sejury.md §4):

* SJ1 (twice): a constant ensemble first in enumeration order: NaN score, kept by ``nan_policy: reference``
  (Python ``max``), ranked last by ``neg_inf``; runner-up under each.
* SJ2: the binary threshold is strict (a mean of exactly 0.5 gives 0), and a constant test ensemble gives NaN.
* SJ3: per-judge and ensemble rounding half to even (2.5 -> 2, 4.5 -> 4), a tie broken by enumeration order.
* SJ4: the v1 criterion round((τ + r + ρ)/3, 3).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from agentmesh.systems.sejury.selection import (
    Candidate,
    Correlations,
    aggregate,
    candidate_teams,
    criterion_score,
    pick,
)
from tests.unit.test_sejury_paper import test_team_selection

REPO = Path(__file__).resolve().parents[2]
_VECTORS = json.loads((REPO / "tests" / "data" / "sejury_edge_vectors.json").read_text())["vectors"]


@pytest.mark.parametrize("vector", _VECTORS, ids=lambda v: v["id"])
def test_edge_team_selection(vector: dict[str, Any]) -> None:
    test_team_selection(vector)


def test_candidate_enumeration_counts() -> None:
    """§4 step 2: 46 candidates with six lists and the S1 constraint, 22 for summarization's five, 57 without it."""
    six = ("S1_1", "S1_2", "S2", "S3", "S4", "S5")
    assert len(candidate_teams(six, 2, ("S1_1", "S1_2"))) == 46
    assert len(candidate_teams(six[:5], 2, ("S1_1", "S1_2"))) == 22
    assert len(candidate_teams(six, 2, None)) == 57
    assert candidate_teams(("a", "b", "c"), 2, None) == [("a", "b"), ("a", "c"), ("b", "c"), ("a", "b", "c")]


def _cand(name: str, score: float) -> Candidate:
    return Candidate((name,), [], [], Correlations(score, score, score), score)


def test_pick_rule_nan_positions() -> None:
    """§4 step 5: Python max keeps a NaN in first place, skips a later one; neg_inf ranks NaN last."""
    nan = math.nan
    assert pick([_cand("a", nan), _cand("b", 0.9)], "reference").team == ("a",)
    assert pick([_cand("a", 0.1), _cand("b", nan), _cand("c", 0.05)], "reference").team == ("a",)
    assert pick([_cand("a", nan), _cand("b", 0.9)], "neg_inf").team == ("b",)
    assert pick([_cand("a", nan), _cand("b", nan)], "neg_inf").team == ("a",)
    assert pick([_cand("a", 0.5), _cand("b", 0.5)], "neg_inf").team == ("a",)


def test_aggregation_and_criterion_rules() -> None:
    assert aggregate([0.5, 1.5, 2.5, 3.5, 4.5], "round") == [0, 2, 2, 4, 4]
    assert aggregate([0.5, 0.5000001, 0.49], "binary") == [0, 1, 0]
    assert math.isnan(criterion_score(Correlations(math.nan, 0.5, 0.5), "tau_r_rho_3dp"))
    assert criterion_score(Correlations(0.1, 0.2, 0.3), "tau_rho") == pytest.approx(0.15)
    assert criterion_score(Correlations(0.1234, 0.5, 0.2), "tau_r_rho_3dp") == 0.274
