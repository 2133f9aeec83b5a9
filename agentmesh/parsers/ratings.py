"""Ratings and rankings that agents give each other: DyLAN's ``[[…]]`` ratings and ranker, ALU's critic list.

These replies feed maths that must match the papers exactly (DyLAN's Agent Importance Scores, ALU's top-j
gate), so each rule is ported with its fallbacks, and the exact values are available as
:class:`~fractions.Fraction` from the pure functions; the registered parsers put floats (and, for ALU, exact
fraction strings) into the JSON value.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from pydantic import Field, JsonValue, ValidationInfo, field_validator

from agentmesh.parsers.registry import Parsed, ParserParams, register_parser

__all__ = [
    "CriticRatings",
    "DylanRatings",
    "critic_ratings",
    "dylan_rating_weights",
    "parse_critic_ratings",
    "parse_dylan_ratings",
    "parse_ranking",
    "ranking",
    "ratings",
]

# --- DyLAN ratings (dylan.md §4.1, §4.4) ------------------------------------------------------------------------

RatingStatus = Literal["ok", "partial", "missing", "length_mismatch", "invalid"]
NonInteger = Literal["zero", "invalidate"]

_DOUBLE_BRACKET_RE = re.compile(r"\[\[(.*?)\]\]")


@dataclass(frozen=True)
class DylanRatings:
    """One node's ratings of its ``n`` visible predecessors, in the order they were shown.

    ``ratings`` is the parsed list (``None`` when missing, of the wrong length or invalid); ``weights`` the
    normalised edge weights (§4.1 steps 4 and 5), always ``n`` of them, summing to 1.
    """

    ratings: list[int] | None
    weights: list[Fraction]
    status: RatingStatus
    bad_items: list[str]


def dylan_rating_weights(ratings: Sequence[int] | None, n: int) -> list[Fraction]:
    """Ratings → normalised edge weights (dylan.md §4.1 steps 2, 4, 5).

    A missing list or one whose length is not ``n`` counts as all zeros. Each rating r becomes r/5 if
    0 < r ≤ 5, 1 if r > 5, 0 if r ≤ 0; the weights are these over their sum, or uniform 1/n when the sum is 0.
    Because the rule is per position, it commutes with un-shuffling: map the weights back to predecessors after.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1 (the number of predecessors shown), got {n}")
    values = list(ratings) if ratings is not None and len(ratings) == n else [0] * n
    scaled = [Fraction(r, 5) if 0 < r <= 5 else Fraction(1) if r > 5 else Fraction(0) for r in values]
    total = sum(scaled, Fraction(0))
    if total > 0:
        return [s / total for s in scaled]
    return [Fraction(1, n)] * n


def parse_dylan_ratings(text: str, n: int, *, non_integer: NonInteger = "zero") -> DylanRatings:
    """DyLAN's rating parse (dylan.md §4.1 step 1, §4.4): the last ``[[…]]`` in the reply.

    Spaces are removed, the content is split on commas and each item read with Python's ``int()``. An item
    that is not an int counts as 0 (MMLU class, ``non_integer="zero"``) or voids the whole list (HumanEval
    class, ``"invalidate"``). ``[[`` and ``]]`` must be on one line, as in the reference regex.
    """
    found = _DOUBLE_BRACKET_RE.findall(text)
    if not found:
        return DylanRatings(None, dylan_rating_weights(None, n), "missing", [])
    items = found[-1].replace(" ", "").split(",")
    values: list[int] = []
    bad: list[str] = []
    for item in items:
        try:
            values.append(int(item))
        except ValueError:
            bad.append(item)
            values.append(0)
    if bad and non_integer == "invalidate":
        return DylanRatings(None, dylan_rating_weights(None, n), "invalid", bad)
    if len(values) != n:
        return DylanRatings(values, dylan_rating_weights(None, n), "length_mismatch", bad)
    return DylanRatings(values, dylan_rating_weights(values, n), "partial" if bad else "ok", bad)


class RatingsParams(ParserParams):
    """Parameters of :data:`ratings`."""

    n: int = Field(ge=1)
    """How many predecessor responses the node was shown (and must rate); passed per call by the runtime."""
    non_integer: NonInteger = "zero"
    """A non-integer item: ``zero`` (DyLAN MMLU class: it counts 0) or ``invalidate`` (HumanEval: uniform)."""


@register_parser("ratings", params=RatingsParams, call_params=("n",))
def ratings(text: str, *, n: int, non_integer: NonInteger) -> Parsed:
    """DyLAN ratings ``[[a, b, …]]`` of ``n`` predecessors → weights (dylan.md §4.1, §4.4).

    ``value`` = ``{"ratings": [...] | null, "weights": [...], "status": ...}``; a missing list, a wrong length
    or (``invalidate``) a bad item gives ``ok=false`` with uniform weights, which is what the method uses.
    """
    parsed = parse_dylan_ratings(text, n, non_integer=non_integer)
    ratings_json: list[JsonValue] | None = None if parsed.ratings is None else [r for r in parsed.ratings]
    weights_json: list[JsonValue] = [float(w) for w in parsed.weights]
    value: dict[str, JsonValue] = {"ratings": ratings_json, "weights": weights_json, "status": parsed.status}
    key = ",".join(str(r) for r in parsed.ratings) if parsed.ratings is not None else None
    if parsed.status == "ok":
        return Parsed.success(value, key)
    bad = ", ".join(repr(b) for b in parsed.bad_items)
    reason = {
        "missing": "no [[...]] rating list in the reply; weights are uniform (DyLAN's rule)",
        "length_mismatch": f"the rating list has {len(parsed.ratings or [])} items for {n} predecessors; "
        "weights are uniform (DyLAN's rule)",
        "partial": f"rating items {bad} are not integers and count as 0 (DyLAN's rule)",
        "invalid": f"rating items {bad} are not integers; weights are uniform (DyLAN's HumanEval rule)",
    }[parsed.status]
    return Parsed.failure(reason, value, key)


# --- DyLAN ranker (dylan.md §2 "Parsing") ------------------------------------------------------------------------

RankFallback = Literal["random", "first"]


def parse_ranking(
    text: str,
    n: int,
    *,
    k: int = 2,
    max_label: int = 7,
    fallback: RankFallback = "random",
    seed: int = 0,
    dedupe: bool = True,
) -> tuple[list[int], bool]:
    """DyLAN's listwise-ranker parse: 0-based indices of the chosen responses, and whether the reply matched.

    The last ``[d, d]`` (k labels, each a single digit 1..``max_label``; 7 in the MMLU class, 4 in the MATH and
    HumanEval scripts) → minus 1 → clipped to [0, n-1]. No match → ``k`` distinct indices drawn with
    ``random.Random(seed)`` (MMLU and HumanEval classes; seeded so that replaying a run reparses identically) or
    ``[0, 1, …]`` (MATH script). The reference keeps duplicates such as ``[2, 2]``; ``dedupe`` (the default,
    dylan.md §8 D5) drops them, keeping the first occurrence.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1 (the number of ranked responses), got {n}")
    label = f"([1-{max_label}])"
    regex = re.compile(r"\[" + r",\s*".join([label] * k) + r"\]")
    found = regex.findall(text)
    if found:
        last = found[-1] if isinstance(found[-1], tuple) else (found[-1],)
        picks = [min(max(int(d) - 1, 0), n - 1) for d in last]
        if dedupe:
            picks = list(dict.fromkeys(picks))
        return picks, True
    count = min(k, n)
    if fallback == "random":
        return random.Random(seed).sample(range(n), count), False
    return list(range(count)), False


class RankingParams(ParserParams):
    """Parameters of :data:`ranking`."""

    n: int = Field(ge=1)
    """How many responses the ranker was shown; passed per call by the runtime."""
    k: int = Field(2, ge=1, le=9)
    """How many the ranker picks (DyLAN: 2, fixed by the prompt)."""
    max_label: int = Field(7, ge=1, le=9)
    """Highest label the regex accepts (single digits; MMLU class 7, MATH/HumanEval scripts 4)."""
    fallback: RankFallback = "random"
    """No ``[i, j]`` in the reply: ``random`` distinct indices (MMLU/HumanEval) or ``first`` (MATH: [0, 1])."""
    seed: int = 0
    """Seed of the random fallback, so a replayed run reparses to the same indices."""
    dedupe: bool = True
    """Drop repeated indices (``[2, 2]`` → one agent); ``false`` keeps them as the released code does."""

    # field validators, not a model validator: they must run at spec load, when the call parameter n is absent
    @field_validator("max_label")
    @classmethod
    def _k_fits(cls, max_label: int, info: ValidationInfo) -> int:
        k = info.data.get("k")
        if k is not None and k > max_label:
            raise ValueError(f"k ({k}) cannot exceed max_label ({max_label})")
        return max_label


@register_parser("ranking", params=RankingParams, call_params=("n",))
def ranking(text: str, *, n: int, k: int, max_label: int, fallback: RankFallback, seed: int, dedupe: bool) -> Parsed:
    """DyLAN ranker reply ``[i, j]`` → 0-based top-k indices, with the spec's clip and fallback (dylan.md §2).

    ``ok`` is false when the reply had no ranking; the value is then the fallback the method uses.
    """
    picks, matched = parse_ranking(text, n, k=k, max_label=max_label, fallback=fallback, seed=seed, dedupe=dedupe)
    key = ",".join(str(p) for p in picks)
    if matched:
        return Parsed.success(list(picks), key)
    return Parsed.failure(
        f"no ranking like [1, 2] (labels 1..{max_label}) in the reply; used the {fallback} fallback {picks} "
        "(DyLAN's rule)",
        list(picks),
        key,
    )


# --- ALU critic (alu.md §4.4) -------------------------------------------------------------------------------------

CriticStatus = Literal["ok", "partial", "length_mismatch", "unparsed"]

_BRACKET_GROUP_RE = re.compile(r"\[([^\[\]]*)\]")
_CRITIC_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


@dataclass(frozen=True)
class CriticRatings:
    """One critic sample: the raw list (numbers or ``None`` for non-numeric items) and the K clipped scores."""

    raw: list[Fraction | None] | None
    scores: list[Fraction]
    status: CriticStatus


def parse_critic_ratings(text: str, n: int, *, low: Fraction | int = 1, high: Fraction | int = 5) -> CriticRatings:
    """ALU's critic parse (alu.md §4.4), exact.

    The last ``[...]`` group (no nested brackets) with at least one numeric element; elements split on commas
    and stripped of spaces, quotes and backticks; numeric iff ``[+-]?(\\d+(\\.\\d*)?|\\.\\d+)``. Candidate i gets
    element i clipped to [low, high], or ``low`` if it is missing or not numeric (a broken critic can only cause
    refusals, never leaks); extra elements are ignored. Status ``length_mismatch`` if the length is not n, else
    ``partial`` if an element was not numeric, else ``ok``; ``unparsed`` when no group qualifies.
    """
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    lo, hi = Fraction(low), Fraction(high)
    raw: list[Fraction | None] | None = None
    for content in reversed(_BRACKET_GROUP_RE.findall(text)):
        elements = [e.strip().strip(" \t\r\n'\"`") for e in content.split(",")]
        values: list[Fraction | None] = [Fraction(e) if _CRITIC_NUMBER_RE.fullmatch(e) else None for e in elements]
        if any(v is not None for v in values):
            raw = values
            break
    if raw is None:
        return CriticRatings(None, [lo] * n, "unparsed")
    scores: list[Fraction] = []
    for i in range(n):
        item = raw[i] if i < len(raw) else None
        scores.append(lo if item is None else min(hi, max(lo, item)))
    if len(raw) != n:
        status: CriticStatus = "length_mismatch"
    elif any(v is None for v in raw):
        status = "partial"
    else:
        status = "ok"
    return CriticRatings(raw, scores, status)


class CriticRatingsParams(ParserParams):
    """Parameters of :data:`critic_ratings`."""

    n: int = Field(ge=0)
    """How many candidates were rated (ALU's K); passed per call by the runtime."""
    min: int | float = 1
    """Lowest score; missing or non-numeric items get it (alu.md §4.4: 1)."""
    max: int | float = 5
    """Highest score; larger values are clipped to it (alu.md §4.4: 5)."""

    @field_validator("max")
    @classmethod
    def _ordered(cls, high: int | float, info: ValidationInfo) -> int | float:
        low = info.data.get("min")
        if low is not None and low > high:
            raise ValueError(f"min ({low}) must not exceed max ({high})")
        return high


def _fraction_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


@register_parser("critic_ratings", params=CriticRatingsParams, call_params=("n",))
def critic_ratings(text: str, *, n: int, min: int | float, max: int | float) -> Parsed:
    """ALU critic ``Final Rating List - [s1, …, sK]`` → K scores clipped to [1, 5] (alu.md §4.4).

    ``value`` = ``{"scores": [float], "exact": ["9/2", ...], "raw": [float | null] | null, "status": ...}``;
    ``exact`` keeps the rationals so the top-j gate can compare sums exactly (alu.md §5).
    """
    parsed = parse_critic_ratings(text, n, low=Fraction(str(min)), high=Fraction(str(max)))
    exact = [_fraction_text(s) for s in parsed.scores]
    scores_json: list[JsonValue] = [float(s) for s in parsed.scores]
    exact_json: list[JsonValue] = [e for e in exact]
    raw_json: list[JsonValue] | None = (
        None if parsed.raw is None else [None if v is None else float(v) for v in parsed.raw]
    )
    value: dict[str, JsonValue] = {"scores": scores_json, "exact": exact_json, "raw": raw_json, "status": parsed.status}
    key = ",".join(exact)
    if parsed.status == "ok":
        return Parsed.success(value, key)
    reason = {
        "unparsed": f"no [...] list with a number in the reply; all {n} scores set to {min} (ALU's rule)",
        "length_mismatch": f"the rating list has {len(parsed.raw or [])} items for {n} candidates; missing ones "
        f"score {min} (ALU's rule)",
        "partial": f"some ratings are not numbers and score {min} (ALU's rule)",
    }[parsed.status]
    return Parsed.failure(reason, value, key)
