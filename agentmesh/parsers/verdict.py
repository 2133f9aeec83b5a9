"""Yes/no verdicts: a judge asked a yes-or-no question (ALU's optional judge leak rate, alu.md §9.2).

``yes_no_verdict`` reads the reply's first word when it is "yes" or "no" (case, surrounding punctuation and
Markdown emphasis ignored: ``**Yes**.``); otherwise the reply's verdict is the one of the two words that occurs in
it as a whole word, when only one does (``Verdict: no``, ``It does not reveal it, so no.``). A reply with neither
word, or with both and neither first, is ``ok=false`` with ``value`` ``None``: an unparsed verdict, never a "no".
The value is ``true`` for yes and ``false`` for no; the key is ``"yes"`` or ``"no"``.
"""

from __future__ import annotations

import re

from agentmesh.parsers.registry import Parsed, ParserParams, register_parser

__all__ = ["extract_yes_no", "yes_no_verdict"]

_WORD_RE = re.compile(r"[A-Za-z]+")
_VERDICT_RE = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def extract_yes_no(text: str) -> bool | None:
    """``True`` for a yes, ``False`` for a no, ``None`` when the reply gives neither (see the module docstring)."""
    first = _WORD_RE.search(text)
    if first is not None and first.group(0).lower() in ("yes", "no"):
        return first.group(0).lower() == "yes"
    found = {m.lower() for m in _VERDICT_RE.findall(text)}
    if len(found) == 1:
        return found == {"yes"}
    return None


class YesNoVerdictParams(ParserParams):
    """:data:`yes_no_verdict` has no parameters."""


@register_parser("yes_no_verdict", params=YesNoVerdictParams)
def yes_no_verdict(text: str) -> Parsed:
    """A yes/no verdict: the first word if it is yes or no, else the only one of the two in the reply."""
    verdict = extract_yes_no(text)
    if verdict is None:
        return Parsed.failure(f"no yes/no verdict in the reply: {text.strip()[:80]!r}")
    return Parsed.success(verdict, "yes" if verdict else "no")
