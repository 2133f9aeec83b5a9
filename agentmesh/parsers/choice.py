"""Multiple-choice letters: which option a reply picks, by the rule of the paper whose numbers we reproduce.

* **DyLAN** (dylan.md §1.4 "MMLU", ``parse_single_choice``): the *last* ``(X)``, case-insensitive, upper-cased;
  else the last ``X)``; else no answer. Agents are told to end with ``(X)``, so the last one is the verdict.
* **MAgICoRe** (magicore.md §2.2, ``get_choice``): the last capital letter followed by ``)``; else the last
  capital letter *anywhere*, even inside a word ("Calculate" gives C); else the string ``"N/A"``, which the
  reference votes on like a real answer, so it is returned as the value (with ``ok=False``).
* **ALU** (alu.md §9.2, vector ``E_metrics``): the refusal text gives no answer; else the *first*
  ``answer (is)(:) (X)``; else the first ``(X)``; else a reply starting with ``X`` followed by ``.``, ``)``,
  ``:``, a space or the end; else no answer. Only capital letters count.

The letters are configurable (``ABCD`` by default; MAgICoRe's MMLU/SAT sets use ``ABCDE``), and can follow the
number of options a run is given (``options``: the list input the prompt letters).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import field_validator

from agentmesh.parsers.registry import Parsed, ParserParams, register_parser

__all__ = ["ChoiceStyle", "choice_letter", "extract_choice_letter", "normalize_choice_letter", "offered_letters"]

ChoiceStyle = Literal["dylan", "magicore", "alu"]

MAGICORE_NO_ANSWER = "N/A"


def _check_letters(letters: str) -> str:
    if not letters or not all("A" <= c <= "Z" for c in letters) or len(set(letters)) != len(letters):
        raise ValueError("expected distinct capital letters A-Z, e.g. 'ABCD'")
    return letters


def _cls(letters: str, lower: bool = False) -> str:
    chars = letters + (letters.lower() if lower else "")
    return "[" + re.escape(chars) + "]"


def extract_choice_letter(
    text: str,
    *,
    letters: str = "ABCD",
    style: ChoiceStyle = "dylan",
    refusal_text: str | None = None,
) -> str | None:
    """The option letter a reply picks by the ``style``'s rule (module docstring), or ``None``.

    For ``magicore`` a reply without any letter gives ``"N/A"``, as the reference does.
    """
    _check_letters(letters)
    if style == "dylan":
        for pattern in (r"\((" + _cls(letters, True) + r")\)", "(" + _cls(letters, True) + r")\)"):
            found = re.findall(pattern, text)
            if found:
                return str(found[-1]).upper()
        return None
    if style == "magicore":
        found = re.findall("(" + _cls(letters) + r")\)", text) or re.findall(_cls(letters), text)
        return str(found[-1]) if found else MAGICORE_NO_ANSWER
    # alu
    if refusal_text is not None and text.strip() == refusal_text.strip():
        return None
    letter = _cls(letters)
    for pattern in (
        r"\b(?i:answer)(?:\s+(?i:is))?\s*:?\s*\(?(" + letter + r")\)?(?![A-Za-z0-9])",
        r"\((" + letter + r")\)",
        r"^\s*(" + letter + r")(?=[.):\s]|$)",
    ):
        match = re.search(pattern, text)
        if match:
            return match.group(1)
    return None


def normalize_choice_letter(answer: str | None, letters: str = "ABCD") -> str | None:
    """A gold label or parsed answer as a bare capital letter: ``"(b)"``, ``" B) "``, ``"b"`` → ``"B"``.

    Anything that is not exactly one of ``letters`` after stripping spaces, brackets and a trailing ``.``/``:``
    is ``None``, so vote keys and gold labels compare by the letter alone (DyLAN §3.2: string equality of the
    parsed letter).
    """
    if answer is None:
        return None
    core = answer.strip().rstrip(".:").strip().strip("()[]").strip().upper()
    return core if len(core) == 1 and core in _check_letters(letters) else None


class ChoiceLetterParams(ParserParams):
    """Parameters of :data:`choice_letter`."""

    letters: str = "ABCD"
    """Allowed option letters, in order (distinct capitals)."""
    style: ChoiceStyle = "dylan"
    """Extraction rule: ``dylan`` (§1.4), ``magicore`` (§2.2) or ``alu`` (§9.2)."""
    refusal_text: str | None = None
    """``alu`` only: a reply equal to this text gives no answer."""
    options: str | None = None
    """The list input whose items the prompt letters ``A``, ``B``, ... (``dylan_mmlu``'s ``choices``): only the
    first as many ``letters`` as it has items are read (a letter past them is no option, as the reference reads
    ``(A|B|C|D)`` only), and a run given more items than there are letters is refused before it is stored. Unset,
    or that input empty: every letter is read. Named rather than guessed: a prompt may read other lists too."""
    inputs: Mapping[str, Any] | None = None
    """The run's inputs, passed per call by the runtime (where ``options`` is looked up)."""

    @field_validator("letters")
    @classmethod
    def _letters(cls, value: str) -> str:
        return _check_letters(value)


def offered_letters(letters: str, options: str | None, inputs: Mapping[str, Any] | None) -> str:
    """The ``letters`` a reply may pick from: the first ``len(inputs[options])`` when ``options`` names a list input
    with items (see :class:`ChoiceLetterParams`), else all of them."""
    if options is None or inputs is None:
        return letters
    if options not in inputs:
        raise KeyError(f"options names the input {options!r}, which the run's inputs ({', '.join(inputs)}) lack")
    items = inputs[options]
    if not isinstance(items, list | tuple):
        raise TypeError(f"options names the input {options!r}, a {type(items).__name__}; expected a list")
    return letters[: len(items)] if items else letters


@register_parser("choice_letter", params=ChoiceLetterParams, call_params=("inputs",))
def choice_letter(
    text: str,
    *,
    letters: str,
    style: ChoiceStyle,
    refusal_text: str | None,
    options: str | None,
    inputs: Mapping[str, Any] | None,
) -> Parsed:
    """Multiple-choice letter by DyLAN's (dylan.md §1.4), MAgICoRe's (§2.2) or ALU's (alu.md §9.2) rule."""
    letters = offered_letters(letters, options, inputs)
    letter = extract_choice_letter(text, letters=letters, style=style, refusal_text=refusal_text)
    if letter is None:
        if refusal_text is not None and style == "alu" and text.strip() == refusal_text.strip():
            return Parsed.failure("the reply is the refusal text")
        return Parsed.failure(f"no option letter ({', '.join(letters)}) found in the reply")
    if letter == MAGICORE_NO_ANSWER and style == "magicore":
        return Parsed.failure(
            f"no option letter ({', '.join(letters)}) found; 'N/A' is voted like an answer (MAgICoRe's rule)",
            value=letter,
            normalized=letter,
        )
    return Parsed.success(letter, letter)
