"""A memory limit on a sandboxed program *and every process it starts*, through a cgroup, where this machine lets
agentmesh create one (the ``memory_group`` layer of :class:`~agentmesh.sandbox.runner.Isolation`).

Why: the rlimits are per process. ``RLIMIT_AS`` bounds each process's address space and ``RLIMIT_NPROC`` how many
processes there are, so a program that forks could hold ``NPROC_LIMIT`` x ``memory_mb`` between them. A cgroup's
limit holds for the group whatever it forks: at the limit the kernel's OOM killer ends the group's largest process
(SIGKILL), and the run's result says that its memory was exceeded. A group also finds every process of the run,
so none outlives it even without a PID namespace.

Where (probed once per process, :func:`group_root`):

* **cgroup v1**, memory hierarchy (``/sys/fs/cgroup/memory``): a child of this process's own memory cgroup (v1 lets
  a cgroup hold processes and children at once). Needs write access to that cgroup: root, or a delegated one.
* **cgroup v2** (the unified hierarchy): ``agentmesh-sandbox/`` at the root of the hierarchy, with the memory
  controller enabled for its children. That takes root. An unprivileged user's delegated subtree (systemd's
  ``user@.service``) would first need this process to move itself into a leaf cgroup, which a library must not do
  to the program that imports it: not attempted.

Anywhere else (no cgroup file system, mounted read-only as in most containers, no memory controller) the sandbox
keeps its per-process limits, and ``Isolation.layers()`` does not list this one.

Each run gets its own group (``agentmesh-run-<pid>-<n>``) sized ``memory_mb``, plus the scratch tmpfs where there
is one (its pages are charged to the group), plus :data:`LAUNCHER_BYTES` for the sandbox's two supervising
interpreters; swap counts too where the kernel accounts it. The launcher's first process joins the group before
it forks anything; the group is removed once its processes are gone.

Standard library only, like the rest of :mod:`agentmesh.sandbox`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import threading
from dataclasses import dataclass
from itertools import count
from pathlib import Path

#: What the launcher's own processes (A and B, two small interpreters) are allowed on top of the program's limit.
LAUNCHER_BYTES = 64 * 1024 * 1024

_CGROUP_FS = Path("/sys/fs/cgroup")
_V2_PARENT = "agentmesh-sandbox"

_sequence = count()
_lock = threading.Lock()
_probed = False
_root: GroupRoot | None = None
_why_not = ""


@dataclass(frozen=True, slots=True)
class GroupRoot:
    """Where this process creates its sandboxes' groups: ``path``, a directory of cgroup ``version`` 1 or 2."""

    path: Path
    version: int


def group_root() -> GroupRoot | None:
    """The directory this process's sandbox groups go in, or ``None`` when none can be made here (probed once: a
    group is created, limited and removed)."""
    global _probed, _root, _why_not
    with _lock:
        if not _probed:
            _probed = True
            try:
                _root = _find_root()
            except OSError as exc:
                _root, _why_not = None, f"{type(exc).__name__}: {exc}"
        return _root


def why_not() -> str:
    """Why :func:`group_root` found nothing (empty when it found a place, or before it was asked)."""
    return _why_not


def _find_root() -> GroupRoot | None:
    global _why_not
    if not _CGROUP_FS.is_dir():
        _why_not = f"no cgroup file system at {_CGROUP_FS}"
        return None
    candidate = _v2_root() if (_CGROUP_FS / "cgroup.controllers").exists() else _v1_root()
    if candidate is None:
        return None
    # the probe: a group that takes a limit and can be removed again
    probe = Group(candidate, 256 * 1024 * 1024, name=f"agentmesh-probe-{os.getpid()}")
    probe.remove_now()
    _remove_stale(candidate)
    return candidate


def _remove_stale(root: GroupRoot) -> None:
    """Remove the empty groups of processes that are gone (killed before they could remove their own)."""
    for path in root.path.glob("agentmesh-*-*"):
        pid = path.name.split("-")[2]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        with contextlib.suppress(OSError):  # not empty, or not ours to remove: left alone
            path.rmdir()


def _v1_root() -> GroupRoot | None:
    global _why_not
    own = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            own = path
    base = _CGROUP_FS / "memory"
    if own is None or not (base / "cgroup.procs").exists():
        _why_not = "no cgroup v1 memory controller mounted"
        return None
    root = base / own.lstrip("/")
    if not os.access(root, os.W_OK):
        _why_not = f"this process's memory cgroup ({root}) is not writable"
        return None
    return GroupRoot(root, 1)


def _v2_root() -> GroupRoot | None:
    global _why_not
    if os.geteuid() != 0:
        _why_not = "cgroup v2 sandbox groups need root (a delegated user subtree is not used)"
        return None
    if "memory" not in (_CGROUP_FS / "cgroup.subtree_control").read_text().split():
        _why_not = "the memory controller is not enabled at the root of the cgroup v2 hierarchy"
        return None
    parent = _CGROUP_FS / _V2_PARENT
    parent.mkdir(exist_ok=True)
    (parent / "cgroup.subtree_control").write_text("+memory")
    return GroupRoot(parent, 2)


class Group:
    """One run's cgroup: created with its limit; :attr:`procs` is the file a process writes its PID to, to join."""

    def __init__(self, root: GroupRoot, limit_bytes: int, *, name: str | None = None) -> None:
        self.root = root
        self.path = root.path / (name or f"agentmesh-run-{os.getpid()}-{next(_sequence)}")
        self.path.mkdir()
        try:
            if root.version == 1:
                (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                swap = self.path / "memory.memsw.limit_in_bytes"  # memory + swap; absent without swap accounting
                if swap.exists():
                    swap.write_text(str(limit_bytes))
            else:
                (self.path / "memory.max").write_text(str(limit_bytes))
                swap = self.path / "memory.swap.max"
                if swap.exists():
                    swap.write_text("0")
        except BaseException:
            self.remove_now()
            raise

    @property
    def procs(self) -> str:
        return str(self.path / "cgroup.procs")

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the group for its memory limit (``oom_kill`` in v1's
        ``memory.oom_control``, v2's ``memory.events``; kernels before 4.13 do not count it: False)."""
        name = "memory.oom_control" if self.root.version == 1 else "memory.events"
        try:
            text = (self.path / name).read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return value.strip().isdigit() and int(value) > 0
        return False

    def _pids(self) -> list[int]:
        try:
            return [int(p) for p in Path(self.procs).read_text().split()]
        except (OSError, ValueError):
            return []

    def remove_now(self) -> bool:
        """Remove the group if it is empty (True once it is gone)."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                return False
            raise
        return True

    async def remove(self, wait_s: float = 2.0) -> None:
        """Remove the group once its processes are gone, killing any left (a process that left the program's
        session, where there is no PID namespace to end it). Gives up after ``wait_s``, leaving an empty-to-be
        group behind rather than blocking the run."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while not self.remove_now():
            for pid in self._pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.01)
