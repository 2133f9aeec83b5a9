"""Step segmentation and the scored rendering the Reviewer and Refiner see (magicore.md §4.2, §5.1).

The reference never parses steps properly: it reshapes the text with two regular expressions and lets the PRM's
step tag ``ки`` mark where each step ends. These functions reproduce that reshaping character for character,
because the number of steps decides how many PRM scores there are, and so the product that enters every reward
``R = ORM + ∏ PRM``. Known consequences, kept on purpose (§5.1): only ``Step 2`` … ``Step 9`` start a step,
``Step 10`` and later stay inside the step before them (and ``Step 20`` looks like ``Step 2``), and a text with
no ``Step k`` header is one step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "STEP_TAG",
    "add_step_lines",
    "display_score",
    "n_scored_steps",
    "prm_input",
    "render_solution",
    "split_steps",
]

STEP_TAG = "ки"
"""Math-Shepherd's step tag (token id 12902 in its tokenizer); the PRM reads P(``+``) at each occurrence."""

_PULL_UP = re.compile(r"\n(Step [2-9])")
_STEP_HEADER = re.compile(r"(Step [2-9])")


def add_step_lines(text: str) -> str:
    """``PRM.add_step_lines``: one blank line before each ``Step 2`` … ``Step 9`` and nowhere else (§5.1 step 1).

    Blank lines are collapsed first (so a model's own paragraphing does not create steps), a line break right
    before a step header is removed, the text stripped, and only then is the blank line inserted, so each
    header ends up exactly one blank line below the previous step.
    """
    text = text.replace("\n\n", "\n")
    text = _PULL_UP.sub(r"\1", text).strip()
    return _STEP_HEADER.sub(r"\n\n\1", text)


def prm_input(segmented: str) -> str:
    """``PRM.reformat_for_prm_CoT``: every blank line becomes a step tag, and one more tag ends the text (§5.1).

    ``segmented`` is the output of :func:`add_step_lines`. The PRM's input is the question, one space and this.
    """
    return segmented.strip().replace("\n\n", f" {STEP_TAG}\n") + f" {STEP_TAG}"


def n_scored_steps(text: str) -> int:
    """How many PRM scores a solution gets: the number of step tags after segmentation and tagging."""
    return prm_input(add_step_lines(text)).count(STEP_TAG)


def split_steps(text: str) -> list[str]:
    """The steps of a raw solution, one per step tag, stripped: what a :class:`ProcessRM` scores.

    ``" ки\\n".join(split_steps(t)) + " ки"`` rebuilds the Math-Shepherd input of a text whose steps have no
    edge whitespace of their own (the usual case); an adapter for a real Math-Shepherd PRM should rather call
    :func:`prm_input` on :func:`add_step_lines` directly.
    """
    return [part.strip() for part in prm_input(add_step_lines(text)).split(STEP_TAG)[:-1]]


def display_score(p: float) -> int:
    """A step probability as the integer 0-10 the Reviewer sees: ``int(round(p, 1) * 10)`` (§4.2).

    Python's ``round`` rounds the binary float half-to-even, so 0.45 → 5 and 0.25 → 2 but 0.15 → 1 and
    0.85 → 8 (the stored binary values of 0.15 and 0.85 lie just below the midpoint); ``int`` then truncates
    the product, which is why 0.05 shows as 1 (round gives 0.1, and 0.1 * 10 is exactly 1.0).
    """
    return int(round(p, 1) * 10)


def render_solution(solution_text: str, prm_steps: Sequence[float]) -> str:
    """``PRM.add_pr_to_question``: each step followed by ``" (Score: S/10)\\n"``, steps a blank line apart.

    The text is segmented and tagged as for the PRM, then split at the tags; step ``j`` keeps the space that
    preceded its tag (hence two spaces before ``(Score``) and the line break that followed the previous tag
    (hence the blank line). Scores pair with the tag-split parts in order, as the reference's ``zip`` does: a
    missing score drops its step, and one score too many is shown alone after the last step (the empty part
    that follows the final tag).
    """
    parts = prm_input(add_step_lines(solution_text)).split(STEP_TAG)
    return "".join(
        f"{part} (Score: {display_score(score)}/10)\n" for part, score in zip(parts, prm_steps, strict=False)
    )
