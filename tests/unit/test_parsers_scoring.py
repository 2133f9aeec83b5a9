"""Output parsers for judgements and structure: scores, DyLAN ratings and ranker, ALU critic, JSON, text lists,
yes/no verdicts."""

from __future__ import annotations

from fractions import Fraction

import pytest

from agentmesh.parsers import (
    NO_JSON,
    Parsed,
    critic_ratings,
    dylan_rating_weights,
    extract_json,
    extract_score,
    extract_yes_no,
    json_parser,
    parse_critic_ratings,
    parse_dylan_ratings,
    parse_ranking,
    ranking,
    ratings,
    score,
    score_to_0_1,
    score_to_1_5,
    score_to_1_5_rounded,
    split_text_list,
    text_list,
    text_parser,
    yes_no_verdict,
)

F = Fraction

# --- score (sejury.md §3) ------------------------------------------------------------------------------------------

SEJURY_SCORES = [
    ("80 [END] Handles all cases.", 80, True),
    ("Score: 75[END] minor issue", 75, True),
    ("Functional Correctness Score: 100\n[END] ok", 100, True),
    ("30 [END] but later 99 [END]", 30, True),
    ("85/100 [END]", 100, True),  # quirk kept: only the digits before the delimiter
    ("8.5 [END]", 5, True),  # quirk kept
    ("  0  [END]", 0, True),
    ("The snippet is fine. 90", 0, False),
    ("[END]", 0, False),
    ("", 0, False),
    ("80 [end]", 0, False),  # case matters unless ignore_case
    ("150 [END]", 150, True),  # SE-Jury has no range check
]


@pytest.mark.parametrize(("reply", "value", "ok"), SEJURY_SCORES)
def test_score_sejury_rule(reply, value, ok):
    result = score(reply)
    assert (result.value, result.ok, result.normalized) == (value, ok, str(value))
    if not ok:
        assert result.error == "no score before '[END]'; scored 0 (SE-Jury's rule)"


@pytest.mark.parametrize(
    ("reply", "params", "hint"),
    [
        ("Looks right. Score: 85", {"delimiter": "Score:"}, "no score before 'Score:' (a number follows it: position"),
        ("I give it 85/100", {"delimiter": "/100", "position": "after"}, "(a number precedes it: position: before"),
    ],
)
def test_a_score_on_the_other_side_of_the_delimiter_is_pointed_out(reply, params, hint):
    result = score(reply, **params)
    assert not result.ok
    assert hint in result.error


@pytest.mark.parametrize(
    ("reply", "params", "value", "ok"),
    [
        ("Score: 7/10", {"delimiter": "Score:", "position": "after"}, 7, True),
        ("score:   9", {"delimiter": "Score:", "position": "after", "ignore_case": True}, 9, True),
        ("Score: 7.5", {"delimiter": "Score:", "position": "after", "integer": False}, 7.5, True),
        ("Score: -2", {"delimiter": "Score:", "position": "after", "integer": False, "min": 0}, 0, True),
        ("Score: 12", {"delimiter": "Score:", "position": "after", "min": 1, "max": 10}, 10, True),
        ("Score: 0", {"delimiter": "Score:", "position": "after", "min": 1, "max": 10}, 1, True),
        ("Score: 12", {"delimiter": "Score:", "position": "after", "max": 10, "out_of_range": "reject"}, 0, False),
        ("Score: 3 then Score: 4", {"delimiter": "Score:", "position": "after", "occurrence": "last"}, 4, True),
        ("I'd give it 7 out of 10", {"delimiter": None}, 7, True),
        ("I'd give it 7 out of 10", {"delimiter": None, "occurrence": "last"}, 10, True),
        ("Rating: **8**", {"pattern": r"Rating:\s*\**(\d+)"}, 8, True),
        ("Rating: 8.25", {"pattern": r"Rating:\s*([\d.]+)"}, 8.25, True),
        ("no number", {"delimiter": None, "fallback": None}, None, False),
        ("no number", {"fallback": 50, "scale": "to_1_5"}, 3.0, False),
        ("100 [END]", {"scale": "to_1_5"}, 5.0, True),
        ("62 [END]", {"scale": "to_1_5_rounded"}, 3, True),
        ("63 [END]", {"scale": "to_1_5_rounded"}, 4, True),
        ("37 [END]", {"scale": "to_0_1"}, 0.37, True),
        ("nothing", {"scale": "to_1_5_rounded"}, 1, False),  # failed parse = 0 → 1 on the human scale
    ],
)
def test_score_options(reply, params, value, ok):
    result = score(reply, **params)
    assert result.ok is ok
    assert result.value == value
    assert type(result.value) is type(value)


def test_score_messages():
    assert score("Score: 12", delimiter="Score:", position="after", max=10, out_of_range="reject").error == (
        "score 12 is outside [-inf, 10]"
    )
    assert score("nothing", delimiter=None, fallback=None) == Parsed(ok=False, error="no score in the reply")


@pytest.mark.parametrize(
    ("raw", "to_1_5", "rounded", "to_0_1"),
    [(0, 1.0, 1, 0.0), (12, 1.48, 1, 0.12), (13, 1.52, 2, 0.13), (37, 2.48, 2, 0.37), (38, 2.52, 3, 0.38)],
)
def test_score_mappings(raw, to_1_5, rounded, to_0_1):
    assert score_to_1_5(raw) == pytest.approx(to_1_5)
    assert score_to_1_5_rounded(raw) == rounded
    assert score_to_0_1(raw) == pytest.approx(to_0_1)


def test_score_to_1_5_rounds_half_to_even():
    assert score_to_1_5_rounded(87.5) == 4  # 1 + 3.5 = 4.5 → 4
    assert score_to_1_5_rounded(62.5) == 4  # 3.5 → 4


def test_extract_score_none():
    assert extract_score("no delimiter") is None


# --- DyLAN ratings (dylan.md §4.1, §4.4) ---------------------------------------------------------------------------

RATINGS = [
    # reply, n, non_integer, ratings, weights, status
    ("... [[5, 2, 1]]", 3, "zero", [5, 2, 1], [F(5, 8), F(1, 4), F(1, 8)], "ok"),
    ("[[1,2,3]] then [[4, 4, 2]]", 3, "zero", [4, 4, 2], [F(2, 5), F(2, 5), F(1, 5)], "ok"),
    ("[[7, 0, 3]]", 3, "zero", [7, 0, 3], [F(5, 8), F(0), F(3, 8)], "ok"),  # >5 → 1.0, 0 → 0
    ("[[-1, 0, 0]]", 3, "zero", [-1, 0, 0], [F(1, 3)] * 3, "ok"),  # all ≤ 0 → uniform
    ("[[5, x, 5]]", 3, "zero", [5, 0, 5], [F(1, 2), F(0), F(1, 2)], "partial"),  # MMLU: bad item = 0
    ("[[5, x, 5]]", 3, "invalidate", None, [F(1, 3)] * 3, "invalid"),  # HumanEval: whole list void
    ("[[5, 4.5, 5]]", 3, "zero", [5, 0, 5], [F(1, 2), F(0), F(1, 2)], "partial"),
    ("[[4, 5]]", 4, "zero", [4, 5], [F(1, 4)] * 4, "length_mismatch"),  # too few
    ("[[1, 2, 3, 4, 5]]", 4, "zero", [1, 2, 3, 4, 5], [F(1, 4)] * 4, "length_mismatch"),  # too many
    ("I think they are all fine.", 3, "zero", None, [F(1, 3)] * 3, "missing"),
    ("[1, 2, 3]", 3, "zero", None, [F(1, 3)] * 3, "missing"),  # single brackets are not ratings
    ("[[1,\n2, 3]]", 3, "zero", None, [F(1, 3)] * 3, "missing"),  # the reference regex does not cross lines
    ("[[]]", 1, "zero", [0], [F(1)], "partial"),
    ("[[ +3 , 2 ]]", 2, "zero", [3, 2], [F(3, 5), F(2, 5)], "ok"),  # Python int() accepts a sign
    ("[[3, 3]]", 2, "zero", [3, 3], [F(1, 2), F(1, 2)], "ok"),
]


@pytest.mark.parametrize(("reply", "n", "mode", "values", "weights", "status"), RATINGS)
def test_dylan_ratings(reply, n, mode, values, weights, status):
    parsed = parse_dylan_ratings(reply, n, non_integer=mode)
    assert (parsed.ratings, parsed.weights, parsed.status) == (values, weights, status)
    assert sum(parsed.weights) == 1
    result = ratings(reply, n=n, non_integer=mode)
    assert result.ok is (status == "ok")
    assert result.value == {"ratings": values, "weights": [float(w) for w in weights], "status": status}


def test_dylan_ratings_messages():
    assert ratings("none", n=3).error == "no [[...]] rating list in the reply; weights are uniform (DyLAN's rule)"
    assert ratings("[[4, 5]]", n=4).error == (
        "the rating list has 2 items for 4 predecessors; weights are uniform (DyLAN's rule)"
    )
    assert ratings("[[5, x, 5]]", n=3).error == "rating items 'x' are not integers and count as 0 (DyLAN's rule)"
    assert ratings("[[5, x, 5]]", n=3, non_integer="invalidate").error == (
        "rating items 'x' are not integers; weights are uniform (DyLAN's HumanEval rule)"
    )


def test_dylan_rating_weights_direct():
    assert dylan_rating_weights([5, 5, 1], 3) == [F(5, 11), F(5, 11), F(1, 11)]
    assert dylan_rating_weights(None, 2) == [F(1, 2)] * 2
    with pytest.raises(ValueError, match="n must be at least 1"):
        dylan_rating_weights([], 0)


# --- DyLAN ranker (dylan.md §2) -------------------------------------------------------------------------------------

RANKINGS = [
    # reply, n, params, indices, matched
    ("The best are [1, 3].", 4, {}, [0, 2], True),
    ("[1,2] ... finally [3,4]", 4, {}, [2, 3], True),
    ("[7, 5]", 4, {}, [3], True),  # both clipped to n-1 = 3, the duplicate dropped
    ("[7, 5]", 4, {"dedupe": False}, [3, 3], True),  # reference: duplicates kept
    ("[2, 2]", 4, {}, [1], True),
    ("[2, 2]", 4, {"dedupe": False}, [1, 1], True),
    ("[5, 1]", 4, {"max_label": 4}, None, False),  # 5 is not a label in the MATH/HumanEval scripts
    ("[4, 1]", 4, {"max_label": 4}, [3, 0], True),
    ("[0, 1]", 4, {}, None, False),  # 0 is not a label
    ("[1, 10]", 4, {}, None, False),
    ("[ 1, 2 ]", 4, {}, None, False),  # no spaces inside the brackets in the reference regex
    ("no ranking", 4, {"fallback": "first"}, [0, 1], False),  # MATH script
    ("[3]", 4, {"k": 1}, [2], True),
    ("[3, 1, 2]", 5, {"k": 3}, [2, 0, 1], True),
]


@pytest.mark.parametrize(("reply", "n", "params", "indices", "matched"), RANKINGS)
def test_ranking(reply, n, params, indices, matched):
    picks, ok = parse_ranking(reply, n, **params)
    assert ok is matched
    if indices is not None:
        assert picks == indices
    else:  # the random fallback: k distinct valid indices
        assert len(set(picks)) == len(picks) == 2 and all(0 <= i < n for i in picks)
    result = ranking(reply, n=n, **params)
    assert result.ok is matched
    assert result.value == picks
    assert result.normalized == ",".join(map(str, picks))


def test_ranking_random_fallback_is_seeded_and_distinct():
    first = ranking("no ranking here", n=7)
    again = ranking("no ranking here", n=7)
    assert first == again  # a replayed run reparses to the same indices
    assert not first.ok
    assert len(set(first.value)) == 2 and all(0 <= i < 7 for i in first.value)
    assert (
        first.error
        == f"no ranking like [1, 2] (labels 1..7) in the reply; used the random fallback {first.value} (DyLAN's rule)"
    )
    others = {tuple(ranking("none", n=7, seed=s).value) for s in range(20)}
    assert len(others) > 1
    assert ranking("none", n=1).value == [0]  # fewer responses than k


# --- ALU critic (alu.md §4.4) --------------------------------------------------------------------------------------

CRITIC = [
    # reply, n, raw, scores, status
    ("Final Rating List - [4, 5, 4, 4, 5]", 5, ["4", "5", "4", "4", "5"], ["4", "5", "4", "4", "5"], "ok"),
    ("Final Rating List -\n`[5, 4, 3, 2, 1]`", 5, ["5", "4", "3", "2", "1"], ["5", "4", "3", "2", "1"], "ok"),
    (
        "Ratings: [Response 1] is fine. Final Rating List - [6, 0, 4.5, 'x']",
        5,
        ["6", "0", "9/2", None],
        ["5", "1", "9/2", "1", "1"],
        "length_mismatch",
    ),
    ("[5, 4] and later [Response 2]", 2, ["5", "4"], ["5", "4"], "ok"),  # a group without a number is skipped
    ("[\"5\", '3', `2`]", 3, ["5", "3", "2"], ["5", "3", "2"], "ok"),
    ("[5, n/a, 3]", 3, ["5", None, "3"], ["5", "1", "3"], "partial"),
    ("[5, 4, 3, 2]", 2, ["5", "4", "3", "2"], ["5", "4"], "length_mismatch"),  # extra ignored
    ("[-2, +7, .5]", 3, ["-2", "7", "1/2"], ["1", "5", "1"], "ok"),
    ("[[4, 5]]", 2, ["4", "5"], ["4", "5"], "ok"),  # the inner group
    ("no list", 3, None, ["1", "1", "1"], "unparsed"),
    ("[a, b]", 2, None, ["1", "1"], "unparsed"),
]


@pytest.mark.parametrize(("reply", "n", "raw", "scores", "status"), CRITIC)
def test_critic_ratings(reply, n, raw, scores, status):
    parsed = parse_critic_ratings(reply, n)
    assert parsed.raw == (None if raw is None else [None if r is None else F(r) for r in raw])
    assert parsed.scores == [F(s) for s in scores]
    assert parsed.status == status
    result = critic_ratings(reply, n=n)
    assert result.ok is (status == "ok")
    assert result.value["exact"] == scores
    assert result.value["scores"] == [float(F(s)) for s in scores]
    assert result.value["status"] == status


def test_critic_ratings_messages_and_bounds():
    assert (
        critic_ratings("nothing", n=2).error
        == "no [...] list with a number in the reply; all 2 scores set to 1 (ALU's rule)"
    )
    assert critic_ratings("[5]", n=2).error == (
        "the rating list has 1 items for 2 candidates; missing ones score 1 (ALU's rule)"
    )
    assert critic_ratings("[9, 0]", n=2, min=0, max=10).value["exact"] == ["9", "0"]
    assert critic_ratings("[]", n=0).value["scores"] == []


# --- JSON ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expect", "value"),
    [
        ('{"a": 1}', "any", {"a": 1}),
        ('Here: {"a": {"b": [1, 2]}} done', "any", {"a": {"b": [1, 2]}}),
        ('prose [1, 2] then {"a": 1}', "any", [1, 2]),
        ('prose [1, 2] then {"a": 1}', "object", {"a": 1}),
        ('{"a": 1} and [3]', "array", [3]),
        ('see ```json\n{"fenced": true}\n``` and {"inline": 1}', "any", {"fenced": True}),
        ("```\n[1]\n```", "any", [1]),
        ('```python\n{"x": 1}\n```', "any", {"x": 1}),  # not a JSON fence: found by the scan
        ('```json\n{broken\n```\n{"ok": 1}', "any", {"ok": 1}),
        ('{not json} but {"k": "v"}', "any", {"k": "v"}),
        ('{"emoji": "é✓"}', "any", {"emoji": "é✓"}),
        # a raw line break inside a string: not strict JSON, but what models (and llama.cpp's JSON grammar) write
        ('{"poem": "roses\nare red", "lines": 2}', "object", {"poem": "roses\nare red", "lines": 2}),
        ('{"tab": "a\tb"}', "any", {"tab": "a\tb"}),
    ],
)
def test_json_parser(reply, expect, value):
    result = json_parser(reply, expect=expect)
    assert (result.ok, result.value) == (True, value)


@pytest.mark.parametrize(
    ("reply", "expect", "error"),
    [
        ("no json", "any", "no JSON object or array in the reply"),
        ('"just a string"', "any", "no JSON object or array in the reply"),
        ("[1, 2", "array", "no JSON array in the reply"),
        ('{"a": NaN}', "object", "no JSON object in the reply"),
        ("[" * 2000, "any", "no JSON object or array in the reply"),
    ],
)
def test_json_parser_failures(reply, expect, error):
    assert json_parser(reply, expect=expect) == Parsed(ok=False, error=error)


def test_json_key_is_canonical():
    a = json_parser('{"b": 1, "a": [1, 2]}')
    b = json_parser('```json\n{ "a": [1,2], "b": 1 }\n```')
    assert a.normalized == b.normalized == '{"a":[1,2],"b":1}'
    assert extract_json("nothing") is NO_JSON


# --- text and text lists -------------------------------------------------------------------------------------------


def test_text_parser():
    assert text_parser("  hello\n") == Parsed(value="hello", ok=True, normalized="hello")
    assert text_parser(" \n ") == Parsed(value="", ok=False, error="the reply is empty")


TEXT_LISTS = [
    ('["one", "two", "three", "four", "five", "six"]', 5, ["one", "two", "three", "four", "five"], "json"),
    ('Here:\n["First.", "  ", "Second."]\nDone.', 5, ["First.", "Second."], "json"),
    ('["a", 1]\n---\nb', None, ['["a", 1]', "b"], "separator"),  # not an array of strings
    ("A about it.\n---\nB about it.\n---\n\n---\nC.", 5, ["A about it.", "B about it.", "C."], "separator"),
    ("A\n  ---  \nB", None, ["A", "B"], "separator"),
    (
        "1. Krum enjoyed it.\n2) He danced.\nResponse 3: He had fun.",
        5,
        ["Krum enjoyed it.", "He danced.", "He had fun."],
        "numbered",
    ),
    ("Rewrites:\n1. First\n   continued\n2. Second", None, ["First\n   continued", "Second"], "numbered"),
    ("1. Only one item", None, ["1. Only one item"], "whole"),
    ("3.5 apples\n4.5 pears", None, ["3.5 apples\n4.5 pears"], "whole"),  # decimals are not list markers
    ("Krum enjoyed the ball.", 5, ["Krum enjoyed the ball."], "whole"),
    ("   ", 5, [], "whole"),
]


@pytest.mark.parametrize(("reply", "k", "items", "rule"), TEXT_LISTS)
def test_text_list(reply, k, items, rule):
    assert split_text_list(reply, k) == (items, rule)
    result = text_list(reply, k=k)
    assert result.value == items
    assert result.ok is bool(items)
    if not items:
        assert result.error == "no non-empty item in the reply"


# --- yes/no verdicts (ALU's judge leak rate, alu.md §9.2) ----------------------------------------------------------

VERDICTS = [
    ("Yes", True),
    ("yes.", True),
    ("**No**.", False),
    ("No, the answer does not give the city.", False),
    ("Yes, no doubt about it.", True),  # the first word decides
    ("Verdict: yes", True),  # else the only one of the two words
    ("The answer does not reveal it, so no.", False),
    ("Not really.", None),  # "not" is not "no"
    ("Maybe.", None),
    ("It could be yes or no.", None),  # both, neither first: no verdict
    ("", None),
]


@pytest.mark.parametrize(("reply", "verdict"), VERDICTS)
def test_yes_no_verdict(reply, verdict):
    assert extract_yes_no(reply) is verdict
    result = yes_no_verdict(reply)
    assert result.ok is (verdict is not None)
    assert result.value is verdict  # an unparsed verdict is None, never False (no leak)
    assert result.normalized == (None if verdict is None else "yes" if verdict else "no")
    if verdict is None:
        assert result.error is not None and result.error.startswith("no yes/no verdict in the reply")
