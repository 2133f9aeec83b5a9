"""Generic functions shipped with the runtime, reached from YAML by name (``op: function``, ``function: <name>``).

Importing :mod:`agentmesh.runtime` registers them, so a spec can name them without any import of its own.

``pairwise_winner`` — the end of a judged comparison that cancels position bias. An evaluator is asked several
times to compare the same candidates, each time in a different order, and says which position it prefers
(``(A)``, ``(B)``, …, its parser being ``choice_letter``). Verdict ``s`` (the evaluator call with ``index`` s)
is taken to have shown the candidates rotated by ``s``: position ``p`` holds candidate ``(p + s) mod n``. For
two candidates that is (0, 1) as (A, B) in call 0 and (1, 0) in call 1, which is what an evaluator template
writes as ``answers[index]`` then ``answers[1 - index]``. Each verdict is mapped back to the candidate it
means, and a candidate wins only when a strict majority of *all* the verdicts (unparsable ones included) name
it: with two orders, both must agree. Anything else — the verdicts split (position bias), or a verdict is
unparsable so no majority is left — is a tie, and the tie goes to the candidate ``prefer`` (default 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from agentmesh.errors import ConfigError
from agentmesh.runtime.operators.registry import register_function


class PairwiseOutcome(BaseModel):
    """What the verdicts say: the winning candidate's index and how it was reached."""

    model_config = ConfigDict(frozen=True)

    winner: int | None
    """Index of the chosen candidate; ``None`` only when there is no candidate at all."""
    picks: list[int | None]
    """Per verdict, the candidate it names (``None``: no usable verdict)."""
    wins: list[int]
    """Per candidate, how many verdicts name it."""
    tie: bool
    """No strict majority of the verdicts named one candidate; ``winner`` is then the ``prefer`` rule's."""


def verdict_candidate(letter: str | None, slot: int, n_candidates: int, letters: str = "AB") -> int | None:
    """The candidate a verdict names: ``letters[p]`` in call ``slot`` showed candidate ``(p + slot) mod n``.

    ``None`` for no verdict, a letter outside ``letters``, or a position beyond the candidates shown.
    """
    if letter is None or n_candidates <= 0:
        return None
    letter = letter.strip().upper()
    position = letters.find(letter) if len(letter) == 1 else -1
    if position < 0 or position >= n_candidates:
        return None
    return (position + slot) % n_candidates


def pick_pairwise_winner(
    n_candidates: int,
    verdicts: Sequence[tuple[int, str | None]],
    *,
    letters: str = "AB",
    prefer: int = 0,
) -> PairwiseOutcome:
    """Decide among ``n_candidates`` from ``(slot, letter)`` verdicts (see the module docstring for the rules).

    A candidate wins with more than half of ``len(verdicts)`` verdicts naming it; otherwise (a split, or too
    many missing verdicts) it is a tie and ``prefer`` wins (clipped to the candidates there are).
    """
    if n_candidates < 0:
        raise ValueError(f"n_candidates must be >= 0, got {n_candidates}")
    if prefer < 0:
        raise ValueError(f"prefer must be a candidate index >= 0, got {prefer}")
    picks = [verdict_candidate(letter, slot, n_candidates, letters) for slot, letter in verdicts]
    wins = [sum(1 for p in picks if p == i) for i in range(n_candidates)]
    if n_candidates == 0:
        return PairwiseOutcome(winner=None, picks=picks, wins=wins, tie=True)
    best = max(range(n_candidates), key=lambda i: wins[i])
    if 2 * wins[best] > len(verdicts):
        return PairwiseOutcome(winner=best, picks=picks, wins=wins, tie=False)
    return PairwiseOutcome(winner=min(prefer, n_candidates - 1), picks=picks, wins=wins, tie=True)


@register_function("pairwise_winner")
def pairwise_winner(
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    *,
    candidates: str,
    verdicts: str,
    letters: str = "AB",
    prefer: int = 0,
) -> dict[str, Any]:
    """``op: function`` entry: the candidate of node ``candidates`` that the verdicts of node ``verdicts`` prefer.

    ``candidates`` names a node whose ``answers`` are the candidates in order (e.g. a ``team``); ``verdicts``
    names a node whose ``answers`` are the evaluator's calls, each with its ``slot`` (the ``index`` its template
    saw) and its parsed letter as ``key``. The output carries the winner's ``answer``, ``value`` and ``text``
    (what the run returns), plus ``winner``, ``agent``, ``picks``, ``wins`` and ``tie``.
    """
    for arg, value in (("candidates", candidates), ("verdicts", verdicts)):
        if not isinstance(value, str) or value not in outputs:
            known = ", ".join(sorted(outputs)) or "none yet"
            raise ConfigError(
                f"pairwise_winner: '{arg}' must name a node that ran before this one, got {value!r} "
                f"(nodes with outputs: {known})",
                argument=arg,
            )
    if not isinstance(prefer, int) or isinstance(prefer, bool) or prefer < 0:
        raise ConfigError(f"pairwise_winner: 'prefer' must be a candidate index >= 0, got {prefer!r}")
    if not isinstance(letters, str) or not letters.isalpha() or not letters.isupper():
        raise ConfigError(f"pairwise_winner: 'letters' must be capital letters such as 'AB', got {letters!r}")
    shown: list[dict[str, Any]] = list(outputs[candidates].get("answers") or [])
    judged: list[dict[str, Any]] = list(outputs[verdicts].get("answers") or [])
    outcome = pick_pairwise_winner(
        len(shown),
        [(int(v.get("slot", i)), v.get("key")) for i, v in enumerate(judged)],
        letters=letters,
        prefer=prefer,
    )
    chosen = shown[outcome.winner] if outcome.winner is not None else {}
    return {
        "answer": chosen.get("key"),
        "value": chosen.get("value"),
        "text": chosen.get("text"),
        "agent": chosen.get("agent"),
        **outcome.model_dump(),
    }


__all__ = ["PairwiseOutcome", "pairwise_winner", "pick_pairwise_winner", "verdict_candidate"]
