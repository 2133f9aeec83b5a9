"""DyLAN's code-generation maths and tools (dylan.md §3.2, §5): what the judges compute and how answers compare.

Pure functions, except the two that run generated code, which do it only through :mod:`agentmesh.sandbox` (a
subprocess with time and memory limits and no network; never ``exec`` in this process):

- :func:`runs` — the Passer's check and the "code that runs" filter of early stopping and importance;
- :func:`run_tests` — each unit test on one implementation, in one sandboxed program that reports per test.
"""

from __future__ import annotations

import ast
import json
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agentmesh.sandbox import arun_python

#: The Passer's and early stopping's limit per program (dylan.md §3.2: a 5 s timeout).
RUN_TIMEOUT_S = 5.0
MEMORY_MB = 512
MAX_TESTS = 10
BLEU_THRESHOLD = 90.0


async def runs(code: str, *, timeout_s: float = RUN_TIMEOUT_S) -> tuple[bool, str]:
    """Whether ``code`` runs without error in the sandbox, and the error's last line when it does not."""
    result = await arun_python(code, timeout_s=timeout_s, memory_mb=MEMORY_MB)
    if result.passed:
        return True, ""
    if result.timed_out:
        return False, f"timed out after {timeout_s:g} s"
    tail = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return False, tail[-1] if tail else f"exit status {result.exit_code}"


def extract_tests(text: str, *, limit: int = MAX_TESTS) -> list[str]:
    """The Tester's unit tests (dylan.md §5.2): lines containing ``assert`` that parse, de-duplicated, at most 10.

    The reference de-duplicates with a Python ``set``, so its order (and which 10 it keeps) varies between runs;
    here the first occurrences are kept in reply order, so a run is reproducible and replays identically.
    """
    tests: list[str] = []
    for line in text.splitlines():
        candidate = line.strip()
        if "assert" not in candidate or candidate in tests:
            continue
        try:
            ast.parse(candidate)
        except SyntaxError:
            continue
        tests.append(candidate)
        if len(tests) == limit:
            break
    return tests


@dataclass(frozen=True)
class UnitTestOutcome:
    """One unit test on one implementation: passed, or the actual value of its left-hand side."""

    test: str
    passed: bool
    output: str


#: Characters of a failed test's actual output kept (its repr can be huge: a list of a million items).
OUTPUT_CHARS = 1000

# Runs after the candidate's code, in its globals (the tests call its functions). Built-ins are taken from the
# ``builtins`` module, not looked up by name, so a candidate that defines ``exec``, ``eval``, ``repr`` or ``print``
# (an expression evaluator's ``eval``) does not change the verdict; the outputs are cut to OUTPUT_CHARS; the report
# goes to file descriptor 1 on a line of its own, past a reassigned ``sys.stdout`` and an unterminated last line.
_HARNESS = """
import builtins as __b, json as __j, os as __o, signal as __s
def __alarm(*_):
    raise __b.TimeoutError("test timed out")
__s.signal(__s.SIGALRM, __alarm)
__results = []
for __t, __lhs in __TESTS:
    __s.alarm(__PER_TEST)
    try:
        __b.exec(__t, __b.globals())
        __results.append([True, ""])
    except __b.BaseException as __e:
        __out = __b.repr(__e)
        if __lhs is not None:
            try:
                __out = __b.repr(__b.eval(__lhs, __b.globals()))
            except __b.BaseException as __e2:
                __out = __b.repr(__e2)
        __results.append([False, __out[:__CHARS]])
    finally:
        __s.alarm(0)
__o.write(1, ("\\n" + __MARK + __j.dumps(__results) + "\\n").encode())  # past a reassigned sys.stdout
"""


def _lhs(test: str) -> str | None:
    try:
        node = ast.parse(test).body[0]
    except (SyntaxError, IndexError):
        return None
    if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1:
        return ast.unparse(node.test.left)
    return None


async def run_tests(code: str, tests: Sequence[str], *, per_test_s: int = 3) -> list[UnitTestOutcome]:
    """Run every test against ``code`` in one sandboxed program; a test that fails gives its actual output."""
    if not tests:
        return []
    mark = f"@@agentmesh-tests-{secrets.token_hex(6)}@@"
    program = (
        f"{code}\n\n__TESTS = {json.dumps([[t, _lhs(t)] for t in tests])}\n"
        f"__PER_TEST = {int(per_test_s)}\n__CHARS = {OUTPUT_CHARS}\n__MARK = {mark!r}\n{_HARNESS}"
    )
    budget = per_test_s * len(tests) + RUN_TIMEOUT_S
    result = await arun_python(program, timeout_s=budget, memory_mb=MEMORY_MB)
    found = [line for line in result.stdout.splitlines() if line.startswith(mark)]
    if not found:  # the code itself did not run (syntax error, crash at import, timeout): every test fails
        tail = [line for line in result.stderr.strip().splitlines() if line.strip()]
        why = tail[-1] if tail else ("timed out" if result.timed_out else "the program did not run")
        return [UnitTestOutcome(t, False, why) for t in tests]
    rows = _report(found[0][len(mark) :], len(tests))  # the first: the harness prints once, at its end
    if rows is None:  # not the harness's report (the program wrote one of its own): it does not count
        return [UnitTestOutcome(t, False, "the test harness's report was unreadable") for t in tests]
    return [UnitTestOutcome(t, ok, out) for t, (ok, out) in zip(tests, rows, strict=True)]


def _report(text: str, n: int) -> list[tuple[bool, str]] | None:
    """The harness's per-test ``[passed, output]`` rows, or ``None`` when ``text`` is not ``n`` such rows."""
    try:
        rows = json.loads(text)
    except ValueError:
        return None
    if not isinstance(rows, list) or len(rows) != n:
        return None
    out = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 2 and isinstance(row[0], bool) and isinstance(row[1], str)):
            return None
        out.append((row[0], row[1]))
    return out


def tester_rating(outcomes: Sequence[UnitTestOutcome], *, reference_compat: bool = False) -> int:
    """The Tester's 0-5 rating of an implementation: ceil(passed / total · 5), 0 when none passed or no tests.

    ``reference_compat`` reproduces the released code's all-pass under-count (dylan.md §5.2: 2/2 scores 3, 1/1
    scores 0; mixed cases are right).
    """
    total = len(outcomes)
    passed = sum(o.passed for o in outcomes)
    if total == 0 or passed == 0:
        return 0
    if reference_compat and passed == total:
        passed -= 1
    return math.ceil(passed / total * 5)


def tester_feedback(outcomes: Sequence[UnitTestOutcome]) -> str:
    """The Tester's feedback on one implementation: the passed tests, then the failed ones with their output."""
    if not outcomes:
        return "No unit tests."
    passed = [o.test for o in outcomes if o.passed]
    failed = [f"{o.test} # output: {o.output}" for o in outcomes if not o.passed]
    text = "Passed tests:\n" + "\n".join(passed) if passed else ""
    if failed:
        text += ("\n\n" if text else "") + "Failed tests:\n" + "\n".join(failed)
    return text


def cut_def_question(code: str, entry_point: str) -> str:
    """The part of an implementation early stopping compares (dylan.md §3.2): imports, the target function's
    body (after its signature and docstring) and any other top-level helper functions."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    lines = code.splitlines()
    kept: list[str] = []
    for node in tree.body:
        segment = ast.get_source_segment(code, node) or ""
        if isinstance(node, ast.Import | ast.ImportFrom):
            kept.append(segment)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name != entry_point:
                kept.append(segment)
                continue
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]  # the docstring belongs to the question
            if body:
                end = node.end_lineno or body[-1].end_lineno or len(lines)
                kept.append("\n".join(lines[body[0].lineno - 1 : end]))
    return "\n".join(kept)


def bleu_equivalent(hypothesis: str, reference: str) -> bool:
    """DyLAN's open-ended and code comparator: sacreBLEU ``sentence_bleu(x, [y], lowercase=True) ≥ 90``.

    Asymmetric, as in the reference (x is the hypothesis, y the reference).
    """
    import sacrebleu  # imported here: only code graphs need it

    return float(sacrebleu.sentence_bleu(hypothesis, [reference], lowercase=True).score) >= BLEU_THRESHOLD


def most_frequent(items: Sequence[str], equivalent: Callable[[str, str], bool]) -> tuple[int | None, int]:
    """The index of the item most others are equivalent to (itself included) and that count; the first wins ties."""
    best, best_count = None, 0
    for i, item in enumerate(items):
        count = sum(1 for other in items if equivalent(item, other))
        if count > best_count:
            best, best_count = i, count
    return best, best_count
