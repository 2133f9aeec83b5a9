"""MAgICoRe's edge cases that magicore.md names (§2.2-§4.6), beyond the worked vectors.

Empty answers, ``None`` as an answer of its own, the NaN mean of an empty majority match, ties in the majority,
the top-k and the vote, threshold values, and the controller's stop rule and round limit on scripted components
(sync and ``async``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from agentmesh.systems.magicore import (
    MagicoreConfig,
    MagicoreResult,
    Sample,
    add_step_lines,
    answer_masses,
    calibrate_async,
    confidence,
    difficulty_test,
    display_score,
    entropy_nats,
    first_most_common,
    magicore_equivalent,
    n_scored_steps,
    normalisation_stats,
    render_solution,
    score_solutions,
    solve,
    solve_async,
    split_steps,
    top_k,
    weighted_vote,
)
from agentmesh.systems.magicore.scoring import np_sum


@dataclass(frozen=True)
class S:
    pred: str | None
    orm: float
    prm_steps: Sequence[float]


# --- confidence and entropy -------------------------------------------------------------------------------------------


def test_uniform_three_way_is_not_low_confidence_but_four_way_is() -> None:
    assert confidence([0.5, 0.5, 0.5]) == 0.5000000000000002
    assert not confidence([0.5, 0.5, 0.5]) < 0.5
    assert confidence([1.0] * 4) < 0.5
    assert confidence([1.0]) == 1.0


def test_zero_masses_vanish_and_all_zero_is_nan_never_low() -> None:
    assert entropy_nats([1.0, 0.0, 1.0]) == entropy_nats([1.0, 1.0])
    assert math.isnan(confidence([0.0, 0.0]))
    assert not confidence([0.0, 0.0]) < 0.5


def test_np_sum_matches_a_plain_loop_below_eight_items_and_is_pairwise_above() -> None:
    small = [0.1, 0.2, 0.3]
    assert np_sum(small) == (0.0 + 0.1) + 0.2 + 0.3
    values = [0.1 * i for i in range(20)]
    assert abs(np_sum(values) - sum(values)) < 1e-12


# --- answers: None, empty, majority, equivalence ----------------------------------------------------------------------


def test_none_is_its_own_answer_in_masses_and_majority() -> None:
    masses = answer_masses([None, "3", None], [0.25, 0.5, 0.5])
    assert masses == {None: 0.75, "3": 0.5}
    assert first_most_common([None, "3", None]) is None


def test_majority_tie_goes_to_the_answer_seen_first() -> None:
    assert first_most_common(["7", "5", "5", "7"]) == "7"
    with pytest.raises(ValueError):
        first_most_common([])


def test_equivalence_for_the_majority_match() -> None:
    assert magicore_equivalent("18", "18.0")
    assert magicore_equivalent("\\frac{1}{2}", "0.5")
    assert magicore_equivalent("\\dfrac{3}{4}", "3/4")
    assert magicore_equivalent(None, None)
    assert not magicore_equivalent(None, "None")
    assert not magicore_equivalent("A", "B")
    assert not magicore_equivalent("18", "18.5")
    assert magicore_equivalent("2\\sqrt{2}", "\\sqrt{8}")  # plain arithmetic is evaluated (safely)
    assert magicore_equivalent("2+3", "5")
    assert magicore_equivalent("5\\text{ cm}", "5")
    assert magicore_equivalent("x+1", "1+x")  # symbolic: sympy in a worker (test_magicore_symbolic.py)
    assert not magicore_equivalent("__import__('os')", "0")


# --- vote and top-k ---------------------------------------------------------------------------------------------------


def test_vote_skips_empty_answers_and_none() -> None:
    answer, votes = weighted_vote([S(None, 0.9, [0]), S("", 0.9, [1.0]), S("4", 0.25, [0.5])])
    assert answer == "4"
    assert votes == {"4": 0.75}
    assert weighted_vote([S(None, 0.5, [0]), S("", 0.5, [0])]) == (None, {})


def test_vote_tie_goes_to_the_answer_whose_best_sample_ranks_first() -> None:
    # a: R 1.0 + 0.5, b: R 0.75 + 0.75 -> a tie at 1.5; b comes first in the pool but a's best sample ranks first
    pool = [S("b", 0.5, [0.25]), S("a", 0.25, [0.25]), S("b", 0.5, [0.25]), S("a", 0.5, [0.5])]
    ranked = top_k(pool, 4)
    assert [s.pred for s in ranked] == ["a", "b", "b", "a"]
    assert weighted_vote(ranked) == ("a", {"a": 1.5, "b": 1.5})
    assert weighted_vote(pool)[0] == "b"


def test_top_k_is_stable_on_equal_rewards_and_truncates() -> None:
    pool = [S("x", 0.5, [0.5]), S("y", 0.75, [0.25]), S("z", 0.25, [0.75]), S("w", 1.0, [0.5])]
    assert [s.pred for s in top_k(pool, 3)] == ["w", "x", "y"]
    answer, votes = weighted_vote([S("x", 0.5, [0.25]), S("y", 0.75, [0.25])])
    assert votes == {"x": 0.75, "y": 1.0} and answer == "y"
    answer, _ = weighted_vote([S("x", 0.5, [0.5]), S("y", 0.5, [0.5])])
    assert answer == "x"


# --- difficulty test --------------------------------------------------------------------------------------------------


def _spread(majority_orm: float) -> list[S]:
    # four distinct answers with equal masses -> both confidences 0.4 (low)
    return [S("1", majority_orm, [majority_orm]), S("2", 0.5, [0.5]), S("3", 0.5, [0.5]), S("4", 0.5, [0.5])]


def test_nan_mean_counts_as_good_quality_so_the_problem_is_easy() -> None:
    test = difficulty_test(_spread(0.5), "99", 1.5, 0.5)
    assert math.isnan(test.mean_z) and test.mean_z_or_none is None
    assert test.n_majority_matches == 0
    assert test.quality_ok and test.low_confidence and not test.hard


def test_hard_needs_both_bad_quality_and_low_confidence() -> None:
    low = difficulty_test(_spread(0.5), "1", 1.5, 0.5)  # R = 1.0 < mu 1.5
    assert low.mean_z == -1.0 and not low.quality_ok and low.low_confidence and low.hard
    at_zero = difficulty_test(_spread(0.5), "1", 1.0, 0.5)  # Q == 0 exactly: not < 0
    assert at_zero.mean_z == 0.0 and at_zero.quality_ok and not at_zero.hard
    concentrated = [S("1", 0.25, [0.25])] * 3 + [S("2", 0.01, [0.01])]
    assert not difficulty_test(concentrated, "1", 1.5, 0.5).hard


def test_sigma_must_be_positive() -> None:
    with pytest.raises(ValueError, match="sigma"):
        difficulty_test(_spread(0.5), "1", 1.0, 0.0)
    with pytest.raises(ValueError, match="sigma"):
        MagicoreConfig(mu=1.0, sigma=0.0)
    # a command-line user (-i sigma=0) is told the command that measures them, not only a Python function
    with pytest.raises(ValueError, match=r"measure them with `agentmesh calibrate GRAPH --data problems\.jsonl`"):
        MagicoreConfig(mu=1.0, sigma=-1.0)


def test_normalisation_is_population_std() -> None:
    assert normalisation_stats([1.5, 0.5]) == (1.0, 0.5)
    with pytest.raises(ValueError):
        normalisation_stats([])


# --- steps and rendering ----------------------------------------------------------------------------------------------


def test_text_without_step_headers_is_one_step_and_step_20_looks_like_step_2() -> None:
    assert n_scored_steps("We add 2 and 3.\n\nSo 5.") == 1
    assert split_steps("Step 1: a\nStep 20: b") == ["Step 1: a", "Step 20: b"]
    assert add_step_lines("Step 2: x") == "\n\nStep 2: x"


def test_render_and_display() -> None:
    assert [display_score(p) for p in (0.04, 0.05, 0.15, 0.25, 0.45, 0.85)] == [0, 1, 1, 2, 5, 8]
    assert render_solution("Only one step.", [0.75]) == "Only one step.  (Score: 8/10)\n"
    # like the reference's zip over the tag-split parts: missing scores drop steps, one extra score shows alone
    assert render_solution("Step 1: a\nStep 2: b", [0.75]) == "Step 1: a  (Score: 8/10)\n"
    assert render_solution("Only one step.", [0.75, 0.5]) == "Only one step.  (Score: 8/10)\n (Score: 5/10)\n"


# --- the controller on scripted components ----------------------------------------------------------------------------


class Bench:
    """Scripted components: a solution is ``"Step 1: <tag>\\nStep 2: \\boxed{<answer>}"``; scores by tag."""

    def __init__(self, iter0: list[tuple[str, str | None, float, float]], refine: dict[str, str]) -> None:
        self.table = {tag: (ans, orm, prm) for tag, ans, orm, prm in iter0}
        self.iter0 = [tag for tag, *_ in iter0]
        self.refine_map = refine
        self.calls: list[str] = []

    def add(self, tag: str, answer: str | None, orm: float, prm: float) -> None:
        self.table[tag] = (answer, orm, prm)

    def text(self, tag: str) -> str:
        answer = self.table[tag][0]
        boxed = "" if answer is None else "\\boxed{" + answer + "}"
        return f"Step 1: <{tag}>\nStep 2: so {boxed}"

    @staticmethod
    def tag(text: str) -> str:
        return text.split("<", 1)[1].split(">", 1)[0]

    def sample(self, question: str, k: int) -> list[str]:
        return [self.text(t) for t in self.iter0[:k]]

    def review(self, question: str, scored_solution: str) -> str:
        assert "(Score: " in scored_solution
        self.calls.append(f"review:{self.tag(scored_solution)}")
        return "step 2 is wrong"

    def refine(self, question: str, scored_solution: str, feedback: str) -> str:
        self.calls.append(f"refine:{self.tag(scored_solution)}")
        return self.text(self.refine_map[self.tag(scored_solution)])

    def score(self, question: str, solutions: Sequence[str]) -> list[float]:
        return [self.table[self.tag(t)][1] for t in solutions]

    def score_steps(self, question: str, steps: Sequence[str]) -> list[float]:
        assert len(steps) == 2
        return [1.0, self.table[self.tag(steps[0])][2]]


def _hard_bench() -> Bench:
    # M = "1" (R 1.0 < mu 1.5), four answers with equal masses -> hard
    bench = Bench(
        [("a", "1", 0.5, 0.5), ("b", "2", 0.5, 0.5), ("c", "1", 0.5, 0.5), ("d", "3", 0.5, 0.5), ("e", "4", 1.0, 1.0)],
        {"a": "a1", "b": "b1", "c": "c1", "d": "d1", "e": "e1", "a1": "a2", "b1": "b2", "c1": "c2", "d1": "d2"},
    )
    return bench


def _run(bench: Bench, max_rounds: int) -> MagicoreResult:
    cfg = MagicoreConfig(mu=1.5, sigma=0.5, k=5, max_rounds=max_rounds)
    return solve("q?", cfg, solver=bench, reviewer=bench, refiner=bench, orm=bench, prm=bench)


def test_stops_when_refinement_leaves_the_majority_nan_quality() -> None:
    bench = _hard_bench()
    for tag in ("a1", "b1", "c1", "d1", "e1"):  # every refined sample now says 7: no sample matches M = "1"
        bench.add(tag, "7", 0.75, 0.75)
    result = solve(
        "q?", MagicoreConfig(mu=1.5, sigma=0.5, k=5), solver=bench, reviewer=bench, refiner=bench, orm=bench, prm=bench
    )
    assert result.majority == "1"
    assert [r.hard for r in result.rounds] == [True, False]
    assert result.rounds[1].test.n_majority_matches == 0
    assert result.answer == "7" and result.stop_reason == "easy" and result.n_refinement_rounds == 1
    assert sorted(bench.calls) == sorted([f"{s}:{t}" for t in "abcde" for s in ("review", "refine")])
    refined = result.rounds[0].refined
    assert [s.parent for s in refined] == [s.id for s in result.rounds[0].samples]
    assert all(s.feedback == "step 2 is wrong" for s in refined)


def test_still_hard_after_max_rounds_answers_from_the_last_pool() -> None:
    bench = _hard_bench()
    for tag, ans in (("a1", "1"), ("b1", "2"), ("c1", "1"), ("d1", "3"), ("e1", "4")):
        bench.add(tag, ans, 0.5, 0.5)
    for tag, ans in (("a2", "1"), ("b2", "2"), ("c2", "1"), ("d2", "3")):
        bench.add(tag, ans, 0.5, 0.5)
    bench.refine_map.update({"e1": "e2"})
    bench.add("e2", "9", 1.0, 1.0)
    result = _run(bench, max_rounds=2)
    assert [r.hard for r in result.rounds] == [True, True]
    assert result.stop_reason == "max_rounds"
    assert result.n_refinement_rounds == 2
    assert result.answer == result.rounds[-1].answer


def test_no_answer_sample_gets_prm_zero_but_shows_its_real_step_scores() -> None:
    bench = Bench([("a", None, 0.5, 0.75)], {})

    async def go() -> list[Sample]:
        return await score_solutions("q?", [bench.text("a")], orm=bench, prm=bench)

    (sample,) = asyncio.run(go())
    assert sample.pred is None and sample.prm_steps == (0.0,) and sample.reward == 0.5
    assert "(Score: 8/10)" in sample.rendered()


def test_async_components_and_easy_problem() -> None:
    class AsyncBench(Bench):
        async def sample(self, question: str, k: int) -> list[str]:  # type: ignore[override]
            return super().sample(question, k)

        async def score(self, question: str, solutions: Sequence[str]) -> list[float]:  # type: ignore[override]
            return super().score(question, solutions)

    bench = AsyncBench([("a", "5", 0.75, 1.0), ("b", "5", 0.75, 1.0), ("c", "6", 0.25, 0.5)], {})
    cfg = MagicoreConfig(mu=1.0, sigma=0.5, k=3)
    result = asyncio.run(solve_async("q?", cfg, solver=bench, reviewer=bench, refiner=bench, orm=bench, prm=bench))
    assert result.answer == "5" and result.stop_reason == "easy" and not bench.calls
    assert result.to_json()["rounds"][0]["weighted_votes"] == {"5": 3.5, "6": 0.75}


def test_calibration_takes_one_scored_sample_per_question() -> None:
    class PerQuestion(Bench):
        def sample(self, question: str, k: int) -> list[str]:
            return [self.text(question)] * k

    solver = PerQuestion([("a", "1", 0.75, 1.0), ("b", None, 0.25, 1.0)], {})
    # R(a) = 0.75 + 1.0 = 1.75; R(b) = 0.25 (no answer: PRM forced to 0) -> mu 1.0, sigma 0.75
    mu_sigma = asyncio.run(calibrate_async(["a", "b"], solver=solver, orm=solver, prm=solver))
    assert mu_sigma == (1.0, 0.75)
