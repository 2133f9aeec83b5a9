"""A sandbox for untrusted Python: unit tests of model-written code (``code_tests``, DyLAN's Passer and Tester).

A leaf package (it imports nothing from agentmesh but :mod:`agentmesh.errors`)::

    from agentmesh.sandbox import arun_python, run_python

    result = await arun_python(program, timeout_s=5, memory_mb=256)
    result.passed, result.exit_code, result.timed_out, result.memory_exceeded, result.stdout, result.stderr

The program runs as ``__main__`` of a fresh ``python -I -S -B -X utf8`` subprocess, never in-process. ``-S``
drops site-packages on purpose: tests of generated code need only the standard library (HumanEval's do), and an
interpreter that cannot import the host's packages (agentmesh, its API clients, their configuration) is a smaller
surface. ``passed`` is the exit status: 0 within the time limit passes; an uncaught exception (a failing
``assert``), a syntax error, a non-zero ``sys.exit``, a signal or a timeout fails. (The ``code_tests`` operator also
requires that the program ran to its end, as the HumanEval harness does, where ``SystemExit`` fails.)

Isolation layers (:func:`isolation` probes once per process which configuration works here, by running a check
program that must observe each promised layer; ``isolation().layers()`` lists them in words):

* **always**: a new session, whose whole process group is SIGKILLed at the wall-clock timeout; resource limits
  set in the program's own process before its first line (``RLIMIT_AS`` = ``memory_mb``, ``RLIMIT_CPU`` =
  ceil(timeout)+1 s, ``RLIMIT_FSIZE`` 64 MiB, ``RLIMIT_NOFILE`` 256, ``RLIMIT_CORE`` 0); an allowlisted
  environment (``PATH``, ``LANG``, ``HOME`` and ``TMPDIR`` = the working directory: no API key or any other variable
  of the caller's); stdin from /dev/null; a fresh temporary directory, removed afterwards; output read concurrently
  and bounded (64 KiB kept per stream, head and tail); a prelude that replaces ``socket.socket``,
  ``socket.create_connection``, ``socket.getaddrinfo`` and the other name look-ups with functions raising
  ``PermissionError("network disabled in agentmesh sandbox")`` (defence in depth only: ``ctypes`` gets past it).
* **Linux with namespaces** (``unshare(2)`` through ``ctypes``, since Python 3.11 has no ``os.unshare``; no
  ``unshare`` binary needed): new network, PID and mount namespaces. The network namespace has a loopback
  interface only, down: nothing outside is reachable whatever the program does with sockets. In the PID namespace a
  supervisor is PID 1 and the program PID 2; when the program exits or the run is killed, the kernel kills every
  process it started (``setsid`` does not escape). A private ``/proc`` hides host processes and their environments.
  Every mount is remounted read-only, ``nosuid`` and ``nodev``, except the working directory (read-write) and
  ``/dev/null``, ``zero``, ``full``, ``random``, ``urandom``, ``tty``. A fresh working directory (no ``cwd`` given)
  is a tmpfs of 128 MiB and 4096 files (where the kernel allows one): what the program writes never reaches the disk.

  - As an unprivileged user, the namespaces come with a user namespace (the caller mapped to root inside), and the
    program runs in a nested one, holding no capability over the mounts or the network namespace.
    ``RLIMIT_NPROC`` = 64 counts only the sandbox's processes.
  - As root, no user namespace: the program runs as a fresh unused uid (2,000,000,000 and up) with no groups, so
    ``RLIMIT_NPROC`` holds (the kernel exempts uid 0 from it, even inside a user namespace) and root's files,
    devices and processes are out of reach. Directories that uid cannot search (``/root`` when the interpreter is
    installed there) are covered by a tmpfs skeleton holding only what the program needs: the interpreter, this
    package's launcher and the working directory. A working directory given by the caller is handed to that uid for
    the run and handed back afterwards.

* **a memory cgroup**, where this process can make one (root, or a writable cgroup v1 memory hierarchy;
  :mod:`agentmesh.sandbox._cgroup`): the program and every process it starts share ``memory_mb`` (plus the scratch
  tmpfs); at the limit the kernel kills the largest, and ``memory_exceeded`` is set. Without it a program that
  forks holds up to ``RLIMIT_NPROC`` x ``memory_mb``.

Why the limits are not set in ``preexec_fn``: ``preexec_fn`` is unsafe in a process with threads (the runtime has
them), ``RLIMIT_NPROC`` must be set after the namespaces exist (or it counts every process of the user), and the
uid change must come after the mounts. The launcher (``_launcher.py``) sets everything in the child, before the
program's first line; the program cannot raise its hard limits.

What is not isolated: files readable by the program's uid stay readable (read-only), and the program's output
returns to the caller. Without namespaces (containers that forbid them, non-Linux systems), the network guard is
only the socket prelude, a process that calls ``setsid`` can outlive the run, ``RLIMIT_NPROC`` is not set, the
working directory is on the disk (file after file can fill it until the timeout), and a root caller's program runs
as root.
"""

from agentmesh.sandbox.runner import (
    NETWORK_DISABLED,
    OUTPUT_LIMIT,
    Isolation,
    SandboxError,
    SandboxResult,
    arun_python,
    isolation,
    run_python,
)

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
