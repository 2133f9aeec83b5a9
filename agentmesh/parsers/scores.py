"""Numeric scores from judge replies (SE-Jury, sejury.md §3) and their mapping to a human scale.

SE-Jury's judges end with ``<score> [END] <short reason>``; the reference reads the **first** match of
``(\\d+)\\s*\\[END\\]`` as an int (§3 step 1). That regex has two quirks kept on purpose, because the published
correlations were computed with them: ``85/100 [END]`` reads 100 and ``8.5 [END]`` reads 5 (only the digits
directly before the delimiter). A reply without a match scores 0, as §3 recommends ("treat a failed parse as 0
and log it"): ``ok`` is false, ``error`` says why and ``value`` is the fallback.

The same parser serves other judges by parameters: a delimiter *before* the number (``Score: 7``), decimals,
the last match instead of the first, a range with clipping or rejection. §3 step 2's mappings to the human
scale (``1 + s/100·4``, optionally rounded half-to-even per judge; ``s/100`` for APR) are the ``scale`` options
and public functions.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import field_validator, model_validator

from agentmesh.parsers.registry import Parsed, ParserParams, register_alias, register_parser

__all__ = [
    "ScoreScale",
    "apply_scale",
    "extract_score",
    "score",
    "score_to_0_1",
    "score_to_1_5",
    "score_to_1_5_rounded",
]

ScoreScale = Literal["none", "to_1_5", "to_1_5_rounded", "to_0_1"]

_INT = r"\d+"
_DECIMAL = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"


def score_to_1_5(raw: float) -> float:
    """SE-Jury graded tasks (sejury.md §3 step 2): ``1 + raw/100*4``, 0..100 → 1..5, unrounded."""
    return 1 + raw / 100 * 4


def score_to_1_5_rounded(raw: float) -> int:
    """:func:`score_to_1_5` then Python ``round()`` (half to even), per judge, before ensembling (§3 step 2)."""
    return round(score_to_1_5(raw))


def score_to_0_1(raw: float) -> float:
    """SE-Jury APR (sejury.md §3 step 2): ``raw/100``, no rounding."""
    return raw / 100


def apply_scale(raw: float, scale: ScoreScale) -> float:
    """Map a raw score with one of the ``scale`` options (``none`` leaves it unchanged)."""
    if scale == "to_1_5":
        return score_to_1_5(raw)
    if scale == "to_1_5_rounded":
        return score_to_1_5_rounded(raw)
    if scale == "to_0_1":
        return score_to_0_1(raw)
    return raw


def _score_pattern(
    delimiter: str | None, position: Literal["before", "after"], integer: bool, pattern: str | None
) -> re.Pattern[str]:
    if pattern is not None:
        return re.compile(pattern)
    number = f"({_INT if integer else _DECIMAL})"
    if delimiter is None:
        return re.compile(number)
    delim = re.escape(delimiter)
    return re.compile(number + r"\s*" + delim if position == "before" else delim + r"\s*" + number)


def extract_score(
    text: str,
    *,
    delimiter: str | None = "[END]",
    position: Literal["before", "after"] = "before",
    integer: bool = True,
    occurrence: Literal["first", "last"] = "first",
    pattern: str | None = None,
    ignore_case: bool = False,
) -> float | None:
    """The raw number a reply gives (``int`` when ``integer``), or ``None`` when nothing matches.

    Defaults are SE-Jury's rule: the first ``(\\d+)\\s*\\[END\\]`` (sejury.md §3 step 1). ``position`` says
    where the number stands relative to the delimiter (``before``: ``80 [END]``; ``after``: ``Score: 80``).
    ``pattern`` replaces all of that with a regex whose first group is the number.
    """
    regex = _score_pattern(delimiter, position, integer, pattern)
    if ignore_case:
        regex = re.compile(regex.pattern, regex.flags | re.IGNORECASE)
    matches = list(regex.finditer(text))
    if not matches:
        return None
    raw = (matches[0] if occurrence == "first" else matches[-1]).group(1)
    try:
        return int(raw) if integer and pattern is None else _number(raw)
    except ValueError:
        return None


def _number(raw: str) -> float:
    value = float(raw)
    return int(value) if value.is_integer() and re.fullmatch(r"[+-]?\d+", raw.strip()) else value


def _key(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class ScoreParams(ParserParams):
    """Parameters of :data:`score`."""

    delimiter: str | None = "[END]"
    """Text next to the number (SE-Jury: ``[END]`` after it); ``null`` = any number in the reply."""
    position: Literal["before", "after"] = "before"
    """Where the number stands relative to the delimiter: ``before`` (``80 [END]``), ``after`` (``Score: 80``)."""
    integer: bool = True
    """Read only digits (SE-Jury's ``\\d+``: ``8.5 [END]`` reads 5); ``false`` reads decimals and a sign."""
    occurrence: Literal["first", "last"] = "first"
    """Which match counts when there are several (SE-Jury: the first)."""
    pattern: str | None = None
    """A regex whose first group is the number; overrides delimiter/position/integer."""
    ignore_case: bool = False
    """Match the delimiter case-insensitively."""
    min: int | float | None = None
    """Lowest valid score (e.g. 0 or 1); ``null`` = unbounded."""
    max: int | float | None = None
    """Highest valid score (e.g. 100 or 10); ``null`` = unbounded."""
    out_of_range: Literal["clip", "reject"] = "clip"
    """A score outside [min, max]: ``clip`` to the bound, or ``reject`` (``ok=false``, value = fallback)."""
    fallback: int | float | None = 0
    """The value when nothing parses (SE-Jury §3: 0); ``null`` = no value."""
    scale: ScoreScale = "none"
    """Map the score (and the fallback) of 0..100 to a human scale, as SE-Jury does: ``to_1_5`` (``1 + raw/25``),
    ``to_1_5_rounded`` (that, rounded half to even), ``to_0_1`` (``raw/100``); ``none`` keeps it."""

    @field_validator("pattern")
    @classmethod
    def _one_group(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"expected a valid regular expression ({exc})") from None
            if compiled.groups < 1:
                raise ValueError("expected a regex with a group capturing the number, e.g. 'Score: (\\d+)'")
        return pattern

    @model_validator(mode="after")
    def _consistent(self) -> ScoreParams:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


@register_parser("score", params=ScoreParams)
def score(
    text: str,
    *,
    delimiter: str | None,
    position: Literal["before", "after"],
    integer: bool,
    occurrence: Literal["first", "last"],
    pattern: str | None,
    ignore_case: bool,
    min: int | float | None,
    max: int | float | None,
    out_of_range: Literal["clip", "reject"],
    fallback: int | float | None,
    scale: ScoreScale,
) -> Parsed:
    """A judge's numeric score: SE-Jury's ``NN [END]`` rule by default (sejury.md §3), configurable.

    ``value`` is the score after range handling and ``scale``; ``normalized`` is its canonical string.
    """
    low, high = min, max

    def fail(why: str) -> Parsed:
        if fallback is None:
            return Parsed.failure(why)
        value = apply_scale(fallback, scale)
        return Parsed.failure(why, value, _key(value))

    raw = extract_score(
        text,
        delimiter=delimiter,
        position=position,
        integer=integer,
        occurrence=occurrence,
        pattern=pattern,
        ignore_case=ignore_case,
    )
    if raw is None:
        where = f"{position} {delimiter!r}" if delimiter is not None and pattern is None else "in the reply"
        hint = _position_hint(text, delimiter, position, ignore_case) if pattern is None else ""
        scored = f"; scored {fallback} (SE-Jury's rule)" if fallback is not None else ""
        return fail(f"no score {where}{hint}{scored}")
    if (low is not None and raw < low) or (high is not None and raw > high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        if out_of_range == "reject":
            return fail(f"score {raw} is outside {bounds}")
        bound = low if low is not None and raw < low else high
        assert bound is not None
        raw = int(bound) if float(bound).is_integer() and isinstance(raw, int) else bound
    value = apply_scale(raw, scale)
    return Parsed.success(value, _key(value))


def _position_hint(text: str, delimiter: str | None, position: str, ignore_case: bool) -> str:
    """When the number is on the other side of the delimiter (``Score: 85`` read with the default ``before``),
    say which ``position`` would read it: the reply is fine, the parser's settings are not."""
    if delimiter is None:
        return ""
    flags = re.IGNORECASE if ignore_case else 0
    number, mark = r"-?\d+(?:\.\d+)?", re.escape(delimiter)
    if position == "before" and re.search(mark + r"\s*" + number, text, flags):
        return " (a number follows it: position: after reads it)"
    if position == "after" and re.search(number + r"\s*" + mark, text, flags):
        return " (a number precedes it: position: before reads it)"
    return ""


register_alias("score_0_100", "score", min=0, max=100)
