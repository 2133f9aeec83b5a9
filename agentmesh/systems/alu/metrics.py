"""ALU's evaluation metrics (alu.md §9.2), exact where the spec is exact.

* ROUGE-L recall as TOFU computes it (``rouge_score`` with ``use_stemmer=True``, reference first): tokens are
  the lower-cased text with runs outside ``[a-z0-9]`` turned into spaces, Porter-stemmed when longer than 3
  characters; recall = LCS / reference length, as a :class:`~fractions.Fraction`.
* Leak rate: an item leaks when its target has a whole-word lexical hit (§3.2) in the final answer. The optional
  judge leak rate: the fraction of an LLM judge's parsed verdicts that say yes; unparsed verdicts are counted
  apart, neither leaks nor non-leaks.
* Multiple choice: ALU's letter rule (the shared ``choice_letter`` parser, style ``alu``), strict accuracy,
  random-fill accuracy (no answer earns 1/n_options) and abstain rate.
* Forget quality (generation-level adaptation): the exact two-sided two-sample Kolmogorov-Smirnov test, the
  value ``scipy.stats.ks_2samp(system, reference, method="exact")`` gives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Literal

from agentmesh.parsers import extract_choice_letter
from agentmesh.systems.alu.targets import DEFAULT_MIN_ALIAS_LEN, Target, occurs

__all__ = [
    "KSResult",
    "McqScores",
    "Stemmer",
    "answer_letter",
    "judge_leak_rate",
    "ks_2samp_exact",
    "lcs_length",
    "leak_rate",
    "leaks",
    "mcq_scores",
    "mean",
    "porter_stemmer",
    "rouge_l_recall",
    "rouge_tokens",
]

Stemmer = Callable[[str], str]

_NON_ALNUM_RE = re.compile(r"[^a-z0-9]+")
_VALID_TOKEN_RE = re.compile(r"^[a-z0-9]+$")


@lru_cache(maxsize=1)
def porter_stemmer() -> Stemmer:
    """The Porter stemmer ``rouge_score`` uses (NLTK's). A clear error names the package when it is missing,
    rather than silently scoring without stemming (which changes the numbers TOFU reports)."""
    try:
        from nltk.stem import porter  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "ROUGE-L with stemming (TOFU's convention) needs NLTK's Porter stemmer: pip install nltk "
            "(or rouge-score, which depends on it); pass stemmer=None to score without stemming"
        ) from exc
    stem: Stemmer = porter.PorterStemmer().stem
    return stem


def rouge_tokens(text: str, stemmer: Stemmer | None) -> list[str]:
    """``rouge_score``'s default tokenizer: lower-case, non-``[a-z0-9]`` runs → space, stem tokens of > 3 chars."""
    tokens = _NON_ALNUM_RE.sub(" ", text.lower()).split()
    if stemmer is not None:
        tokens = [stemmer(t) if len(t) > 3 else t for t in tokens]
    return [t for t in tokens if _VALID_TOKEN_RE.match(t)]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(|a|·|b|) time, O(|b|) memory)."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for jdx, y in enumerate(b, 1):
            cur.append(prev[jdx - 1] + 1 if x == y else max(prev[jdx], cur[jdx - 1]))
        prev = cur
    return prev[-1]


def rouge_l_recall(
    reference: str, prediction: str, *, stemmer: Stemmer | Literal["porter"] | None = "porter"
) -> Fraction:
    """ROUGE-L recall of ``prediction`` against ``reference`` (TOFU: ``score(reference, prediction).recall``).

    ``stemmer`` defaults to the Porter stemmer (``use_stemmer=True``, needs NLTK); ``None`` scores the raw
    tokens. An empty reference scores 0 (``rouge_score`` does the same).
    """
    stem = porter_stemmer() if stemmer == "porter" else stemmer
    if isinstance(stem, str):
        raise ValueError(f"stemmer must be 'porter', a callable str -> str or None, got {stem!r}")
    ref = rouge_tokens(reference, stem)
    pred = rouge_tokens(prediction, stem)
    if not ref:
        return Fraction(0)
    return Fraction(lcs_length(ref, pred), len(ref))


def mean(values: Iterable[Fraction]) -> Fraction | None:
    """Exact mean; ``None`` for no values."""
    items = list(values)
    return sum(items, Fraction(0)) / len(items) if items else None


# --- leaks -----------------------------------------------------------------------------------------------------------


def leaks(answer: str, target: Target, min_alias_len: int = DEFAULT_MIN_ALIAS_LEN) -> bool:
    """The answer names the item's target (a lexical hit, §3.2: accents, case and punctuation folded)."""
    return occurs(target, answer, min_alias_len)


def leak_rate(items: Sequence[tuple[str, Target]], min_alias_len: int = DEFAULT_MIN_ALIAS_LEN) -> Fraction | None:
    """Fraction of forget items ``(final answer, target)`` whose answer leaks; ``None`` for no items."""
    if not items:
        return None
    return Fraction(sum(leaks(a, t, min_alias_len) for a, t in items), len(items))


def judge_leak_rate(verdicts: Sequence[bool | None]) -> tuple[Fraction | None, int]:
    """The judge leak rate of forget items from the judge's verdicts (``True``: the answer reveals the gold answer,
    ``False``: it does not, ``None``: unparsed), and the number unparsed. The rate is over the parsed verdicts
    (``None`` when there is none): an unparsed verdict is no evidence either way, so it is reported, not
    counted as a non-leak."""
    parsed = [v for v in verdicts if v is not None]
    unparsed = len(verdicts) - len(parsed)
    return (Fraction(sum(parsed), len(parsed)) if parsed else None), unparsed


# --- multiple choice -------------------------------------------------------------------------------------------------

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def answer_letter(response: str, n_options: int, refusal_text: str | None) -> str | None:
    """The letter a response picks by ALU's rule (§9.2); the refusal text and anything unmatched give ``None``."""
    if not 1 <= n_options <= len(_LETTERS):
        raise ValueError(f"n_options must be between 1 and 26, got {n_options}")
    return extract_choice_letter(response, letters=_LETTERS[:n_options], style="alu", refusal_text=refusal_text)


def _gold_letter(gold: str | int, n_options: int) -> str:
    """A gold label as a letter: ``"B"`` stays, an integer is a 0-based option index (``1`` → ``"B"``)."""
    if isinstance(gold, int) and not isinstance(gold, bool):
        if not 0 <= gold < n_options:
            raise ValueError(f"gold option index {gold} is outside 0..{n_options - 1}")
        return _LETTERS[gold]
    letter = str(gold).strip().upper()
    if letter not in _LETTERS[:n_options]:
        raise ValueError(f"gold answer {gold!r} is not one of {_LETTERS[:n_options]}")
    return letter


@dataclass(frozen=True)
class McqScores:
    parsed: tuple[str | None, ...]
    correct: int
    abstained: int
    acc_strict: Fraction
    acc_random_fill: Fraction
    abstain_rate: Fraction


def mcq_scores(
    responses: Sequence[str], golds: Sequence[str | int], n_options: int, refusal_text: str | None
) -> McqScores:
    """Strict accuracy (no answer is wrong), random-fill accuracy (no answer earns 1/n_options) and abstain rate.

    A WMDP-style forget domain should approach chance (1/n_options); an MMLU-style control should keep the
    vanilla model's accuracy (§9.2).
    """
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses for {len(golds)} gold answers")
    if not responses:
        raise ValueError("no multiple-choice items")
    parsed = tuple(answer_letter(r, n_options, refusal_text) for r in responses)
    correct = sum(p is not None and p == _gold_letter(g, n_options) for p, g in zip(parsed, golds, strict=True))
    abstained = sum(p is None for p in parsed)
    n = len(responses)
    return McqScores(
        parsed=parsed,
        correct=correct,
        abstained=abstained,
        acc_strict=Fraction(correct, n),
        acc_random_fill=(correct + Fraction(abstained, n_options)) / n,
        abstain_rate=Fraction(abstained, n),
    )


# --- Kolmogorov-Smirnov ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KSResult:
    statistic: float
    pvalue: float


def ks_2samp_exact(system: Sequence[float], reference: Sequence[float]) -> KSResult:
    """Two-sided two-sample KS test with the exact null distribution: SciPy's ``ks_2samp(method="exact")``, the
    test the forget-quality figures were computed with (§9.2)."""
    if not system or not reference:
        raise ValueError("both samples must be non-empty")
    from scipy import stats  # deferred: only an evaluation needs it, and it costs ~0.3 s to import

    result = stats.ks_2samp([float(x) for x in system], [float(x) for x in reference], method="exact")
    return KSResult(float(result.statistic), float(result.pvalue))
