"""Symbolic answer equivalence for MAgICoRe's majority match (magicore.md §2.2, §2.5), in a guarded subprocess.

The reference's ``is_math_correct`` also matches two answers when sympy simplifies their difference to 0
(``x+1`` ≡ ``1+x``), under a 5-second timeout that counts as "not equivalent". Answers are model output, so:

* they are parsed only by sympy's lark LaTeX grammar (``parse_latex(..., backend="lark")``), which builds sympy
  objects from a parse tree and never evaluates text (``sympify``/``parse_expr`` would ``eval`` it). Not sympy's
  default ANTLR backend, although its grammar (derived from latex2sympy, which the reference uses) reads more
  LaTeX (``r^2\\pi``, ``\\sqrt{2}x``): it silently drops what follows a parse it can stop at (``1, 2`` reads as
  ``1``, ``x \\in [1,2]`` as ``in*x``), which would match different tuples and intervals; and it needs
  ``antlr4-python3-runtime`` pinned to 4.11, which Hydra/OmegaConf users cannot install (they pin 4.9);
* ``simplify`` can run for minutes or exhaust memory on a hostile expression, so it runs in a separate worker
  process with an address-space limit, killed by the parent after a wall-clock timeout. A timeout, a crash or a
  parse failure means "not equivalent";
* the worker gets an allowlisted environment (no API keys) and runs ``python -I`` on this very file, which imports
  only the standard library at module level, so the worker loads neither agentmesh nor anything from the caller's
  working directory.

agentmesh's own sandbox is not used because it runs Python without site-packages, where sympy is not importable.

One worker is kept alive and reused (starting one and importing sympy takes up to a second); it is started on the
first request that needs it, replaced after a timeout or crash, and stopped at interpreter exit. Requests are
serialised by a lock and their results cached, so repeated comparisons with the same majority answer cost nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import re
import select
import subprocess
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_CHARS", "SymbolicChecker", "checker", "symbolic_equivalent", "worker_env"]

log = logging.getLogger(__name__)

MAX_CHARS = 1000
"""Longer answers are not compared symbolically (the Earley parser alone could take the whole timeout)."""
ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")
"""The only variables the worker inherits: enough for Python to run, nothing secret (API keys, tokens, DSNs)."""


def worker_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: the allowlisted variables of ``environ`` (default ``os.environ``), nothing else."""
    source = os.environ if environ is None else environ
    return {name: source[name] for name in ENV_ALLOWLIST if name in source}


class SymbolicChecker:
    """Answers "are LaTeX answers A and B symbolically equal?" through one long-lived, resource-limited worker.

    ``timeout`` is the wall-clock budget of one comparison (the reference's 5 s); ``startup_timeout`` covers
    starting the worker and importing sympy, which a loaded machine may make slow and which is not the answer's
    fault. ``memory_bytes`` is the worker's address-space limit (``RLIMIT_AS``).
    """

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        startup_timeout: float = 60.0,
        memory_bytes: int = 1 << 30,
        cache_size: int = 4096,
    ) -> None:
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.memory_bytes = memory_bytes
        self.cache_size = cache_size
        self.starts = 0
        """How many workers have been started (tests check that numbers-only pairs start none)."""
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._unavailable: str | None = None
        self._atexit_registered = False
        _CHECKERS.add(self)

    @property
    def running(self) -> bool:
        """Whether a worker process is alive right now."""
        return self._proc is not None and self._proc.poll() is None

    def equivalent(self, a: str, b: str) -> bool:
        """True iff both parse as LaTeX and ``simplify(A - B) == 0`` (or they parse to the same expression).

        Never raises for bad input: unparsable, over-long, timed-out or crashing comparisons are ``False``.
        """
        if len(a) > MAX_CHARS or len(b) > MAX_CHARS:
            return False
        key = (a, b) if a <= b else (b, a)  # the test is symmetric
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            reply = self._request({"a": key[0], "b": key[1]})
            result = bool(reply is not None and reply.get("equivalent") is True)
            self._cache[key] = result  # a timeout is cached too: the same hostile pair would time out again
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return result

    def info(self) -> dict[str, Any] | None:
        """The worker's own view of its limits and environment variable *names* (for tests and diagnostics)."""
        with self._lock:
            return self._request({"op": "info"})

    def close(self) -> None:
        """Stop the worker (it exits on end of input; killed if it does not within a second)."""
        with self._lock:
            self._stop(polite=True)

    # --- internals (called with the lock held) ------------------------------------------------------------------------

    def _request(self, message: dict[str, str]) -> dict[str, Any] | None:
        proc = self._ensure_worker()
        if proc is None or proc.stdin is None:
            return None
        try:
            proc.stdin.write((json.dumps(message) + "\n").encode())
            proc.stdin.flush()
        except OSError:  # the worker died since the last request
            self._stop(polite=False)
            return None
        reply = self._read_reply(time.monotonic() + self.timeout)
        if reply is None:
            log.info("symbolic equivalence: no answer within %.1f s, worker restarted on next use", self.timeout)
            self._stop(polite=False)
        return reply

    def _ensure_worker(self) -> subprocess.Popen[bytes] | None:
        if self._unavailable is not None:
            return None
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stop(polite=False)
        limits = {"memory_bytes": self.memory_bytes, "cpu_seconds": math.ceil(self.timeout) + 2}
        self._proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), json.dumps(limits)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=worker_env(),
            start_new_session=True,  # a Ctrl-C in the terminal is the parent's to handle, not the worker's
        )
        self.starts += 1
        if not self._atexit_registered:
            atexit.register(self.close)
            self._atexit_registered = True
        ready = self._read_reply(time.monotonic() + self.startup_timeout)
        if ready is None or ready.get("ready") is not True:
            reason = "no answer" if ready is None else str(ready.get("error"))
            log.warning("symbolic equivalence unavailable (sympy worker did not start: %s)", reason)
            if ready is not None:  # it reported an import failure: that will not heal by retrying
                self._unavailable = reason
            self._stop(polite=False)
            return None
        return self._proc

    def _read_reply(self, deadline: float) -> dict[str, Any] | None:
        """One JSON line from the worker before ``deadline``; ``None`` on timeout, end of output or garbage."""
        if self._proc is None or self._proc.stdout is None:
            return None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError:
            return None
        return reply if isinstance(reply, dict) else None

    def _stop(self, *, polite: bool) -> None:
        proc, self._proc, self._buffer = self._proc, None, b""
        if proc is None:
            return
        if polite and proc.stdin is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=1.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _forget_in_child(self) -> None:
        """In a forked child: the worker and its pipes are the parent's, and the lock may have been held by a
        parent thread at the fork. Start afresh (a worker of its own on first need), leaving the parent's alone."""
        self._lock = threading.Lock()
        self._proc, self._buffer = None, b""


_CHECKERS: weakref.WeakSet[SymbolicChecker] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for found in list(_CHECKERS):
        found._forget_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)

CHECKER = SymbolicChecker()
"""The process-wide checker behind :func:`symbolic_equivalent` (replaceable, e.g. by tests)."""


def checker() -> SymbolicChecker:
    """The process-wide checker, looked up at call time so that replacing :data:`CHECKER` takes effect."""
    return CHECKER


def symbolic_equivalent(a: str, b: str) -> bool:
    """``simplify(A - B) == 0`` for two LaTeX answers, in the guarded worker; ``False`` on any failure."""
    return checker().equivalent(a, b)


# --- the worker (runs as ``python -I symbolic.py LIMITS``) ---------------------------------------------------------


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _worker_main(limits: dict[str, int]) -> None:
    """Set the limits first, then import sympy, then answer one JSON request per input line until end of input."""
    import resource

    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    try:
        memory = int(limits["memory_bytes"])
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        from lark import Tree
        from sympy import Expr, Symbol, simplify
        from sympy import pi as sympy_pi
        from sympy.parsing.latex import parse_latex

        parse_latex("x", backend="lark")  # builds the grammar now rather than inside the first timed request
    except Exception as exc:  # a limit above the hard one, sympy or lark missing, too little memory
        _send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    _send({"ready": True})

    pi = re.compile(r"\\pi(?![A-Za-z])")
    # Implicit products the lark grammar rejects although LaTeX answers are full of them: after a closing brace
    # (``\sqrt{2}x``, ``x^{2}y``) and after a one-character power (``a^2b``). Made explicit with ``\cdot`` only
    # when the answer does not parse as written.
    after_brace = re.compile(r"(?<!\\)\}(?=[A-Za-z0-9\\(])")
    bare_power = re.compile(r"\^([A-Za-z0-9])(?=[A-Za-z0-9\\(])")

    def settled(tree: Any) -> Any:
        # An ambiguous parse is a lark Tree of the alternatives: usable only when they all agree.
        if isinstance(tree, Tree) and tree.data == "_ambig":
            options = [settled(child) for child in tree.children]
            if all(option == options[0] for option in options[1:]):
                return options[0]
            raise ValueError(f"ambiguous LaTeX, read as {options}")
        return tree

    def parse(text: str) -> Any:
        try:
            return settled(parse_latex(text, backend="lark"))
        except Exception:
            explicit = after_brace.sub(r"} \\cdot ", bare_power.sub(r"^{\1} \\cdot ", text))
            if explicit == text:
                raise
            return settled(parse_latex(explicit, backend="lark"))

    def parse_pair(a: str, b: str) -> tuple[Any, Any]:
        # The lark grammar has no \pi (a TODO in sympy's grammar): read it as a Greek letter neither answer uses,
        # then substitute the constant for that symbol.
        stand_in = next((g for g in ("xi", "chi", "psi", "zeta") if f"\\{g}" not in a + b), None)
        if stand_in is None or not (pi.search(a) or pi.search(b)):
            return parse(a), parse(b)
        parsed = (parse(pi.sub(f"\\\\{stand_in} ", text)) for text in (a, b))
        ea, eb = (e.subs(Symbol(stand_in), sympy_pi) for e in parsed)
        return ea, eb

    def equivalent(a: str, b: str) -> bool:
        ea, eb = parse_pair(a, b)
        if ea == eb:
            return True
        if not (isinstance(ea, Expr) and isinstance(eb, Expr)):  # equations, sets, ambiguous parse trees
            return False
        return bool(simplify(ea - eb) == 0)

    for line in iter(sys.stdin.readline, ""):
        # Each request gets a CPU budget just above the parent's timeout: an orphaned worker (parent killed while
        # it was simplifying) dies by SIGXCPU instead of running on; the parent kills it sooner otherwise.
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(used.ru_utime + used.ru_stime) + int(limits["cpu_seconds"])
        if cpu_hard != resource.RLIM_INFINITY:
            soft = min(soft, cpu_hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))
        try:
            request = json.loads(line)
            if request.get("op") == "info":
                _send({"env": sorted(os.environ), "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0]})
                continue
            _send({"equivalent": equivalent(str(request["a"]), str(request["b"]))})
        except Exception as exc:  # parse errors, RecursionError, MemoryError under RLIMIT_AS: "not equivalent"
            _send({"equivalent": False, "error": f"{type(exc).__name__}: {exc}"[:200]})


if __name__ == "__main__":
    _worker_main(json.loads(sys.argv[1]))
