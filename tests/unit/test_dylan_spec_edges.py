"""DyLAN edge cases the shipped worked examples do not exercise, as vectors in their format
(``tests/data/dylan_edge_vectors.json``), run through the paper tests' own checks: the maths and the whole method on
a scripted model. Each vector's ``why`` holds the hand arithmetic from dylan.md §3-§4.

* E1 (paper): a non-integer rating item (counts 0), all ratings <= 0 (uniform), ratings > 5 (clipped to 5), a
  list of the wrong length (uniform), and a 1-1-1 split in the last layer (the first activated agent wins).
* E2 (paper): the ranker keeps agents [2, 0] (best first); the two survivors split 1-1, so the answer is the one
  of the first *activated* of them, agent 0 (activation is in slot order in the un-shuffled reference run), not
  the ranker's first choice.
* E2 (reference): the same under the released code's ranker (D1): nobody deactivated, survivors see all four.
* E3 (paper): unparsable letters (None) never agree, so they cannot stop the run (D5 fixed).
* E4 (reference): the released code counts None == None as agreement and stops with no answer.
* E_ds: dataset aggregation of E2 under both semantics (each query keeps its own), ranking and top 2.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from agentmesh.parsers.ratings import dylan_rating_weights, parse_dylan_ratings
from agentmesh.systems.dylan import Node, Trace, importance, mean_importance, select_team
from tests.unit.test_dylan_paper import (
    test_dylan_graph_reproduces_the_vector,
    test_importance_maths_matches_the_vector,
    test_team_selection_matches_the_vector,
)

REPO = Path(__file__).resolve().parents[2]
_VECTORS = json.loads((REPO / "tests" / "data" / "dylan_edge_vectors.json").read_text())["vectors"]
_QUERIES = [v for v in _VECTORS if "queries" not in v["inputs"]]


@pytest.mark.parametrize("vector", _QUERIES, ids=lambda v: v["id"])
def test_edge_vector_maths(vector: dict[str, Any]) -> None:
    compat = str(vector["semantics"]).startswith("reference_code")
    test_importance_maths_matches_the_vector(vector, compat, vector["expected"])


def _whole_method_cases() -> list[Any]:
    return [pytest.param(v, id=v["id"]) for v in _QUERIES]


@pytest.mark.parametrize("vector", _whole_method_cases())
def test_edge_vector_whole_method(vector: dict[str, Any], tmp_path: Path) -> None:
    compat = str(vector["semantics"]).startswith("reference_code")
    test_dylan_graph_reproduces_the_vector(vector, compat, vector["expected"], tmp_path)


def test_edge_vector_team_selection() -> None:
    by_id = {v["id"]: v for v in _VECTORS}
    test_team_selection_matches_the_vector(by_id["E_ds_mean_of_two_queries"], False, by_id)


# --- rules checked directly ---------------------------------------------------------------------------------------


def test_rating_rules_by_hand() -> None:
    """§4.1 steps 1-5 / §4.4: non-int items count 0 (MMLU class) or void the list (HumanEval class)."""
    assert parse_dylan_ratings("[[5, x, 3]]", 3).ratings == [5, 0, 3]
    assert parse_dylan_ratings("[[5, x, 3]]", 3, non_integer="invalidate").ratings is None
    assert parse_dylan_ratings("[[1,2,3]] then [[4, 4, 2]]", 3).ratings == [4, 4, 2]  # the last list
    assert dylan_rating_weights([0, -1, 0], 3) == [Fraction(1, 3)] * 3
    assert dylan_rating_weights([6, 5, 10**12], 3) == [Fraction(1, 3)] * 3
    assert dylan_rating_weights([2, 2], 3) == [Fraction(1, 3)] * 3


def test_early_stop_layer_carries_less_mass() -> None:
    """§4.3: an early stop in layer 0 gives a total of 1 (layers 1..L that produced output), not the depth."""
    nodes = {(0, a): Node(0, a, "A") for a in range(3)}
    result = importance(Trace(agents=("a", "b", "c"), nodes=nodes, layers=3), "A")
    assert result.per_agent == {"a": Fraction(1, 3), "b": Fraction(1, 3), "c": Fraction(1, 3)}
    assert result.layer_sums == [1, 0, 0]


def test_mean_importance_counts_an_absent_agent_as_zero_and_ties_keep_candidate_order() -> None:
    means = mean_importance([{"a": Fraction(1), "b": Fraction(2)}, {"a": Fraction(3), "c": Fraction(2)}])
    assert means == {"a": Fraction(2), "b": Fraction(1), "c": Fraction(1)}
    assert select_team(means, 2) == ["a", "b"]
    assert select_team(means, 10) == ["a", "b", "c"]
