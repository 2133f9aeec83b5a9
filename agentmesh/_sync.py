"""The blocking forms of agentmesh's coroutines (``agentmesh.run``, ``replay``, ``optimize``...), for scripts.

Why a helper rather than ``asyncio.run`` at each: called where an event loop is already running (a Jupyter cell,
an async web handler) ``asyncio.run`` fails with a message that names neither agentmesh nor the fix, and leaves a
"coroutine was never awaited" warning behind. Running the work on a hidden thread instead would let it go on
spending model calls after the caller was interrupted. So the error says which awaitable form to use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from agentmesh.errors import ConfigError

T = TypeVar("T")


def blocking(work: Coroutine[Any, Any, T], *, name: str, async_name: str) -> T:
    """Run ``work`` on a new event loop until done; a clear error if this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    work.close()
    raise ConfigError(
        f"{name}() blocks until it is done, so it cannot run inside a running event loop (a notebook cell, async "
        f"code); there, use `await {async_name}(...)` with the same arguments"
    )
