"""The papers' worked vectors that are about parsing model output, checked against agentmesh's parsers.

Every vector of a parsing kind in ``$AGENTMESH_EXAMPLES_DIR/<system>_examples.json`` (default
``../shared/papers`` beside the repository) is a case, whatever its id; keys a test does not know are ignored.
Which vectors are parsing vectors:

* ``sejury``: kinds ``parse_score`` (§3 step 1) and ``map_score`` (§3 step 2).
* ``alu``: kind ``parsers`` -- its ``erase_cases`` (eraser reply → rewrites, §4.3) and the critic samples of its
  ``selection_cases`` (critic reply → clipped scores, §4.4); kind ``metrics`` -- its ``mcq_items`` (the
  multiple-choice letter rule, §9.2).
* ``dylan``: every vector whose inputs give the ratings nodes returned and whose expectation gives the normalised
  edge weights (§4.1): the rating list of each node goes through the ``ratings`` parser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import pytest

from agentmesh.parsers import (
    choice_letter,
    critic_ratings,
    parse_critic_ratings,
    parse_dylan_ratings,
    ratings,
    score,
    score_to_0_1,
    score_to_1_5,
    score_to_1_5_rounded,
    text_list,
)
from tests._paper import examples_dir, load_vectors

pytestmark = pytest.mark.paper


def cases(system: str, expand: Callable[[dict[str, Any]], Iterator[tuple[str, Any]]]) -> list[Any]:
    """pytest params: ``expand`` yields (id suffix, case) for every case a vector holds (none if not its kind)."""
    vectors = load_vectors(system)
    if vectors is None:
        reason = f"{examples_dir() / f'{system}_examples.json'} not found (set AGENTMESH_EXAMPLES_DIR)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="missing")]
    params = []
    for index, vector in enumerate(vectors):
        vid = str(vector.get("id", f"#{index}"))
        for suffix, case in expand(vector):
            params.append(pytest.param(case, id=f"{vid}{suffix}"))
    return params


def of_kind(kind: str) -> Callable[[dict[str, Any]], Iterator[tuple[str, Any]]]:
    def expand(vector: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        if vector.get("kind") == kind:
            yield "", vector

    return expand


# --- SE-Jury (sejury.md §3) ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", cases("sejury", of_kind("parse_score")))
def test_sejury_parse_score(vector):
    fallback = vector.get("config", {}).get("fallback", 0)
    result = score(vector["inputs"]["text"], fallback=fallback)
    assert result.value == vector["expected"]["score"]
    assert isinstance(result.value, int)


@pytest.mark.parametrize("vector", cases("sejury", of_kind("map_score")))
def test_sejury_map_score(vector):
    raw = vector["inputs"]["raw"]
    expected = vector["expected"]
    checks = {"to_1_5": score_to_1_5, "to_1_5_rounded": score_to_1_5_rounded, "to_0_1": score_to_0_1}
    for key, mapping in checks.items():
        if key not in expected:
            continue
        assert mapping(raw) == pytest.approx(expected[key], abs=1e-6)
        parsed = score(f"{raw} [END] reason", scale=key)
        assert parsed.value == pytest.approx(expected[key], abs=1e-6)
        if key == "to_1_5_rounded":
            assert mapping(raw) == expected[key] and isinstance(parsed.value, int)


# --- ALU (alu.md §4.3, §4.4, §9.2) ------------------------------------------------------------------------------


def erase_cases(vector: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    if vector.get("kind") != "parsers":
        return
    inputs = vector.get("inputs", {}).get("erase_cases") or []
    expected = vector.get("expected", {}).get("erase_cases") or []
    for i, (case, want) in enumerate(zip(inputs, expected, strict=True)):
        yield f"-erase{i}", (case, want)


def critic_cases(vector: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    if vector.get("kind") != "parsers":
        return
    inputs = vector.get("inputs", {}).get("selection_cases") or []
    expected = vector.get("expected", {}).get("selection_cases") or []
    for i, (case, want) in enumerate(zip(inputs, expected, strict=True)):
        yield f"-critic{i}", (case, want)


@pytest.mark.parametrize("case", cases("alu", erase_cases))
def test_alu_eraser_reply_to_rewrites(case):
    given, expected = case
    result = text_list(given["reply"], k=given["k"])
    assert result.value == expected
    assert result.ok is bool(expected)


def _fraction(value: Any) -> Fraction | None:
    return None if value is None else Fraction(str(value))


@pytest.mark.parametrize("case", cases("alu", critic_cases))
def test_alu_critic_reply_to_scores(case):
    given, expected = case
    k = given["K"]
    samples = [parse_critic_ratings(reply, k) for reply in given["critic_replies"]]
    for sample, want in zip(samples, expected.get("samples", []), strict=False):
        assert sample.status == want["status"]
        assert sample.raw == [_fraction(v) for v in want["raw"]]
    if "scores" in expected:  # with n samples, a candidate's score is the mean (alu.md §4.4)
        means = [sum((s.scores[i] for s in samples), Fraction(0)) / len(samples) for i in range(k)]
        assert means == [_fraction(v) for v in expected["scores"]]
    if len(samples) == 1 and "scores" in expected:
        parsed = critic_ratings(given["critic_replies"][0], n=k)
        assert [Fraction(e) for e in parsed.value["exact"]] == [_fraction(v) for v in expected["scores"]]
        assert parsed.ok is (samples[0].status == "ok")


def mcq_cases(vector: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    if vector.get("kind") == "metrics" and "mcq_items" in vector.get("inputs", {}):
        yield "", vector


@pytest.mark.parametrize("vector", cases("alu", mcq_cases))
def test_alu_multiple_choice_letters(vector):
    config = vector.get("config", {})
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: config.get("n_options", 4)]
    items = vector["inputs"]["mcq_items"]
    parsed = [
        choice_letter(item["response"], letters=letters, style="alu", refusal_text=config.get("refusal_text")).value
        for item in items
    ]
    expected = vector["expected"]
    if "mcq_parsed" in expected:
        assert parsed == expected["mcq_parsed"]
    if "mcq_correct" in expected:
        assert sum(p == item["gold"] for p, item in zip(parsed, items, strict=True)) == expected["mcq_correct"]
    if "mcq_abstain" in expected:
        assert sum(p is None for p in parsed) == expected["mcq_abstain"]


# --- DyLAN (dylan.md §4.1) -----------------------------------------------------------------------------------------


def rating_nodes(vector: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    given = vector.get("inputs", {}).get("ratings_given_by_node_in_predecessor_agent_order")
    weights = vector.get("expected", {}).get("normalized_edge_weights")
    visible = vector.get("inputs", {}).get("visible_predecessors", {})
    if not given or not weights:
        return
    for node, rated in given.items():
        if node in weights and node in visible:
            yield f"-node{node}", (rated, visible[node], weights[node])


def _reply(rated: Any) -> str:
    """The reply text a node gave: its raw fragment, or a reply ending with its list the way DyLAN asks."""
    if isinstance(rated, dict):
        return str(rated.get("raw_reply_fragment", ""))
    return "I checked each solution step by step. The answer is (A). [[" + ", ".join(str(r) for r in rated) + "]]"


def _expected_fraction(entry: Any) -> Fraction:
    return Fraction(entry["fraction"]) if isinstance(entry, dict) else Fraction(str(entry))


@pytest.mark.parametrize("case", cases("dylan", rating_nodes))
def test_dylan_ratings_to_edge_weights(case):
    rated, predecessors, expected = case
    n = len(predecessors)
    reply = _reply(rated)
    want = [_expected_fraction(expected[p]) for p in predecessors]
    assert parse_dylan_ratings(reply, n).weights == want
    parsed = ratings(reply, n=n)
    assert parsed.value["weights"] == pytest.approx([float(w) for w in want], abs=1e-9)
    if isinstance(rated, list) and len(rated) == n:
        assert parsed.ok
        assert parsed.value["ratings"] == rated
