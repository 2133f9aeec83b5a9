"""The sandbox's launcher script: standard library only, run by a fresh ``python -I -S -B -X utf8``.

Never imported by agentmesh at run time (``agentmesh.sandbox.runner`` runs this file by path); it must not import
anything outside the standard library, because the interpreter that runs it has no site-packages (``-S``).

Three processes, so that the program is never PID 1 and everything it starts dies with the run:

* **A** (``python _launcher.py CONFIG``, spawned by the runner as the leader of a new session): joins the run's
  memory cgroup when there is one (``cgroup_procs``: the runner's ``_cgroup``), before anything is forked; with
  ``namespaces``, ``unshare(2)``s new network, PID and mount namespaces, and with ``userns`` a new user namespace
  too (the caller's uid/gid mapped to root inside: how an unprivileged user gets the other namespaces). Forks B and
  waits for it.
* **B** (PID 1 of the new PID namespace: when it exits the kernel kills every process left in the namespace;
  ``PR_SET_PDEATHSIG`` kills B when A dies): makes every mount private; with ``reveal`` (root mode), mounts a
  tmpfs skeleton over each directory the unprivileged uid cannot search (``/root`` when the interpreter lives
  there) holding only the directories the program needs, bind-mounted; with ``scratch_bytes``, mounts a tmpfs of
  that size over the (fresh) working directory; with ``readonly``, bind-mounts the
  writable directory and remounts every other mount read-only, ``nosuid`` and ``nodev`` (the :data:`DEVICES`
  excepted from ``nodev``); with ``proc``, mounts a ``/proc`` of the new PID namespace (no host process, nor its
  environment, visible); with ``userns``, enters a nested user namespace so that the program holds no capability
  over those mounts or the network namespace. Forks C, waits for it, reports C's wait status.
* **C** (``python _launcher.py --run CONFIG``, exec'd afresh; as ``drop_uid`` in root mode, with no supplementary
  group): reports that it started, closes every inherited descriptor, sets the resource limits, replaces the socket
  API with functions raising :class:`PermissionError`, and runs the program as ``__main__`` with normal interpreter
  semantics (exit status, ``atexit``, tracebacks).

Root mode exists because the kernel exempts uid 0 from ``RLIMIT_NPROC`` (even inside a user namespace): a program
running as root could fork without bound. Dropping it to an unused uid makes the limit hold and puts root's files,
devices and processes out of its reach as well.

The status pipe carries JSON lines to the runner: ``{"started": true}`` from C before the program runs,
``{"exit": <wait status>}`` from B, or ``{"error": "<message>"}`` when the sandbox could not be set up.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import json
import os
import resource
import signal
import stat
import sys
import types
from collections.abc import Callable
from typing import Any, NoReturn

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
MNT_DETACH = 2

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

#: Device nodes the program may still open (every other one is on a ``nodev`` mount).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
#: The interpreter flags of C (the runner starts A with the same: ``agentmesh.sandbox.runner.PYTHON_FLAGS``).
PYTHON_FLAGS = ("-I", "-S", "-B", "-X", "utf8")
NETWORK_DISABLED = "network disabled in agentmesh sandbox"


class SetupError(Exception):
    """The sandbox could not be set up as configured; ``errno`` is the failed call's, when there was one."""

    def __init__(self, message: str, err: int = 0) -> None:
        super().__init__(message)
        self.errno = err


# --- system calls -----------------------------------------------------------------------------------------------


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.unshare.argtypes = [ctypes.c_int]
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)} (errno {err})", err)


def _unshare(libc: ctypes.CDLL, flags: int, what: str) -> None:
    _check(libc.unshare(flags), f"unshare({what})")


def _mount(
    libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    def b(text: str | None) -> bytes | None:
        return text.encode() if text is not None else None

    _check(libc.mount(b(source), b(target), b(fstype), flags, b(data)), f"mount {target!r} (flags {flags:#x})")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _map_ids(uid: int, gid: int) -> None:
    """Map root inside the current (just created) user namespace to ``uid``/``gid`` of the parent namespace."""
    with contextlib.suppress(FileNotFoundError):  # kernels before 3.19
        _write("/proc/self/setgroups", "deny")
    try:
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    except OSError as exc:
        raise SetupError(f"writing the user namespace's id maps: {exc}") from None


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field) >= i + 4 and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounts() -> list[tuple[str, set[str]]]:
    """``(mount point, per-mount options)`` of the current mount namespace, in mount order."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            out.append((_unescape(fields[4]), set(fields[5].split(","))))
    return out


def _report(fd: int, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (json.dumps(message) + "\n").encode())


# --- process A ----------------------------------------------------------------------------------------------------


def launch(config: dict[str, Any]) -> NoReturn:
    status_fd = int(config["status_fd"])
    os.set_inheritable(status_fd, False)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        if config.get("cgroup_procs"):  # first: every process of the run is forked after this, inside the group
            _write(str(config["cgroup_procs"]), str(os.getpid()))
        if config["namespaces"]:
            libc = _libc()
            if config["userns"]:
                uid, gid = os.getuid(), os.getgid()
                _unshare(libc, CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS, "user, net, pid, mount")
                _map_ids(uid, gid)
            else:
                _unshare(libc, CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS, "net, pid, mount")
        alive_r, alive_w = os.pipe()  # B reads EOF here once A is gone
        pid = os.fork()
    except (SetupError, OSError) as exc:
        _report(status_fd, {"error": str(exc)})
        os._exit(125)
    if pid == 0:
        try:
            os.close(alive_w)
            supervise(config, status_fd, alive_r)
        except BaseException as exc:
            _report(status_fd, {"error": f"{type(exc).__name__}: {exc}"})
        os._exit(125)
    os.close(status_fd)
    os.close(alive_r)
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


# --- process B ----------------------------------------------------------------------------------------------------


def supervise(config: dict[str, Any], status_fd: int, alive_fd: int) -> NoReturn:
    os.umask(0o022)
    if config["namespaces"]:
        libc = _libc()
        _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
        os.set_blocking(alive_fd, False)
        with contextlib.suppress(BlockingIOError):
            if os.read(alive_fd, 1) == b"":
                os._exit(125)  # A died before the death signal was armed
        # First of all, so that no mount below ever propagates to the host's namespace.
        _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
        if config.get("reveal"):
            _reveal(libc, [str(p) for p in config["reveal"]], str(config["stash"]))
        if config.get("scratch_bytes"):
            _scratch(libc, str(config["cwd"]), int(config["scratch_bytes"]), config.get("drop_uid"))
        if config["readonly"]:
            _readonly(libc, [str(p) for p in config["writable"]])
        if config["proc"]:
            _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        if config["userns"]:
            _unshare(libc, CLONE_NEWUSER, "nested user")
            _map_ids(0, 0)
    os.close(alive_fd)
    child = os.fork()
    if child == 0:
        _exec_program(config, status_fd)
    _, status = os.waitpid(child, 0)
    _report(status_fd, {"exit": status})
    os._exit(0)


def _exec_program(config: dict[str, Any], status_fd: int) -> NoReturn:
    try:
        uid = config.get("drop_uid")
        if uid is not None:
            os.setgroups([])
            os.setgid(int(uid))
            os.setuid(int(uid))
        os.set_inheritable(status_fd, True)  # for C's "started" report; C closes it before the program runs
        here = os.path.abspath(__file__)
        argv = [sys.executable, *PYTHON_FLAGS, here, "--run", json.dumps(config)]
        os.execve(sys.executable, argv, dict(os.environ))
    except BaseException as exc:
        _report(status_fd, {"error": f"starting the sandboxed interpreter: {type(exc).__name__}: {exc}"})
    os._exit(127)


def _searchable_by_others(path: str) -> bool:
    return bool(os.stat(path).st_mode & stat.S_IXOTH)


def _reveal(libc: ctypes.CDLL, paths: list[str], stash: str) -> None:
    """Make ``paths`` (directories) reachable by an unprivileged uid with no group: over the topmost ancestor it
    cannot search, mount a tmpfs holding only those paths (bind mounts of the originals). The rest of that
    ancestor (``/root``'s dotfiles, say) disappears from the sandbox's view."""
    paths = sorted({os.path.realpath(p) for p in paths})
    paths = [p for p in paths if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths)]
    plan: dict[str, list[str]] = {}
    for path in paths:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):  # proper ancestors, from the top
            ancestor = "/" + "/".join(parts[:i])
            if not _searchable_by_others(ancestor):
                plan.setdefault(ancestor, []).append(path)
                break
    for n, (blocked, inside) in enumerate(plan.items()):
        stashed = []
        for m, path in enumerate(inside):
            spot = os.path.join(stash, f"{n}-{m}")
            os.mkdir(spot)
            _mount(libc, path, spot, None, MS_BIND | MS_REC)
            stashed.append((path, spot))
        _mount(libc, "tmpfs", blocked, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m")
        for path, spot in stashed:
            os.makedirs(path, mode=0o755, exist_ok=True)
            _mount(libc, spot, path, None, MS_BIND | MS_REC)
            _check(libc.umount2(spot.encode(), MNT_DETACH), f"umount {spot!r}")


def _scratch(libc: ctypes.CDLL, path: str, size: int, uid: object) -> None:
    """A tmpfs of ``size`` bytes (and 4096 files) over the working directory: however many files the program
    writes, the host's disk holds none of them, and it vanishes with the mount namespace."""
    owner = f",uid={int(str(uid))},gid={int(str(uid))}" if uid is not None else ""
    with contextlib.suppress(SetupError):  # where tmpfs is not allowed, the disk (rather than no namespaces at all)
        _mount(libc, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},nr_inodes=4096,mode=0700{owner}")


def _readonly(libc: ctypes.CDLL, writable: list[str]) -> None:
    """Every mount read-only, nosuid and nodev, except the writable directories (rw, nosuid, nodev) and the
    harmless device nodes (read-only, nosuid; devices stay writable on a read-only mount)."""
    for path in writable:
        _mount(libc, path, path, None, MS_BIND | MS_REC)
    devices = set()
    for name in DEVICES:
        path = f"/dev/{name}"
        if os.path.exists(path):
            _mount(libc, path, path, None, MS_BIND)
            devices.add(path)
    keep = set(writable)
    for point, options in _mounts():
        flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (MS_NOEXEC if "noexec" in options else 0)
        if point in keep:
            flags |= MS_NODEV
        elif point in devices:
            flags |= MS_RDONLY
        else:
            flags |= MS_RDONLY | MS_NODEV
        try:
            _mount(libc, None, point, None, flags)
        except SetupError as exc:
            if exc.errno in (errno.ENOENT, errno.EACCES):
                continue  # a mount point hidden or removed under another mount: not reachable by path
            raise


# --- process C ----------------------------------------------------------------------------------------------------


def run(config: dict[str, Any]) -> NoReturn:
    status_fd = int(config["status_fd"])
    _report(status_fd, {"started": True})
    os.closerange(3, 1 << 16)
    os.chdir(config["cwd"])
    _limits(config)
    _disable_network()
    program = str(config["program"])
    with open(program, encoding="utf-8") as f:
        source = f.read()
    main = types.ModuleType("__main__")
    main.__file__ = program
    sys.modules["__main__"] = main
    sys.argv = [program]
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # output before a hang or a kill still reaches the runner
    try:
        code = compile(source, program, "exec")
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)  # the traceback starts in the program
        raise SystemExit(1) from None
    raise SystemExit(0)


def _limits(config: dict[str, Any]) -> None:
    limit = resource.setrlimit
    limit(resource.RLIMIT_CORE, (0, 0))
    cpu = int(config["cpu_s"])
    limit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    limit(resource.RLIMIT_FSIZE, (int(config["fsize_bytes"]),) * 2)
    limit(resource.RLIMIT_NOFILE, (int(config["nofile"]),) * 2)
    if config.get("nproc"):
        limit(resource.RLIMIT_NPROC, (int(config["nproc"]),) * 2)
    limit(resource.RLIMIT_AS, (int(config["memory_bytes"]),) * 2)


def _disable_network() -> None:
    """Defence in depth (the network namespace is the boundary): the socket API raises PermissionError."""
    import _socket
    import socket

    def denied(*args: object, **kwargs: object) -> NoReturn:
        raise PermissionError(NETWORK_DISABLED)

    class NoSocket(socket.socket):
        """No new sockets; wrapping an existing descriptor stays possible (``socketpair``, which asyncio's event
        loops need, creates a connected pair that reaches nothing outside the process)."""

        def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
            if fileno is None:
                denied()
            super().__init__(family, type, proto, fileno)

    deny: Callable[..., NoReturn] = denied
    socket.socket = socket.SocketType = NoSocket  # type: ignore[misc,assignment]
    for module in (socket, _socket):  # (_socket.socket itself stays: socket.socket's methods look it up)
        for name in ("create_connection", "create_server", "getaddrinfo", "getnameinfo", "gethostbyname",
                     "gethostbyname_ex", "gethostbyaddr"):  # fmt: skip
            if hasattr(module, name):
                setattr(module, name, deny)


def main(argv: list[str]) -> NoReturn:
    if len(argv) == 3 and argv[1] == "--run":
        run(json.loads(argv[2]))
    if len(argv) == 2:
        launch(json.loads(argv[1]))
    sys.stderr.write("usage: _launcher.py CONFIG_JSON | --run CONFIG_JSON\n")
    os._exit(2)


if __name__ == "__main__":
    main(sys.argv)
