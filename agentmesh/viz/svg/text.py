"""Text in SVG: XML escaping, and text widths estimated without fonts (so a box always fits its text).

Widths come from per-character widths of DejaVu Sans / Verdana, generous on purpose: no external tool or font is
needed to *write* a drawing, and text never overflows its box in whichever of those fonts a viewer has.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

FONT_FAMILY = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
MONO_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"
LABEL_SIZE = 11.5
LABEL_PAD_X = 4.0
LABEL_PAD_Y = 2.0

_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#39;"))
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def esc(text: object) -> str:
    """``text`` as XML character data or attribute value: ``& < > " '`` escaped, invalid characters replaced."""
    s = _INVALID_XML.sub("\ufffd", str(text))
    for raw, entity in _ENTITIES:
        s = s.replace(raw, entity)
    return s


# --- text ------------------------------------------------------------------------------------------------------

_CHAR_EM: dict[str, float] = {
    **dict.fromkeys("ijl|!.,:;'`", 0.30),
    **dict.fromkeys('frt()[]{}/\\"-', 0.43),
    " ": 0.33,
    **dict.fromkeys("mwMW@%", 0.98),
}


def text_width(text: str, size: float, *, bold: bool = False, mono: bool = False) -> float:
    """Estimated rendered width of ``text`` at ``size`` px (slightly generous for DejaVu Sans / Verdana)."""
    if mono:
        return len(text) * 0.61 * size
    em = 0.0
    for ch in text:
        if ch in _CHAR_EM:
            em += _CHAR_EM[ch]
        elif ch.isupper():
            em += 0.73
        elif ch.isdigit():
            em += 0.65
        elif ord(ch) < 128:
            em += 0.62
        elif unicodedata.east_asian_width(ch) in ("W", "F"):
            em += 1.0
        elif unicodedata.combining(ch):
            continue
        else:
            em += 0.8
    return em * size * (1.1 if bold else 1.0)


def shorten(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (whitespace collapsed, an ellipsis when cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(1, limit - 1)].rstrip() + "…"


def wrap(items: Sequence[str], limit: int, sep: str = ", ") -> list[str]:
    """Join ``items`` with ``sep`` into lines of about ``limit`` characters (an item is never split)."""
    lines: list[str] = []
    current = ""
    for item in items:
        candidate = f"{current}{sep}{item}" if current else item
        if current and len(candidate) > limit:
            lines.append(current + sep.rstrip())
            current = item
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines
