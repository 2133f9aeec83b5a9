"""Which process is running a run, and whether it still is.

A run is marked ``running`` when it starts (or is resumed) and gets its final status when it ends -- unless its
process dies first (SIGKILL, out of memory, a lost machine), which leaves it ``running`` for good. Resuming or
deleting such a run is safe; doing either to a run whose process is still at work is not (its calls would be made
twice, or its rows deleted under it). The store cannot tell the two apart from the status, so every run records
its owner -- host name, process id and the process's start time -- in ``meta.owner``, and :func:`owner_alive`
answers for a run owned on this host: the process id must exist *and* have started when the owner did (a process
id is reused once its process is gone). For a run owned on another host it cannot know, and says so (``None``).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

OWNER_KEY = "owner"
"""The key of ``RunRecord.meta`` that holds the owner."""


_current: tuple[int, dict[str, Any]] | None = None


def current_owner() -> dict[str, Any]:
    """This process as a run's owner: ``{"host", "pid", "started"}`` (``started``: its start time in clock ticks
    since boot, where the system says; ``None`` elsewhere). Looked up once per process (a forked child is another
    process, with its own)."""
    global _current
    pid = os.getpid()
    if _current is None or _current[0] != pid:
        _current = (pid, {"host": socket.gethostname(), "pid": pid, "started": _started(pid)})
    return dict(_current[1])


def owner_alive(owner: Any) -> bool | None:
    """Whether the process ``owner`` names is still running: ``True``/``False`` for an owner on this host,
    ``None`` when it cannot be known (another host, or no owner recorded: a run stored by an older version)."""
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return None
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)  # signal 0: checks the process exists, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        pass
    started = owner.get("started")
    return started is None or _started(pid) in (None, started)


def describe_owner(owner: Any) -> str:
    """``process 4242 on host-a``, for messages."""
    if not isinstance(owner, dict):
        return "an unknown process"
    return f"process {owner.get('pid')} on {owner.get('host')}"


def _started(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux ``/proc/<pid>/stat``, field 22), or ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or parentheses itself: fields after it
    # are counted from the last ')'
    try:
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None
