"""Scores written with enough decimals that the order a table shows is the order they have.

Agent Importance Scores and jury scores are compared by eye: a table that writes 0.25004 and 0.24996 both as
"0.2500" shows two agents tied that are not, beside a ranking that puts one first. :func:`decimals_apart` finds
the fewest decimals, from a column's usual number up, at which every two different scores are written
differently; a column written with it keeps one width, so it stays aligned.

Scores that still read the same at :data:`MOST_DECIMALS` are taken as equal: floats summed in another order differ
in their last bits (0.1 + 0.2 and 0.3), and twelve decimals of that noise would say less than four. Exact scores
(:class:`fractions.Fraction`, as DyLAN's importance keeps them) have no such noise and are compared exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

#: The most decimals a score is written with: differences below half a unit of this place are float noise.
MOST_DECIMALS = 12

Score = float | Fraction


def _fixed(value: Score, decimals: int) -> str:
    """``value`` with ``decimals`` decimals, as ``f"{value:.Nf}"`` writes it (a Fraction through its float:
    Python 3.11's Fraction has no fixed-point format, and the float is as close as twelve decimals need)."""
    return f"{float(value):.{decimals}f}"


def decimals_apart(values: Iterable[Score], *, at_least: int = 4) -> int:
    """The fewest decimals, not under ``at_least``, at which any two of ``values`` that differ are written
    differently (capped at :data:`MOST_DECIMALS`; pairs still alike there are float noise, see the module).

    Only neighbours in sorted order need checking: writing with a fixed number of decimals never reverses an
    order, so once each neighbour is told from the next, all are told apart. Every pair is checked at the one
    number of decimals chosen: two scores told apart at eight decimals can read alike at nine (0.47803274502 and
    0.47803274459 are 0.47803275 and 0.47803274, then both 0.478032745)."""
    ordered = sorted(set(values))
    pairs = [(a, b) for a, b in itertools.pairwise(ordered) if _fixed(a, MOST_DECIMALS) != _fixed(b, MOST_DECIMALS)]
    for decimals in range(at_least, MOST_DECIMALS):
        if all(_fixed(a, decimals) != _fixed(b, decimals) for a, b in pairs):
            return decimals
    return max(at_least, MOST_DECIMALS)  # every pair left differs there, by its choice


def written_apart(scores: Mapping[str, Score], *, at_least: int = 4) -> dict[str, str]:
    """Each score of ``scores`` written with the one number of decimals :func:`decimals_apart` finds for them
    all: a column that keeps its width and shows which of two close scores is the higher."""
    decimals = decimals_apart(scores.values(), at_least=at_least)
    return {name: _fixed(value, decimals) for name, value in scores.items()}


def exact_scores(scores: Mapping[str, Any]) -> dict[str, Score]:
    """A run's stored importance scores (its ``per_agent`` floats, or ``per_agent_exact``'s fractions written as
    ``"1/3"``) read back as numbers: the fractions when every one of them reads, else the floats."""
    floats = {str(k): float(v) for k, v in (scores.get("per_agent") or {}).items()}
    exact = scores.get("per_agent_exact")
    if isinstance(exact, Mapping) and set(map(str, exact)) == set(floats):
        try:
            return {str(k): Fraction(str(v)) for k, v in exact.items()}
        except (ValueError, ZeroDivisionError):
            pass  # a hand-edited or foreign record: its floats are still a ranking
    return dict(floats)


def ranked_apart(stored: Mapping[str, Any], *, at_least: int = 4) -> list[tuple[str, str]]:
    """A run's stored importance scores (see :func:`exact_scores`) best first, equal ones in their stored order,
    each as (agent, score written apart): what ``agentmesh show`` and the run report list."""
    values = exact_scores(stored)
    written = written_apart(values, at_least=at_least)
    return [(agent, written[agent]) for agent in sorted(values, key=lambda a: -values[a])]


__all__ = ["MOST_DECIMALS", "Score", "decimals_apart", "exact_scores", "ranked_apart", "written_apart"]
