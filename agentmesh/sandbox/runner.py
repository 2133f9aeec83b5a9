"""Run untrusted Python in a subprocess with time and memory limits and no network (see the package docstring)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

from agentmesh.errors import AgentmeshError
from agentmesh.sandbox import _cgroup

__all__ = [
    "NETWORK_DISABLED",
    "OUTPUT_LIMIT",
    "Isolation",
    "SandboxError",
    "SandboxResult",
    "arun_python",
    "isolation",
    "run_python",
]

LAUNCHER = Path(__file__).with_name("_launcher.py")
#: Interpreter flags: isolated mode (no PYTHON* variables, no user site, script directory not on sys.path), no
#: ``site`` (no site-packages: the program gets the standard library only), no bytecode files, UTF-8 mode.
PYTHON_FLAGS = ("-I", "-S", "-B", "-X", "utf8")
#: What the disabled socket API raises inside the sandbox.
NETWORK_DISABLED = "network disabled in agentmesh sandbox"

#: Bytes of stdout and of stderr kept (the first and the last half when the program writes more).
OUTPUT_LIMIT = 64 * 1024
#: Processes and threads the program may have at once. Set only where RLIMIT_NPROC counts the sandbox's own processes
#: (its own user namespace, or its own uid in root mode); elsewhere it would count every process of the user.
NPROC_LIMIT = 64
#: Largest file the program may write (RLIMIT_FSIZE) and open descriptors (RLIMIT_NOFILE).
FSIZE_LIMIT = 64 * 1024 * 1024
NOFILE_LIMIT = 256
#: With namespaces, a fresh working directory is a tmpfs of this size (all files together): without it, a program
#: writing file after file (each under FSIZE_LIMIT) fills the host's disk at its speed until the timeout.
SCRATCH_LIMIT = 2 * FSIZE_LIMIT
#: Root mode runs each program as its own uid from here on (unused by real accounts), so that RLIMIT_NPROC counts
#: exactly that program's processes.
_UID_BASE = 2_000_000_000
_uid_sequence = count()
#: Seconds to wait for the output pipes to close and the launcher to be reaped after the program ends or is killed.
_GRACE_S = 5.0


class SandboxError(AgentmeshError):
    """The sandbox itself failed (could not be set up, or its launcher died): never the program's fault."""


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """What a sandboxed program did. ``passed`` means it exited with status 0 within its time limit.

    ``exit_code`` is the program's exit status, negative for a signal (as :mod:`subprocess` reports it), ``None``
    when the sandbox killed it on the wall-clock timeout. ``timed_out`` is true for that and for the CPU-time limit
    (``SIGXCPU``). ``memory_exceeded`` is true when the program died of an uncaught :class:`MemoryError` (its
    address-space limit refused an allocation): a heuristic on the traceback's last line. ``stdout``/``stderr``
    keep at most :data:`OUTPUT_LIMIT` bytes each (head and tail, with a marker in between when truncated).
    """

    passed: bool
    exit_code: int | None
    timed_out: bool
    memory_exceeded: bool
    stdout: str
    stderr: str
    duration_s: float
    stdout_truncated: bool = False
    stderr_truncated: bool = False


@dataclass(frozen=True, slots=True)
class Isolation:
    """Which isolation layers this process's sandboxes get (probed once: :func:`isolation`).

    Always: a new session whose process group is killed on timeout; resource limits (address space, CPU time,
    file size, open files, no core dumps); an allowlisted environment (no secrets); stdin from /dev/null; a fresh
    temporary directory; ``python -I -S``; the socket API disabled by a prelude. ``namespaces``: new network, PID
    and mount namespaces (no network interface but a down loopback; every process the program starts dies with
    it). ``user_namespace``: those come with a user namespace (how an unprivileged user gets them).
    ``unprivileged_uid``: the caller is root and the program runs as an unused uid with no groups instead (the
    kernel exempts root from ``RLIMIT_NPROC``). ``private_proc``: ``/proc`` shows only the sandbox's processes.
    ``readonly_fs``: every mount is read-only, ``nosuid`` and ``nodev`` except the working directory.
    ``memory_group``: a cgroup per run holds the program and everything it starts to ``memory_mb`` between them
    (:mod:`agentmesh.sandbox._cgroup`), where the rlimits bound each process alone.
    """

    namespaces: bool
    user_namespace: bool = False
    unprivileged_uid: bool = False
    private_proc: bool = False
    readonly_fs: bool = False
    memory_group: bool = False
    probe_errors: tuple[str, ...] = field(default=(), compare=False)

    @property
    def nproc_limit(self) -> bool:
        """Whether ``RLIMIT_NPROC`` is set and holds: it counts only the sandbox's processes (its own user
        namespace or uid), and the program is not root (whom the kernel exempts)."""
        return self.namespaces and (self.unprivileged_uid or (self.user_namespace and os.geteuid() != 0))

    def layers(self) -> list[str]:
        """The active layers, in words."""
        out = [
            "subprocess in a new session; its process group is SIGKILLed at the wall-clock timeout",
            "rlimits: address space = memory_mb, CPU time = ceil(timeout)+1 s, file size 64 MiB, 256 open files, "
            "no core dumps" + (f", {NPROC_LIMIT} processes" if self.nproc_limit else ""),
            "allowlisted environment (PATH, LANG, HOME, TMPDIR); stdin is /dev/null",
            "python -I -S -B: standard library only, no PYTHON* variables, no user site",
            "socket API disabled by a prelude (PermissionError)",
        ]
        if self.namespaces:
            out += [
                "network namespace: no interface but a down loopback",
                "PID namespace: the program is PID 2 under a supervisor; everything it starts dies with it",
                "private mount namespace",
                f"a fresh working directory is a tmpfs of {SCRATCH_LIMIT >> 20} MiB (nothing written reaches the disk)",
            ]
        if self.user_namespace:
            out.append("user namespace; the program runs in a nested one, without capabilities over the others")
        if self.unprivileged_uid:
            out.append(
                "program runs as an unused uid with no groups (not root): RLIMIT_NPROC holds, root's files, devices "
                "and processes are out of reach; directories it cannot search are replaced by a skeleton holding "
                "only the interpreter and its working directories"
            )
        if self.private_proc:
            out.append("private /proc: host processes (and their environments) are invisible")
        if self.readonly_fs:
            out.append("read-only, nosuid, nodev file system except the working directory")
        if self.memory_group:
            out.append(
                "memory cgroup: the program and every process it starts share memory_mb (plus the scratch tmpfs); "
                "at the limit the kernel kills the largest"
            )
        return out

    def _config(self) -> dict[str, object]:
        return {
            "namespaces": self.namespaces,
            "userns": self.user_namespace,
            "proc": self.private_proc,
            "readonly": self.readonly_fs,
        }

    def _name(self) -> str:
        on = [k for k in ("user_namespace", "unprivileged_uid", "private_proc", "readonly_fs") if getattr(self, k)]
        group = ", memory cgroup" if self.memory_group else ""
        return ("namespaces(" + ", ".join(on) + ")" if self.namespaces else "no namespaces") + group


NO_NAMESPACES = Isolation(namespaces=False)


def _candidates() -> list[Isolation]:
    """Strongest first. As root, dropping to an unprivileged uid is what makes RLIMIT_NPROC hold."""
    root = [
        Isolation(namespaces=True, unprivileged_uid=True, private_proc=True, readonly_fs=True),
        Isolation(namespaces=True, unprivileged_uid=True, private_proc=True),
    ]
    userns = [
        Isolation(namespaces=True, user_namespace=True, private_proc=True, readonly_fs=True),
        Isolation(namespaces=True, user_namespace=True, private_proc=True),
        Isolation(namespaces=True, user_namespace=True),
    ]
    return [*root, *userns] if os.geteuid() == 0 else userns


_PROBE = """
import json, os, socket
seen = {"interfaces": sorted(name for _, name in socket.if_nameindex()), "pid": os.getpid(), "uid": os.getuid()}
seen["processes"] = sum(1 for d in os.listdir("/proc") if d.isdigit())
def writable(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except OSError:
        return False
seen["outside_writable"] = writable(os.path.join(os.path.dirname(__file__), "probe"))
seen["cwd_writable"] = writable("probe")
seen["devnull_writable"] = writable(os.devnull)
try:
    socket.socket()
    seen["socket"] = "allowed"
except PermissionError:
    seen["socket"] = "denied"
print(json.dumps(seen))
"""


def _probe_holds(candidate: Isolation, seen: dict[str, object]) -> str | None:
    """Why the probe's observations contradict ``candidate`` (None when they match)."""
    checks = {
        "socket API disabled": seen.get("socket") == "denied",
        "working directory writable": seen.get("cwd_writable") is True,
        "/dev/null writable": seen.get("devnull_writable") is True,
        "no interface but loopback": seen.get("interfaces") == ["lo"],
        "PID 2 in a new PID namespace": seen.get("pid") == 2,
    }
    if candidate.unprivileged_uid:
        checks["unprivileged uid"] = isinstance(seen.get("uid"), int) and int(str(seen["uid"])) >= _UID_BASE
    if candidate.private_proc:
        checks["private /proc"] = isinstance(seen.get("processes"), int) and int(str(seen["processes"])) <= 3
    if candidate.readonly_fs:
        checks["read-only outside the working directory"] = seen.get("outside_writable") is False
    failed = [name for name, ok in checks.items() if not ok]
    return f"probe saw {seen}; failed: {', '.join(failed)}" if failed else None


_probe_lock = threading.Lock()
_probed: Isolation | None = None


def isolation() -> Isolation:
    """The strongest isolation this machine allows, probed once per process: a check program runs in each
    candidate configuration (strongest first) and must observe what that configuration promises; with none
    working, the layers that need no namespace (:data:`NO_NAMESPACES`)."""
    global _probed
    with _probe_lock:
        if _probed is None:
            _probed = _probe()
        return _probed


def _probe() -> Isolation:
    found = _probe_namespaces()
    if _cgroup.group_root() is not None:
        return replace(found, memory_group=True)
    return replace(found, probe_errors=(*found.probe_errors, f"memory cgroup: {_cgroup.why_not()}"))


def _probe_namespaces() -> Isolation:
    errors: list[str] = []
    if sys.platform.startswith("linux"):
        for candidate in _candidates():
            try:
                result = _in_new_loop(partial(_execute, _PROBE, 20.0, 256, None, candidate))
            except SandboxError as exc:
                errors.append(f"{candidate._name()}: {exc}")
                continue
            try:
                seen = json.loads(result.stdout) if result.passed else {}
            except ValueError:
                seen = {}
            why = _probe_holds(candidate, seen) if seen else f"probe failed: {result.stderr[-500:]}"
            if why is None:
                return replace(candidate, probe_errors=tuple(errors))
            errors.append(f"{candidate._name()}: {why}")
    return replace(NO_NAMESPACES, probe_errors=tuple(errors))


# --- concurrency ----------------------------------------------------------------------------------------------


class _Slots:
    """A process-wide limit on concurrent sandboxes that works across event loops and threads.

    (An :class:`asyncio.Semaphore` belongs to one loop; the blocking :func:`run_python` runs its own.) A release
    wakes every waiter, which then retries: no hand-over to lose when a waiter is cancelled.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._used = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._used < self.size:
                    self._used += 1
                    return
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, waiter))
            await waiter

    def release(self) -> None:
        with self._lock:
            self._used -= 1
            waiters, self._waiters = list(self._waiters), deque()
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: its waiter is gone too
                loop.call_soon_threadsafe(_wake, waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_slots = _Slots(max(1, os.cpu_count() or 1))


# --- running --------------------------------------------------------------------------------------------------


def run_python(code: str, *, timeout_s: float, memory_mb: int, cwd: Path | None = None) -> SandboxResult:
    """Run ``code`` (a whole Python program) in the sandbox and wait for it; see :func:`arun_python`.

    Usable with or without a running event loop (with one, it runs in a worker thread with its own loop).
    """
    return _in_new_loop(lambda: arun_python(code, timeout_s=timeout_s, memory_mb=memory_mb, cwd=cwd))


async def arun_python(code: str, *, timeout_s: float, memory_mb: int, cwd: Path | None = None) -> SandboxResult:
    """Run ``code`` as ``__main__`` of a fresh ``python -I -S`` in the sandbox without blocking the event loop.

    ``timeout_s`` is wall-clock time from the start of the subprocess (its startup included, the wait for a
    concurrency slot excluded); ``memory_mb`` bounds the program's address space. ``cwd`` is the program's working
    directory and the one writable place (default: a fresh temporary directory, removed afterwards). At most
    ``os.cpu_count()`` sandboxes run at once in a process; others wait for a slot.

    Raises :class:`SandboxError` when the sandbox cannot be set up; whatever the program does is in the result.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if memory_mb < 16:
        raise ValueError(f"memory_mb must be >= 16, got {memory_mb}")
    iso = _probed if _probed is not None else await asyncio.to_thread(isolation)
    await _slots.acquire()
    try:
        return await _execute(code, timeout_s, memory_mb, cwd, iso)
    finally:
        _slots.release()


async def _execute(code: str, timeout_s: float, memory_mb: int, cwd: Path | None, iso: Isolation) -> SandboxResult:
    if sys.platform == "win32":
        raise SandboxError("the sandbox needs a POSIX system (resource limits, process groups)")
    root = Path(tempfile.mkdtemp(prefix="agentmesh-sandbox-")).resolve()
    uid = _UID_BASE + ((os.getpid() & 0xFFFF) << 12 | next(_uid_sequence) & 0xFFF) if iso.unprivileged_uid else None
    restore: tuple[Path, int, int] | None = None
    try:
        program = root / "main.py"
        program.write_text(code, encoding="utf-8")
        (root / "stash").mkdir()
        work = Path(cwd).resolve() if cwd is not None else root / "work"
        work.mkdir(exist_ok=True)
        if uid is not None:  # the program's uid must read its program and write its working directory
            root.chmod(0o755)
            program.chmod(0o644)
            if cwd is not None:
                st = work.stat()
                restore = (work, st.st_uid, st.st_gid)
            os.chown(work, uid, uid)
        return await _spawn(program, work, timeout_s, memory_mb, iso, uid)
    finally:
        if restore is not None:
            with contextlib.suppress(OSError):
                os.chown(*restore)
        shutil.rmtree(root, ignore_errors=True)


def _reveal(program: Path, work: Path) -> list[str]:
    """Directories an unprivileged uid must reach: the interpreter (its venv and base installation), this
    launcher, the program and its working directory."""
    places = {sys.prefix, sys.base_prefix, os.path.dirname(sys.executable), os.path.dirname(LAUNCHER)}
    places |= {os.path.dirname(os.path.realpath(p)) for p in (sys.executable, LAUNCHER)}
    places |= {str(program.parent), str(work)}
    return sorted(os.path.realpath(p) for p in places)


async def _spawn(
    program: Path, work: Path, timeout_s: float, memory_mb: int, iso: Isolation, uid: int | None
) -> SandboxResult:
    scratch = iso.namespaces and work == program.parent / "work"
    root = _cgroup.group_root() if iso.memory_group else None
    limit = memory_mb * 1024 * 1024 + (SCRATCH_LIMIT if scratch else 0) + _cgroup.LAUNCHER_BYTES
    try:
        group = _cgroup.Group(root, limit) if root is not None else None
    except OSError as exc:  # the probe made one: the cgroup file system changed under this process
        raise SandboxError(f"cannot make the run's memory cgroup under {root.path if root else '?'}: {exc}") from exc
    try:
        return await _spawn_in(program, work, timeout_s, memory_mb, iso, uid, scratch, group)
    finally:
        if group is not None:
            await group.remove()


async def _spawn_in(
    program: Path,
    work: Path,
    timeout_s: float,
    memory_mb: int,
    iso: Isolation,
    uid: int | None,
    scratch: bool,
    group: _cgroup.Group | None,
) -> SandboxResult:
    status_r, status_w = os.pipe()
    config = {
        **iso._config(),
        "status_fd": status_w,
        "program": str(program),
        "cwd": str(work),
        "writable": [str(work)],
        "drop_uid": uid,
        "reveal": _reveal(program, work) if uid is not None else [],
        "stash": str(program.parent / "stash"),
        "cpu_s": math.ceil(timeout_s) + 1,
        "memory_bytes": memory_mb * 1024 * 1024,
        "fsize_bytes": FSIZE_LIMIT,
        "nofile": NOFILE_LIMIT,
        "nproc": NPROC_LIMIT if iso.nproc_limit else None,
        # a working directory given by the caller keeps what the program writes there: it stays on its disk
        "scratch_bytes": SCRATCH_LIMIT if scratch else None,
        "cgroup_procs": group.procs if group is not None else None,
    }
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work), "TMPDIR": str(work)}
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *PYTHON_FLAGS,
            str(LAUNCHER),
            json.dumps(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=str(work),
            start_new_session=True,
            pass_fds=(status_w,),
        )
    except BaseException:
        os.close(status_r)
        raise
    finally:
        os.close(status_w)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Capture(), _Capture()
    pumps = [asyncio.ensure_future(out.pump(proc.stdout)), asyncio.ensure_future(err.pump(proc.stderr))]
    killed = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            killed = True
            _kill_group(proc.pid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), _GRACE_S)
        duration = loop.time() - started
        if not iso.namespaces:
            _kill_group(proc.pid)  # stragglers the program left in its process group (a PID namespace kills them)
        _, pending = await asyncio.wait(pumps, timeout=_GRACE_S)
        for task in pending:
            task.cancel()
        status = _read_status(status_r)
    finally:
        if proc.returncode is None:
            _kill_group(proc.pid)
        for task in pumps:
            task.cancel()
        os.close(status_r)

    if "error" in status:
        raise SandboxError(f"sandbox setup failed ({iso._name()}): {status['error']}")
    stderr = err.text()
    if killed:
        exit_code: int | None = None
    elif "exit" in status and status.get("started"):
        exit_code = os.waitstatus_to_exitcode(int(str(status["exit"])))
    elif "exit" in status:
        raise SandboxError(
            f"the sandboxed interpreter did not start ({iso._name()}): wait status {status['exit']}; "
            f"its stderr ends: {stderr[-1000:]}"
        )
    else:
        raise SandboxError(
            f"sandbox launcher exited with status {proc.returncode} without reporting the program's; "
            f"its stderr ends: {stderr[-1000:]}"
        )
    timed_out = killed or exit_code == -signal.SIGXCPU
    last_line = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
    return SandboxResult(
        passed=exit_code == 0 and not timed_out,
        exit_code=exit_code,
        timed_out=timed_out,
        memory_exceeded=last_line.startswith("MemoryError") or (group is not None and group.oom_killed()),
        stdout=out.text(),
        stderr=stderr,
        duration_s=duration,
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
    )


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _read_status(fd: int) -> dict[str, object]:
    """The launcher's last report (its writers have exited: everything they wrote is in the pipe)."""
    os.set_blocking(fd, False)
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            data += chunk
    status: dict[str, object] = {}
    for line in data.decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict):
                status.update(message)
    return status


class _Capture:
    """Keeps the first and the last ``OUTPUT_LIMIT / 2`` bytes of a stream, however much is written."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    async def pump(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.total += len(chunk)
            room = self.half - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def text(self) -> str:
        if not self.truncated:
            return (self.head + self.tail).decode(errors="replace")
        dropped = self.total - len(self.head) - len(self.tail)
        marker = f"\n... [{dropped} bytes truncated by the agentmesh sandbox] ...\n"
        return self.head.decode(errors="replace") + marker + self.tail.decode(errors="replace")


def _in_new_loop(make: Callable[[], Coroutine[Any, Any, SandboxResult]]) -> SandboxResult:
    """Run ``make()`` to completion on a fresh event loop, in a worker thread when this thread already runs one."""

    def go() -> SandboxResult:
        return asyncio.run(make())

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return go()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentmesh-sandbox") as pool:
        return pool.submit(go).result()
