"""MAgICoRe's deterministic maths (magicore.md §2.3-§3): rewards, normalisation, the difficulty test, the vote.

Everything here is pure and works on plain floats with :mod:`math`; no numpy, scipy or torch (the one exception:
the majority match's symbolic step asks sympy, in a worker process, :mod:`.symbolic`). The reference
computes the same quantities with ``np.mean``/``np.std``, scipy's ``entropy`` and torch's ``sigmoid``, and a few
decisions sit exactly on a threshold (a uniform 3-way split gives a confidence of 0.5000000000000002, which is
*not* low), so the summations below follow numpy's order (:func:`np_sum`) and the entropy follows scipy's
statement order (normalise by division, then ``-p·ln p``), to stay bit-compatible where it matters.

Conventions kept from the reference, each for a reason given in the spec:

* answers are grouped by **exact string** in masses and votes (``"18"`` and ``"18.0"`` are two answers), and
  ``None`` (no parsed answer) is an answer of its own there (§2.2, §2.5);
* only the majority-match test of the quality condition uses math equivalence (:func:`magicore_equivalent`);
* the reward is ``R = ORM + ∏ PRM`` (range [0, 2]), with the PRM list forced to ``[0]`` when no answer was parsed.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from agentmesh.parsers.math import strip_math_string
from agentmesh.systems.magicore import symbolic

__all__ = [
    "Answer",
    "DifficultyTest",
    "Equivalent",
    "Scored",
    "answer_masses",
    "as_json_keys",
    "confidence",
    "confidence_from_entropy",
    "difficulty_test",
    "entropy_nats",
    "first_most_common",
    "magicore_equivalent",
    "masses_by_answer",
    "normalisation_stats",
    "np_sum",
    "prm_product",
    "reward",
    "top_k",
    "weighted_vote",
    "z_score",
]

Answer = str | None
"""A parsed answer; ``None`` = no answer could be parsed."""
Equivalent = Callable[[Answer, Answer], bool]
"""Decides whether a sample's answer matches the frozen majority answer (§2.5)."""


class Scored(Protocol):
    """What the maths needs of a sample: its answer and its two reward-model scores."""

    @property
    def pred(self) -> Answer: ...

    @property
    def orm(self) -> float: ...

    @property
    def prm_steps(self) -> Sequence[float]: ...


S = TypeVar("S", bound=Scored)
K = TypeVar("K", bound=Hashable)


# --- summation in numpy's order ---------------------------------------------------------------------------------------


def _pairwise(values: Sequence[float], start: int, n: int) -> float:
    # numpy's pairwise_sum (loops_utils.h): a plain loop below 8 items, 8 accumulators up to 128, halves above.
    if n < 8:
        res = 0.0
        for i in range(start, start + n):
            res += values[i]
        return res
    if n <= 128:
        r = [values[start + j] for j in range(8)]
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j] += values[start + i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += values[start + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(values, start, n2) + _pairwise(values, start + n2, n - n2)


def np_sum(values: Iterable[float]) -> float:
    """``np.sum`` of a 1-D float64 array, in numpy's pairwise order (identical to a plain loop below 8 items).

    Float addition is not associative; the reference's means, standard deviations and entropies are numpy
    sums, so reproducing the order keeps threshold decisions identical on long lists too.
    """
    seq = [float(v) for v in values]
    return _pairwise(seq, 0, len(seq))


# --- rewards and normalisation (§2.3, §2.4) ---------------------------------------------------------------------------


def prm_product(prm_steps: Sequence[float]) -> float:
    """``np.prod`` of the step scores: one bad step sinks the whole solution (the PRM aggregation of §5.2)."""
    return math.prod(float(p) for p in prm_steps)


def reward(orm: float, prm_steps: Sequence[float]) -> float:
    """``R = ORM + ∏ PRM`` ∈ [0, 2]: the single per-sample reward used by the difficulty test and the vote (§2.3).

    A sum, not a product or mean: a sample the ORM likes still counts when one step looks doubtful.
    """
    return float(orm) + prm_product(prm_steps)


def normalisation_stats(first_sample_rewards: Sequence[float]) -> tuple[float, float]:
    """``(mu, sigma)``: mean and *population* std (ddof 0) of the first sample's R of every problem (§2.4).

    The reference computes them once over the whole evaluation set (transductive) and reuses them for every
    problem and round; an online deployment substitutes a calibration batch or configured constants. Computed
    as ``np.mean`` / ``np.std`` do: sum / n, then the mean of squared deviations, then the square root.
    """
    n = len(first_sample_rewards)
    if n == 0:
        raise ValueError("normalisation_stats: no first-sample rewards (need at least one problem)")
    mu = np_sum(first_sample_rewards) / n
    deviations = [float(r) - mu for r in first_sample_rewards]
    sigma = math.sqrt(np_sum(d * d for d in deviations) / n)
    return mu, sigma


def z_score(r: float, mu: float, sigma: float) -> float:
    """``(R - mu) / sigma``: how a sample's reward compares with the dataset's typical first sample."""
    return (r - mu) / sigma


# --- confidence (§2.5 cond2) ------------------------------------------------------------------------------------------


def entropy_nats(masses: Sequence[float]) -> float:
    """Shannon entropy (natural log) of ``masses`` normalised to sum 1, as ``scipy.stats.entropy(masses)``.

    Zero masses contribute nothing (``entr(0) = 0``), so an answer nobody weighted simply vanishes. All-zero
    masses give NaN, as scipy does (0/0); an empty list gives 0.
    """
    if not masses:
        return 0.0
    total = np_sum(masses)
    if total == 0.0:
        return math.nan
    terms = []
    for m in masses:
        p = float(m) / total
        if p > 0.0:
            terms.append(-p * math.log(p))
        elif p == 0.0:
            terms.append(0.0)
        else:
            terms.append(-math.inf)
    return np_sum(terms)


def confidence_from_entropy(h: float) -> float:
    """``2·(1 - sigmoid(H))`` ∈ (0, 1]: 1 for a single answer, 2/(m+1) for a uniform split over m answers.

    NaN stays NaN (and NaN < 0.5 is false, so an undefined confidence never counts as low, like the reference).
    """
    if math.isnan(h):
        return math.nan
    if h >= 0:
        sig = 1.0 / (1.0 + math.exp(-h))
    else:  # never for an entropy, but keep the function total
        e = math.exp(h)
        sig = e / (1.0 + e)
    return 2.0 * (1.0 - sig)


def confidence(masses: Sequence[float]) -> float:
    """Confidence of an answer distribution given by its per-answer masses (§2.5): conf < 0.5 ⇔ H > ln 3."""
    return confidence_from_entropy(entropy_nats(masses))


def answer_masses(answers: Sequence[K], weights: Sequence[float]) -> dict[K, float]:
    """Σ weight per distinct answer, in order of first appearance; ``None`` is a key like any other (§2.5)."""
    masses: dict[K, float] = {}
    for a, w in zip(answers, weights, strict=True):
        masses[a] = masses[a] + float(w) if a in masses else float(w)
    return masses


# --- majority and answer matching -------------------------------------------------------------------------------------


def first_most_common(answers: Sequence[K]) -> K:
    """The most frequent answer, the one seen first on a tie (``Counter(...).most_common(1)``); ``None`` counts.

    The majority M is computed once from the iteration-0 samples and never updated (§2.5).
    """
    if not answers:
        raise ValueError("first_most_common: no answers")
    counts: dict[K, int] = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    return max(counts, key=lambda a: counts[a])


_LATEX_DROP = ("\\left", "\\right", "\\!", "\\,", "\\;", "\\displaystyle", "$")
_LATEX_OPS = {"\\cdot": "*", "\\times": "*", "\\div": "/", "\\pi": "pi", "^": "**"}
_IMPLICIT_MUL = re.compile(r"(?<=[\d)])(?=[(a-z])")
_EXPR_CHARS = re.compile(r"^[\d.+\-*/()a-z]+$")


def _brace_group(text: str, start: int) -> tuple[str, int] | None:
    """``{...}`` at ``start`` (brace-balanced) → (content, index after it); a single character stands alone."""
    if start >= len(text):
        return None
    if text[start] != "{":
        return text[start], start + 1
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1 : i], i + 1
    return None


def _latex_to_expr(text: str) -> str | None:
    """A small LaTeX arithmetic subset (numbers, + - * / ^, \\frac, \\sqrt, \\pi) as a Python expression."""
    for token in _LATEX_DROP:
        text = text.replace(token, "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    for command, function in (("\\frac", 2), ("\\sqrt", 1)):
        while command in text:
            at = text.index(command)
            pos, args = at + len(command), []
            for _ in range(function):
                group = _brace_group(text, pos)
                if group is None:
                    return None
                args.append(group[0])
                pos = group[1]
            repl = f"(({args[0]})/({args[1]}))" if function == 2 else f"sqrt({args[0]})"
            text = text[:at] + repl + text[pos:]
    for latex, python in _LATEX_OPS.items():
        text = text.replace(latex, python)
    text = text.replace("{", "(").replace("}", ")").replace(" ", "")
    text = _IMPLICIT_MUL.sub("*", text)
    if not text or not _EXPR_CHARS.match(text) or re.search(r"[a-z]+", text.replace("sqrt", "").replace("pi", "")):
        return None
    return text


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id == "pi":
        return math.pi
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "sqrt"
        and len(node.args) == 1
    ):
        return math.sqrt(_eval(node.args[0]))
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if isinstance(node.op, ast.Div):
            return a / b
        if isinstance(node.op, ast.Pow) and abs(b) <= 64 and abs(a) <= 1e6:
            return float(a**b)
    raise ValueError("not a plain arithmetic expression")


def _numeric(answer: str) -> float | None:
    """The value of a numeric answer (``18``, ``3/4``, ``\\frac{1}{2}``, ``2\\sqrt{2}``, ``3\\pi``), else ``None``.

    Stands in for the reference's numeric fallbacks (``float``, ``eval`` after rewriting fractions, latex2sympy's
    ``evalf``) with a safe evaluator of plain arithmetic: no names but ``pi`` and ``sqrt``, nothing executed.
    """
    text = answer.strip()
    try:
        number = float(text)
        return number if math.isfinite(number) else None
    except ValueError:
        pass
    expr = _latex_to_expr(text)
    if expr is None:
        return None
    try:
        value = _eval(ast.parse(expr, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, TypeError, RecursionError):
        return None
    return value if isinstance(value, float) and math.isfinite(value) else None


def _strip_units(answer: str) -> str:
    return answer.split("\\text{ ")[0] if "\\text{ " in answer else answer


def _normalised(answer: str) -> str:
    """The MATH normaliser's form of ``answer`` (the form sympy is given), or ``answer`` when it raises."""
    try:
        return strip_math_string(answer)
    except Exception:
        return answer


_SINGLE_LETTER = re.compile(r"^[A-Za-z]$")


def _worth_symbolic(x: str, y: str) -> bool:
    """Whether sympy could match two answers the cheap tests did not.

    Not when both are plain numbers (the numeric test already compared them, more leniently), nor when both are
    single letters (multiple-choice answers, or two different symbols): those never start the worker.
    """
    if not x or not y:
        return False
    if _numeric(x) is not None and _numeric(y) is not None:
        return False
    return not (_SINGLE_LETTER.match(x) and _SINGLE_LETTER.match(y))


def magicore_equivalent(a: Answer, b: Answer) -> bool:
    """The majority-match test (``is_math_correct``, §2.2).

    Two answers match when they are the same string, equal after the MATH normaliser (``is_string_equiv``), or
    both plain arithmetic (numbers, ``a/b``, ``\\frac``, ``\\sqrt``, ``\\pi``: ``2+3`` ≡ ``5``,
    ``2\\sqrt{2}`` ≡ ``\\sqrt{8}``) within 0.01 of each other, also after dropping units (``\\text{ …}``).
    Failing those, as the reference does with sympy, when both normalised answers parse as LaTeX and their
    difference simplifies to 0 (``x+1`` ≡ ``1+x``, ``\\frac{x^2-1}{x-1}`` ≡ ``x+1``). That symbolic step runs in a
    resource-limited worker process with the reference's 5-s timeout (:mod:`.symbolic`; a timeout or parse
    failure is no match), and only for pairs that are not both plain numbers. ``None`` matches only ``None``.
    """
    if a is None or b is None:
        return a is None and b is None
    if a == b:
        return True
    for x, y in ((a, b), (_strip_units(a), _strip_units(b))):
        try:
            if strip_math_string(x) == strip_math_string(y):
                return True
        except Exception:  # the normaliser raises on some malformed input; the reference then compares raw
            if x == y:
                return True
        vx, vy = _numeric(x), _numeric(y)
        if vx is not None and vy is not None and abs(vy - vx) < 0.01:
            return True
    x, y = _normalised(_strip_units(a)), _normalised(_strip_units(b))
    return _worth_symbolic(x, y) and symbolic.symbolic_equivalent(x, y)


# --- the difficulty test (§2.5) ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DifficultyTest:
    """Everything the easy/hard decision looked at, for records and tests."""

    mean_z: float
    """Q: mean z of the samples whose answer matches the frozen majority; NaN when none does."""
    n_majority_matches: int
    orm_entropy: float
    orm_conf: float
    prm_entropy: float
    prm_conf: float
    quality_ok: bool
    """cond1: ``not (Q < quality_threshold)`` — true for NaN (no sample backs the majority any more)."""
    low_confidence: bool
    """cond2 is failed: ``conf_ORM < 0.5 or conf_PRM < 0.5`` (with ``combine="or"``)."""
    hard: bool
    """``not quality_ok and low_confidence``: refine this problem."""

    @property
    def mean_z_or_none(self) -> float | None:
        """Q as JSON would hold it (``None`` for NaN)."""
        return None if math.isnan(self.mean_z) else self.mean_z


def difficulty_test(
    samples: Sequence[Scored],
    majority: Answer,
    mu: float,
    sigma: float,
    *,
    equivalent: Equivalent = magicore_equivalent,
    quality_threshold: float = 0.0,
    confidence_threshold: float = 0.5,
    combine: str = "or",
) -> DifficultyTest:
    """Easy or hard (§2.5): hard ⇔ Q < 0 **and** (conf_ORM < 0.5 **or** conf_PRM < 0.5).

    Q is the mean z of the samples backing the frozen majority M: below-average rewards mean the majority is
    probably wrong. The confidences measure how concentrated the RM-weighted answer distribution is; a flat one
    means the samples disagree even after weighting. Only when both signals are bad is refinement worth its
    2k LLM calls. ``combine="and"`` requires both confidences low (an option, not the paper's rule).
    """
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"difficulty_test: sigma must be a positive finite number, got {sigma!r}")
    if combine not in ("or", "and"):
        raise ValueError(f"difficulty_test: combine must be 'or' or 'and', got {combine!r}")
    zs = [z_score(reward(s.orm, s.prm_steps), mu, sigma) for s in samples if equivalent(s.pred, majority)]
    mean_z = np_sum(zs) / len(zs) if zs else math.nan
    answers = [s.pred for s in samples]
    orm_masses = answer_masses(answers, [s.orm for s in samples])
    prm_masses = answer_masses(answers, [prm_product(s.prm_steps) for s in samples])
    orm_h = entropy_nats(list(orm_masses.values()))
    prm_h = entropy_nats(list(prm_masses.values()))
    orm_conf = confidence_from_entropy(orm_h)
    prm_conf = confidence_from_entropy(prm_h)
    quality_ok = not (mean_z < quality_threshold)
    orm_low, prm_low = orm_conf < confidence_threshold, prm_conf < confidence_threshold
    low = (orm_low or prm_low) if combine == "or" else (orm_low and prm_low)
    return DifficultyTest(
        mean_z=mean_z,
        n_majority_matches=len(zs),
        orm_entropy=orm_h,
        orm_conf=orm_conf,
        prm_entropy=prm_h,
        prm_conf=prm_conf,
        quality_ok=quality_ok,
        low_confidence=low,
        hard=(not quality_ok) and low,
    )


# --- top-k and the RM-weighted vote (§3) ------------------------------------------------------------------------------


def top_k(pool: Sequence[S], k: int) -> list[S]:
    """The ``k`` highest-R samples, best first; equal R keep pool order (Python's stable ``sorted``)."""
    if k < 0:
        raise ValueError(f"top_k: k must be >= 0, got {k}")
    return sorted(pool, key=lambda s: reward(s.orm, s.prm_steps), reverse=True)[:k]


def weighted_vote(samples: Sequence[Scored]) -> tuple[Answer, dict[str, float]]:
    """RM-weighted self-consistency (§3): the answer with the largest Σ R, and the per-answer sums.

    Samples without an answer (``None`` or empty) are skipped. On a tie the answer inserted first wins — with
    ``samples`` ranked best first, the one whose best sample ranks highest (Python ``max`` over a dict).
    ``None`` when no sample has an answer (the reference crashes on ``max`` of an empty dict there).
    """
    votes: dict[str, float] = {}
    for s in samples:
        if s.pred:
            r = reward(s.orm, s.prm_steps)
            votes[s.pred] = votes[s.pred] + r if s.pred in votes else r
    if not votes:
        return None, votes
    return max(votes, key=lambda a: votes[a]), votes


def masses_by_answer(samples: Sequence[Scored]) -> tuple[dict[Answer, float], dict[Answer, float]]:
    """(ORM mass, PRM-product mass) per distinct answer string, as the confidence test sums them."""
    answers = [s.pred for s in samples]
    return (
        answer_masses(answers, [s.orm for s in samples]),
        answer_masses(answers, [prm_product(s.prm_steps) for s in samples]),
    )


def as_json_keys(masses: Mapping[Answer, float]) -> dict[str, float]:
    """Masses keyed as JSON writes them (``None`` → ``"null"``)."""
    return {("null" if a is None else a): m for a, m in masses.items()}
