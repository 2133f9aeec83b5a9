"""ALU's decision rules as pure functions: shortlist (§3.4), audit parse (§4.2), eraser parse (§4.3), critic
aggregation (§4.4) and the top-j gate (§5).

Every rule fails closed: a reply the parser cannot map is treated as a hit, a missing score as the minimum, so
a broken agent can only cause extra rewrites or refusals, never a leak. Scores are exact fractions, so the gate's
equality boundary ([5, 4, 3] against τ = 4 passes) holds with averaged critic samples too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from agentmesh.parsers import CriticRatings, parse_critic_ratings, split_text_list
from agentmesh.systems.alu.targets import DEFAULT_MIN_ALIAS_LEN, AliasIndex, Target, TargetSnapshot, normalize

__all__ = [
    "AuditResult",
    "AuditStatus",
    "Decision",
    "ForceFlag",
    "OnUnresolved",
    "Selection",
    "Shortlist",
    "aggregate_critic",
    "fraction_text",
    "gate",
    "parse_audit",
    "parse_critic",
    "parse_erase",
    "reference_hf_check",
    "semantic_candidates",
    "shortlist",
]

AuditStatus = Literal["flagged", "clean", "unparsed", "unresolved"]
ForceFlag = Literal["response", "none"]
OnUnresolved = Literal["erase", "pass"]
Decision = Literal["compose", "refuse"]


def fraction_text(value: Fraction) -> str:
    """``Fraction(9, 2)`` → ``"9/2"``, ``Fraction(4)`` → ``"4"`` (how the worked examples write rationals)."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


# --- shortlist (§3.4) ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shortlist:
    """What the agents will see: lexical hits (never cut), semantic candidates (before the cut) and S."""

    lexical: tuple[int, ...]
    semantic: tuple[int, ...]
    ids: tuple[int, ...]
    scores: Mapping[int, float]
    """Semantic scores of the shortlisted targets (recorded in the run's events, §12.2)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "lexical_hits": list(self.lexical),
            "semantic_candidates": list(self.semantic),
            "shortlist": list(self.ids),
            "scores": {str(k): v for k, v in self.scores.items()},
        }


def semantic_candidates(
    scores: Mapping[int, float], tau_sem: float, exclude: Sequence[int] = (), among: Sequence[int] | None = None
) -> list[int]:
    """Targets scoring at least ``tau_sem`` and not in ``exclude``: score descending, then id ascending (§3.4).

    ``among`` restricts to the active targets (a missing score counts 0, so it is a candidate only when
    ``tau_sem ≤ 0``).
    """
    skip = set(exclude)
    ids = scores.keys() if among is None else among
    pool = [(s, t) for t in ids if t not in skip and (s := float(scores.get(t, 0.0))) >= tau_sem]
    return [t for _s, t in sorted(pool, key=lambda st: (-st[0], st[1]))]  # sort only the candidates, not all N


def shortlist(
    query: str,
    vanilla: str,
    snapshot: TargetSnapshot,
    scores: Mapping[int, float],
    *,
    m: int,
    tau_sem: float,
    min_alias_len: int | None = None,
) -> Shortlist:
    """S = lexical hits of ``query + "\\n" + vanilla`` + the best semantic candidates up to ``m`` in all (§3.4).

    Lexical hits are never cut (their number is bounded by the text, not by the number of targets); semantic
    candidates fill ``max(0, m - |lexical|)`` places. ``min_alias_len`` defaults to the snapshot's.
    """
    if m < 0:
        raise ValueError(f"m must not be negative, got {m}")
    index = snapshot.index if min_alias_len is None else snapshot.index_for(min_alias_len)
    lexical = index.hits(f"{query}\n{vanilla}")
    active = [t.id for t in snapshot.targets]
    semantic = semantic_candidates(scores, tau_sem, exclude=lexical, among=active)
    ids = (*lexical, *semantic[: max(0, m - len(lexical))])
    return Shortlist(tuple(lexical), tuple(semantic), ids, {t: float(scores.get(t, 0.0)) for t in ids})


# --- audit (§4.2) ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditResult:
    """The auditor's reply read against S: which targets it named, which v names literally, and M."""

    status: AuditStatus
    named: tuple[int, ...]
    forced: tuple[int, ...]
    matched: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "named": list(self.named),
            "forced": list(self.forced),
            "matched": list(self.matched),
        }


def parse_audit(
    reply: str,
    shortlisted: Sequence[Target],
    vanilla: str,
    *,
    force_flag_lexical: ForceFlag = "response",
    on_unresolved: OnUnresolved = "erase",
    min_alias_len: int = DEFAULT_MIN_ALIAS_LEN,
) -> AuditResult:
    """The audit rule (§4.2), exact. ``shortlisted`` is S in shortlist order; every list keeps that order.

    named = targets of S occurring in the reply; forced = targets of S occurring in v (unless
    ``force_flag_lexical`` is ``none``): an auditor that says "None" about an answer that spells a target out
    cannot be trusted. M = named or forced. Status ``flagged`` if M ≠ ∅, else ``clean`` if the normalised reply's
    first word is ``none`` (not the substring: "Nonetheless … Mei-Lin Tsao" names her), else ``unparsed`` when the
    reply is empty, else ``unresolved``; the last two set M = S with ``on_unresolved = erase`` (fail closed).
    """
    index = AliasIndex(shortlisted, min_alias_len)
    in_reply = index.positions(reply)
    in_vanilla = index.positions(vanilla) if force_flag_lexical == "response" else {}
    order = [t.id for t in shortlisted]
    named = tuple(t for t in order if t in in_reply)
    forced = tuple(t for t in order if t in in_vanilla)
    matched = tuple(t for t in order if t in in_reply or t in in_vanilla)
    if matched:
        return AuditResult("flagged", named, forced, matched)
    words = normalize(reply).split()
    if words and words[0] == "none":
        return AuditResult("clean", named, forced, ())
    status: AuditStatus = "unparsed" if not words else "unresolved"
    return AuditResult(status, named, forced, tuple(order) if on_unresolved == "erase" else ())


def reference_hf_check(reply: str) -> Literal["clean", "flagged"]:
    """The released local checker's verdict (§4.2, reference behaviour): clean iff ``none`` is a substring of
    the lower-cased reply, so "Nonetheless … Hsiao Yun-Hwa" reads as clean. Kept for ``reference_compat``."""
    return "clean" if "none" in reply.strip().lower() else "flagged"


# --- eraser (§4.3) -----------------------------------------------------------------------------------------------


def parse_erase(reply: str, k: int) -> list[str]:
    """Candidate rewrites: JSON array → ``---`` blocks → numbered list → whole reply; stripped, non-empty, ≤ k.

    The rule is the shared ``text_list`` parser's (:func:`agentmesh.parsers.split_text_list`); order is kept
    because it breaks ties in the ranking (§5).
    """
    if k < 0:
        raise ValueError(f"k must not be negative, got {k}")
    items, _rule = split_text_list(reply, k)
    return items


# --- critic (§4.4) and gate (§5) ---------------------------------------------------------------------------------


def parse_critic(reply: str, n_candidates: int) -> CriticRatings:
    """One critic sample → K scores clipped to [1, 5], missing ones 1 (the shared ``critic_ratings`` rule)."""
    return parse_critic_ratings(reply, n_candidates)


def aggregate_critic(samples: Sequence[CriticRatings], n_candidates: int) -> list[Fraction]:
    """A candidate's score is the exact mean of its scores over the critic samples (§4.4).

    No sample (``critic_samples = 0`` is not a valid setting, but a caller may pass nothing) means every
    candidate scores the minimum, 1: no evidence, no pass.
    """
    if not samples:
        return [Fraction(1)] * n_candidates
    for sample in samples:
        if len(sample.scores) != n_candidates:
            raise ValueError(f"a critic sample has {len(sample.scores)} scores for {n_candidates} candidates")
    return [sum((s.scores[i] for s in samples), Fraction(0)) / len(samples) for i in range(n_candidates)]


@dataclass(frozen=True)
class Selection:
    """The gate's verdict: ranking (0-based, stable), Top, the two sums compared, the mean, the decision."""

    ranking: tuple[int, ...]
    top: tuple[int, ...]
    top_sum: Fraction
    gate_sum: Fraction
    mean: Fraction | None
    decision: Decision

    def to_json(self) -> dict[str, Any]:
        return {
            "ranking": list(self.ranking),
            "top": list(self.top),
            "top_sum": fraction_text(self.top_sum),
            "gate_sum": fraction_text(self.gate_sum),
            "mean": None if self.mean is None else fraction_text(self.mean),
            "decision": self.decision,
        }


def gate(scores: Sequence[Fraction | int], j: int, tau: Fraction | int | str) -> Selection:
    """The top-j gate (§5), exact.

    Ranking = indices by score descending, ties by index ascending (the reference's ``sorted(reverse=True)``
    is stable). J = min(j, K); refuse iff J = 0 or the top-J sum < τ·J: sums, not float means, so averaged
    critic samples cannot flip the equality boundary. The gate is on the mean on purpose (the reference's): a
    top-3 of [5, 5, 2] composes; ``member_min_score`` in the pipeline can drop the 2 afterwards.
    """
    if j < 0:
        raise ValueError(f"j must not be negative, got {j}")
    exact = [Fraction(s) for s in scores]
    threshold = Fraction(tau)
    ranking = tuple(sorted(range(len(exact)), key=lambda i: (-exact[i], i)))
    size = min(j, len(exact))
    top = ranking[:size]
    top_sum = sum((exact[i] for i in top), Fraction(0))
    gate_sum = threshold * size
    decision: Decision = "refuse" if size == 0 or top_sum < gate_sum else "compose"
    return Selection(ranking, top, top_sum, gate_sum, top_sum / size if size else None, decision)
