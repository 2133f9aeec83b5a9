"""Text that is not Unicode: lone surrogates, one rule for every layer that meets them.

Python lets a ``str`` hold a lone surrogate (U+D800-U+DFFF): it is what a byte that is not UTF-8 becomes in a
command-line argument, and what a server's JSON ``"\\ud83d"`` (an emoji cut in half at ``max_tokens``) decodes to.
No encoder accepts one, so no database can store it and no terminal print it. The runtime refuses one in an input,
the model client mends a reply's, and the store mends any left; all three find them here.
"""

from __future__ import annotations

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

REPLACEMENT = "\ufffd"


def lone_surrogate(text: str) -> re.Match[str] | None:
    """The first lone surrogate in ``text``, else ``None``. ``isascii`` is O(1) in CPython: ASCII text costs no
    scan (most prompts, replies and keys)."""
    return None if text.isascii() else _LONE_SURROGATE.search(text)


def mend_lone_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (``text`` itself when it has none)."""
    return text if lone_surrogate(text) is None else _LONE_SURROGATE.sub(REPLACEMENT, text)


def counted(n: float, noun: str, plural: str | None = None, *, spec: str = "") -> str:
    """``1 run``, ``3 runs``, ``0 runs``: ``n`` (formatted with ``spec``, e.g. ``","``) and ``noun``, in the plural
    (``plural``, else ``noun`` + "s") unless ``n`` is 1. Messages said "1 runs were cut short", "budget: 1 model
    calls"."""
    return f"{n:{spec}} {noun if n == 1 else plural or noun + 's'}"
