"""MAgICoRe's symbolic majority match (magicore.md §2.2, §2.5): sympy's lark LaTeX parser in a guarded worker.

The worker is a real subprocess: these tests check the equivalence rule, that hostile or broken answers give "not
equivalent" without an exception (a hang is cut by the timeout and the next request gets a new worker), that
numbers never start a worker, and that the worker's environment holds no secrets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentmesh.systems.magicore import difficulty_test, magicore_equivalent, symbolic
from agentmesh.systems.magicore.symbolic import SymbolicChecker, worker_env

# simplify() of this difference runs for about 20 s on a laptop: a real "hang" for a checker with a 1-s timeout.
SLOW_PAIR = ("(a+b+c+d+e)^{20}", "a")


@pytest.fixture(scope="module")
def checker() -> Iterator[SymbolicChecker]:
    c = SymbolicChecker()
    yield c
    c.close()


@pytest.fixture
def fresh_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[SymbolicChecker]:
    """A new process-wide checker, so that what ``magicore_equivalent`` starts can be counted and is stopped."""
    c = SymbolicChecker()
    monkeypatch.setattr(symbolic, "CHECKER", c)
    yield c
    c.close()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("x+1", "1+x"),
        ("\\frac{x^2-1}{x-1}", "x+1"),
        ("(x-2)(x+3)", "x^2+x-6"),
        ("2\\pi r", "2r\\pi"),  # \pi is not in the lark grammar; the worker substitutes the constant
        # implicit products the lark grammar rejects as written, made explicit
        ("\\sqrt{2}x", "x\\sqrt{2}"),
        ("a^2b", "ba^2"),
        ("6\\sqrt{3}\\pi", "6\\pi\\sqrt{3}"),
    ],
)
def test_symbolically_equal_answers_match(checker: SymbolicChecker, a: str, b: str) -> None:
    assert checker.equivalent(a, b)
    assert checker.equivalent(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("2x", "3x"),
        ("x+1", "x-1"),
        ("\\pi x", "\\xi x"),
        ("\\sqrt{2}x", "x\\sqrt{3}"),
        ("a^2b", "ab^2"),
        # the grammar reads this two ways (cos(x + sin²x)² and cos²x + sin²x): an ambiguous answer matches nothing
        ("\\cos^2 x + \\sin^2 x", "1"),
    ],
)
def test_different_answers_do_not_match(checker: SymbolicChecker, a: str, b: str) -> None:
    assert not checker.equivalent(a, b)


@pytest.mark.parametrize("bad", ["\\frac{1}{2", "}{", "\\", "x^^2", "(1,2", "\\begin{matrix}"])
def test_malformed_latex_is_not_equivalent_and_raises_nothing(checker: SymbolicChecker, bad: str) -> None:
    assert not checker.equivalent(bad, "x")
    assert checker.running  # a parse error is an answer, not a crash


def test_answer_text_is_never_evaluated(checker: SymbolicChecker, tmp_path: Path) -> None:
    marker = tmp_path / "evaluated"
    attack = f"__import__('os').system('touch {marker}')"
    assert not checker.equivalent(attack, "x")
    assert not checker.equivalent(f"eval(\"open('{marker}', 'w')\")", "x")
    assert not marker.exists()


def test_over_long_answers_are_not_sent() -> None:
    c = SymbolicChecker()
    assert not c.equivalent("x+" * symbolic.MAX_CHARS, "x")
    assert c.starts == 0


def test_a_hanging_simplification_times_out_and_the_next_request_gets_a_new_worker() -> None:
    c = SymbolicChecker(timeout=1.0)
    try:
        assert c.equivalent("x", "x+0")  # the worker is up: what follows times only the comparison
        assert c.starts == 1
        started = time.monotonic()
        assert not c.equivalent(*SLOW_PAIR)
        assert time.monotonic() - started < 4.0
        assert not c.running  # killed
        assert c.equivalent("x+1", "1+x")
        assert c.starts == 2
    finally:
        c.close()


def test_results_are_cached_symmetrically(checker: SymbolicChecker) -> None:
    assert checker.equivalent("y^2-1", "(y-1)(y+1)")
    starts = checker.starts
    checker.close()
    assert checker.equivalent("(y-1)(y+1)", "y^2-1")  # the same pair swapped: from the cache, no new worker
    assert checker.starts == starts
    assert not checker.running


def test_concurrent_requests_share_one_worker() -> None:
    c = SymbolicChecker()
    pairs = [("x+1", "1+x"), ("2x", "3x"), ("x^2", "xx"), ("\\frac{x}{2}", "0.5x")] * 4
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda p: c.equivalent(*p), pairs))
        assert results == [c.equivalent(*p) for p in pairs[:4]] * 4
        assert results[:2] == [True, False]
        assert c.starts == 1
    finally:
        c.close()


def test_worker_environment_has_no_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert worker_env() == {k: v for k, v in worker_env().items() if k in symbolic.ENV_ALLOWLIST}
    assert "OPENAI_API_KEY" not in worker_env()
    assert worker_env({"OPENAI_API_KEY": "x", "PATH": "/bin"}) == {"PATH": "/bin"}
    c = SymbolicChecker(memory_bytes=768 << 20)
    try:
        info = c.info()
        assert info is not None
        assert "OPENAI_API_KEY" not in info["env"]
        assert set(info["env"]) <= set(symbolic.ENV_ALLOWLIST)
        assert "LANG" in info["env"]
        assert info["rlimit_as"] == 768 << 20
    finally:
        c.close()


def test_a_worker_that_cannot_start_means_not_equivalent() -> None:
    c = SymbolicChecker(memory_bytes=16 << 20)  # too little address space to import sympy
    try:
        assert not c.equivalent("x+1", "1+x")
        assert not c.running
    finally:
        c.close()


# --- through magicore_equivalent --------------------------------------------------------------------------------------


def test_magicore_equivalent_uses_the_symbolic_step(fresh_default: SymbolicChecker) -> None:
    assert magicore_equivalent("x+1", "1+x")
    assert magicore_equivalent("\\frac{x^2-1}{x-1}", "x+1")
    assert magicore_equivalent("x^2+x-6 \\text{ cm}", "(x-2)(x+3)")  # units dropped first, as for numbers
    assert not magicore_equivalent("2x", "3x")
    assert fresh_default.starts == 1


def test_numbers_only_pairs_start_no_worker(fresh_default: SymbolicChecker) -> None:
    assert not magicore_equivalent("18", "19")
    assert not magicore_equivalent("\\frac{1}{2}", "0.6")
    assert not magicore_equivalent("2\\sqrt{2}", "3")
    assert magicore_equivalent("18", "18.0")
    assert not magicore_equivalent("A", "B")  # multiple-choice letters
    assert not magicore_equivalent(None, "x")
    assert not magicore_equivalent("", "x")
    assert fresh_default.starts == 0
    assert not fresh_default.running


@dataclass(frozen=True)
class S:
    pred: str | None
    orm: float
    prm_steps: Sequence[float]


def test_a_symbolic_answer_counts_toward_the_majority_quality(fresh_default: SymbolicChecker) -> None:
    # Majority "x+1"; "1+x" is the same answer symbolically, so its low reward drags Q below 0.
    samples = [S("x+1", 0.6, [1.0]), S("1+x", 0.1, [0.1]), S("2x", 0.9, [1.0]), S("3x", 0.9, [1.0])]
    test = difficulty_test(samples, "x+1", mu=1.2, sigma=0.5)
    assert test.n_majority_matches == 2
    assert test.mean_z == pytest.approx(((1.6 - 1.2) / 0.5 + (0.2 - 1.2) / 0.5) / 2)
    assert not test.quality_ok
    strict = difficulty_test(samples, "x+1", mu=1.2, sigma=0.5, equivalent=lambda a, b: a == b)
    assert strict.n_majority_matches == 1  # the injected rule is still used as given
    assert strict.quality_ok


def test_a_forked_child_starts_its_own_worker_and_leaves_the_parents_alone() -> None:
    """After ``fork()`` the child must not write to the parent's worker pipe (their requests and replies would
    interleave) nor wait on a lock a parent thread held at the fork."""
    import os

    c = SymbolicChecker()
    try:
        assert c.equivalent("x+1", "1+x")
        parent_worker = c._proc
        assert parent_worker is not None and c.running
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status only, never return into pytest
            code = 1
            try:
                fresh = c._proc is None and not c.running
                code = 0 if fresh and c.equivalent("y+2", "2+y") and c._proc is not parent_worker else 2
            finally:
                c.close()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert c._proc is parent_worker and c.running  # the parent's worker is untouched and still answers
        assert c.equivalent("2(z+1)", "2z+2")
    finally:
        c.close()
