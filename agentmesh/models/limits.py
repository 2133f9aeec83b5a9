"""Rate and concurrency limits shared by every call to an endpoint in this process.

One :class:`EndpointLimiter` exists per endpoint (base URL, or the model file for in-process models). Every run
in the process, on any event loop or thread, goes through the same one, so two concurrent jobs against one
server together respect its requests-per-minute, tokens-per-minute and slot count.

The pacing is GCRA (a token bucket expressed as "the earliest time the next request may start"): a caller
reserves its slot under a lock and then sleeps outside it, so waiting is FIFO, needs no polling, and the
achieved rate converges to the limit from below. Concurrency is a semaphore that works across event loops
(asyncio's own binds to one loop), because a sync ``run()`` and an async job may share an endpoint.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from agentmesh.models.settings import EndpointLimits


class Pacer:
    """GCRA pacing: ``rate`` units per second with ``burst`` units of credit.

    ``reserve(n)`` returns how long to wait before using ``n`` units. Reservations may go into debt (a call
    larger than the burst still gets through after waiting for its share), and ``refund`` gives back units
    reserved but not used (a tokens-per-minute reservation made for ``max_tokens`` that were not generated).
    """

    def __init__(self, rate_per_s: float, burst: float) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self._tat = 0.0  # theoretical arrival time: when the bucket is next empty of debt
        self._lock = threading.Lock()

    def reserve(self, units: float = 1.0, now: float | None = None) -> float:
        with self._lock:
            now = time.monotonic() if now is None else now
            tat = max(self._tat, now)
            cost = units / self.rate
            # The request may start once at most `burst` units' worth of time is outstanding.
            start = max(now, tat + cost - self.burst / self.rate)
            self._tat = tat + cost
            return start - now

    def refund(self, units: float) -> None:
        if units <= 0:
            return
        with self._lock:
            self._tat = max(time.monotonic(), self._tat - units / self.rate)


class CrossLoopSemaphore:
    """A FIFO semaphore usable from any event loop and thread."""

    def __init__(self, value: int) -> None:
        self._value = value
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._value > 0 and not self._waiters:
                self._value -= 1
                return
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, fut))
        try:
            await fut
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._waiters.remove((loop, fut))
                except ValueError:
                    # The slot was handed to us just as we were cancelled: pass it on.
                    self._release_locked()
            raise

    def release(self) -> None:
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        while self._waiters:
            loop, fut = self._waiters.popleft()
            if loop.is_closed():
                continue
            loop.call_soon_threadsafe(_wake, fut)
            return
        self._value += 1


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
    # A future cancelled between hand-off and wake-up is handled by acquire's CancelledError branch.


@dataclass
class EndpointLimiter:
    """Everything that gates a call to one endpoint: slots, request pace and token pace."""

    endpoint: str
    limits: EndpointLimits
    slots: CrossLoopSemaphore = field(init=False)
    requests: Pacer | None = field(init=False)
    tokens: Pacer | None = field(init=False)

    def __post_init__(self) -> None:
        self.slots = CrossLoopSemaphore(self.limits.max_concurrency)
        rpm, tpm = self.limits.rpm, self.limits.tpm
        self.requests = Pacer(rpm / 60.0, self.limits.rpm_burst) if rpm else None
        # A minute's worth of tokens may be spent at once, as hosted providers allow.
        self.tokens = Pacer(tpm / 60.0, tpm) if tpm else None

    async def admit(self, estimated_tokens: int) -> None:
        """Wait for a slot, then for the request and token pace; the caller must call :meth:`done`."""
        await self.slots.acquire()
        try:
            delay = 0.0
            if self.requests is not None:
                delay = self.requests.reserve(1)
            if self.tokens is not None:
                delay = max(delay, self.tokens.reserve(estimated_tokens))
            if delay > 0:
                await asyncio.sleep(delay)
        except BaseException:
            self.slots.release()
            raise

    def done(self, reserved_tokens: int, used_tokens: int) -> None:
        if self.tokens is not None:
            self.tokens.refund(reserved_tokens - used_tokens)
        self.slots.release()


_registry: dict[str, EndpointLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(endpoint: str, limits: EndpointLimits) -> EndpointLimiter:
    """The process-wide limiter of ``endpoint``; created on first use, replaced if its limits change."""
    with _registry_lock:
        current = _registry.get(endpoint)
        if current is None or current.limits != limits:
            current = EndpointLimiter(endpoint, limits)
            _registry[endpoint] = current
        return current
