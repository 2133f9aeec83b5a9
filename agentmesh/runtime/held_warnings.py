"""Warnings a replay holds back and says once: a replay serves the run's replies, so every warning those replies
gave the run (MAgICoRe's 16 unreadable judge replies, one line each) came again on stderr, as if something had gone
wrong in the replay. Code that warns about a reply calls :func:`warn`; inside :func:`held` (a replay), the warning
is counted rather than logged, and the replay says each one once, with how many times it came."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# per task (a replay's nodes run in tasks and threads that copy it), so that a run going on beside a replay in the
# same process still logs its own warnings
_HELD: ContextVar[Counter[str] | None] = ContextVar("agentmesh_held_warnings", default=None)


def warn(log: logging.Logger, message: str, *args: Any) -> None:
    """``log.warning(message, *args)``; inside :func:`held`, counted there instead."""
    held_here = _HELD.get()
    if held_here is None:
        log.warning(message, *args)
    else:
        held_here[message % args if args else message] += 1


@contextmanager
def held() -> Iterator[Counter[str]]:
    """Within it, :func:`warn` counts each warning (by its text) in the counter it gives, and logs nothing."""
    said: Counter[str] = Counter()
    token = _HELD.set(said)
    try:
        yield said
    finally:
        _HELD.reset(token)
