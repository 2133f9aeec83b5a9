"""Math answers: extraction from a reply (``\\boxed{}``, "The answer is", last number) and normalisation.

Two papers parse math replies, differently, and both behaviours are kept because each is what its published
numbers were measured with:

* **DyLAN** (dylan.md §1.4 "MATH", released ``code/MMLU/utils.py::extract_math_answer``): the text after the
  last "The answer is " (capitalised form first, then lower case), else the last ``boxed`` (brace-matched, or up
  to the next ``$`` when no brace follows, so ``\\boxed 5`` gives ``5``), else the last number; a trailing ``.``
  then ``/`` is dropped and the result normalised (§3.2); a ``\\boxed{}`` left inside the result is unwrapped.
* **MAgICoRe** (magicore.md §2.2, ``math_utils.py::parse_math_boxed``): only the content of the last
  ``\\boxed{...}`` (brace-balanced); no box gives no answer. Votes group answers by *exact string* (§2.2), so
  MAgICoRe graphs use ``normalize: false``.

The normaliser is the Hendrycks MATH ``_strip_string`` exactly as DyLAN ships it (dylan.md §3.2); equality of
normalised strings is how DyLAN decides that two agents agree.
"""

from __future__ import annotations

import re
from typing import Literal

from agentmesh.parsers.registry import Parsed, ParserParams, register_parser

__all__ = [
    "MathStyle",
    "boxed_math",
    "extract_boxed",
    "extract_math_answer",
    "is_math_equiv",
    "last_boxed_only_string",
    "normalize_math_answer",
    "strip_math_string",
]

MathStyle = Literal["dylan", "magicore"]


# --- the Hendrycks MATH normaliser (dylan.md §3.2), ported statement by statement ------------------------------


def _fix_fracs(string: str) -> str:
    substrs = string.split("\\frac")
    new_str = substrs[0]
    if len(substrs) > 1:
        for substr in substrs[1:]:
            new_str += "\\frac"
            if len(substr) == 0:
                continue
            if substr[0] == "{":
                new_str += substr
            else:
                if len(substr) < 2:
                    return string
                a, b = substr[0], substr[1]
                if b != "{":
                    new_str += "{" + a + "}{" + b + "}" + substr[2:]
                else:
                    new_str += "{" + a + "}" + b + substr[2:]
    return new_str


def _fix_a_slash_b(string: str) -> str:
    parts = string.split("/")
    if len(parts) != 2:
        return string
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return string
    if string != f"{a}/{b}":
        return string
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def _remove_right_units(string: str) -> str:
    # "\text{ " (with the space) only ever introduces units in the MATH data
    if "\\text{ " in string:
        return string.split("\\text{ ")[0]
    return string


def _fix_sqrt(string: str) -> str:
    if "\\sqrt" not in string:
        return string
    splits = string.split("\\sqrt")
    new_string = splits[0]
    for split in splits[1:]:
        if split[0] != "{":  # IndexError on a trailing "\sqrt", exactly like the reference
            new_string += "\\sqrt{" + split[0] + "}" + split[1:]
        else:
            new_string += "\\sqrt" + split
    return new_string


def strip_math_string(string: str) -> str:
    """The MATH ``_strip_string`` normaliser, unchanged; it may raise on malformed input like the original.

    In order: drop newlines and ``\\!``; ``\\\\`` → ``\\``; ``tfrac``/``dfrac`` → ``frac``; drop ``\\left``,
    ``\\right``, degree marks ``^{\\circ}``/``^\\circ``, ``\\$``; cut units after ``\\text{ ``; drop ``\\%``;
    ``" ."``/``"{."`` get a 0 and a leading ``.`` too; a left-hand side of at most 2 characters before a single
    ``=`` is dropped; ``\\sqrt3`` → ``\\sqrt{3}``; spaces removed; ``\\frac12`` → ``\\frac{1}{2}``; ``0.5`` →
    ``\\frac{1}{2}``; an integer ``a/b`` → ``\\frac{a}{b}``. Plain ``$`` and ``%`` are *not* removed (the
    original does not either).
    """
    string = string.replace("\n", "")
    string = string.replace("\\!", "")
    string = string.replace("\\\\", "\\")
    string = string.replace("tfrac", "frac")
    string = string.replace("dfrac", "frac")
    string = string.replace("\\left", "")
    string = string.replace("\\right", "")
    string = string.replace("^{\\circ}", "")
    string = string.replace("^\\circ", "")
    string = string.replace("\\$", "")
    string = _remove_right_units(string)
    string = string.replace("\\%", "")
    string = string.replace(" .", " 0.")
    string = string.replace("{.", "{0.")
    if len(string) == 0:
        return string
    if string[0] == ".":
        string = "0" + string
    if len(string.split("=")) == 2 and len(string.split("=")[0]) <= 2:
        string = string.split("=")[1]
    string = _fix_sqrt(string)
    string = string.replace(" ", "")
    string = _fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    string = _fix_a_slash_b(string)
    return string


def normalize_math_answer(answer: str | None) -> str | None:
    """The key two math answers are compared by: :func:`strip_math_string`, or the raw string if it raises.

    ``None`` stays ``None`` (no answer). Equal keys ⇔ DyLAN's ``is_equiv`` (dylan.md §3.2) for all answers
    that normalise without error; voting code should group by this key.
    """
    if answer is None:
        return None
    try:
        return strip_math_string(answer)
    except Exception:  # the reference falls back to raw equality when normalising fails
        return answer


def is_math_equiv(a: str | None, b: str | None) -> bool:
    """DyLAN's ``is_equiv`` (dylan.md §3.2): equal after normalising both; raw equality if that raises.

    Two ``None`` are equal here because the reference says so; consensus code should not count "no answer"
    as agreement (dylan.md §8 D5) and can check for ``None`` first.
    """
    if a is None and b is None:
        return True
    if a is None or b is None:
        return False
    try:
        return strip_math_string(a) == strip_math_string(b)
    except Exception:
        return a == b


# --- extraction ---------------------------------------------------------------------------------------------------


def last_boxed_only_string(text: str) -> str | None:
    """The last ``\\boxed...`` (or, when there is none, ``\\fbox...``) up to its balancing ``}``, or ``None``.

    Brace counting starts at the command, so nested braces (``\\boxed{\\frac{1}{2}}``) are kept whole.
    """
    idx = text.rfind("\\boxed")
    if idx < 0:
        idx = text.rfind("\\fbox")
        if idx < 0:
            return None
    depth = 0
    for i in range(idx, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[idx : i + 1]
    return None


def extract_boxed(text: str) -> str | None:
    """MAgICoRe's answer (magicore.md §2.2): the content of the last ``\\boxed{...}``, else ``None``.

    As in ``parse_math_boxed``, only the exact ``\\boxed{`` form counts: ``\\boxed 5`` and ``\\fbox{5}`` give
    ``None``. An empty reply gives ``None`` too (the reference returns the truthy ``"N/A"`` for it, which the
    spec describes as "no box → None").
    """
    boxed = last_boxed_only_string(text)
    if boxed is None:
        return None
    left = "\\boxed{"
    if not boxed.startswith(left) or not boxed.endswith("}"):
        return None
    return boxed[len(left) : -1]


def _dylan_boxed_tail(text: str) -> str:
    """DyLAN's boxed extraction: after the last ``boxed``, a brace-matched group or the text up to ``$``."""
    ans = text.split("boxed")[-1]
    if not ans:  # the reference indexes ans[0] and crashes on a reply ending in "boxed"
        return ""
    if ans[0] != "{":
        return ans.split("$")[0].strip()
    depth = 1
    out: list[str] = []
    for c in ans[1:]:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                break
        out.append(c)
    return "".join(out)


_LAST_NUMBER_RE = re.compile(r"-?\d*\.?\d+")


def _extract_dylan(text: str) -> str:
    if "The answer is " in text:
        pred = text.split("The answer is ")[-1].strip()
    elif "the answer is " in text:
        pred = text.split("the answer is ")[-1].strip()
    elif "boxed" in text:
        pred = normalize_math_answer(_dylan_boxed_tail(text)) or ""
    else:
        numbers = _LAST_NUMBER_RE.findall(text)
        pred = numbers[-1] if numbers else ""
    if pred.endswith("."):
        pred = pred[:-1]
    if pred.endswith("/"):
        pred = pred[:-1]
    pred = normalize_math_answer(pred) or ""
    if "boxed" in pred:
        pred = normalize_math_answer(_dylan_boxed_tail(pred)) or ""
    return pred


def extract_math_answer(text: str, style: MathStyle = "dylan") -> str | None:
    """The answer a math reply gives, by the chosen paper's rule (see the module docstring); ``None`` if none.

    ``dylan`` returns the answer already normalised (the reference normalises while extracting); ``magicore``
    returns the boxed content verbatim. An empty result counts as no answer (both papers drop it from votes).
    """
    answer = _extract_dylan(text) if style == "dylan" else extract_boxed(text)
    return answer if answer else None


class BoxedMathParams(ParserParams):
    """Parameters of :data:`boxed_math`."""

    style: MathStyle = "dylan"
    """``dylan``: "The answer is" → last ``boxed`` → last number (dylan.md §1.4); ``magicore``: last
    ``\\boxed{}`` only (magicore.md §2.2)."""
    normalize: bool = True
    """Vote key = normalised answer (DyLAN §3.2); ``false`` = exact string (MAgICoRe §2.2)."""


@register_parser("boxed_math", params=BoxedMathParams)
def boxed_math(text: str, *, style: MathStyle, normalize: bool) -> Parsed:
    """Math answer from ``\\boxed{}`` and the paper's fallbacks, with the MATH normaliser as the vote key.

    DyLAN (dylan.md §1.4, §3.2) and MAgICoRe (magicore.md §2.2) rules; see :func:`extract_math_answer`.
    """
    answer = extract_math_answer(text, style)
    if answer is None:
        if style != "dylan":
            where = "no \\boxed{...} with an answer in the reply"
        elif any(m in text for m in ("The answer is", "the answer is", "boxed")):
            # the reply says where its answer is, but nothing readable is there
            where = "the reply's answer is empty ('The answer is' or \\boxed with nothing readable in it)"
        else:
            where = "no 'The answer is', \\boxed or number in the reply"
        return Parsed.failure(where)
    return Parsed.success(answer, normalize_math_answer(answer) if normalize else answer)
