"""Rate and concurrency limits shared by every call to an endpoint in this process.

One :class:`EndpointLimiter` exists per endpoint (base URL, or the model file for in-process models). Every run
in the process, on any event loop or thread, goes through the same one, so two concurrent jobs against one
server together respect its requests-per-minute, tokens-per-minute and slot count.

The pacing is GCRA (a token bucket expressed as "the earliest time the next request may start"). Callers take
turns (FIFO, across event loops): the one whose turn it is reserves its start time, sleeps until then without
polling, and re-anchors the schedule at the moment it really starts. A late wake-up or a stalled event loop
therefore never lets the calls behind it catch up in a burst: with ``rpm_burst=1`` two calls start at least
``60 / rpm`` seconds apart, so the rate is never above the limit over any window, and it converges to the
limit from below. Concurrency is a semaphore that works across event loops (asyncio's own binds to one loop),
because a sync ``run()`` and an async job may share an endpoint.
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
    larger than the burst still gets through after waiting for its share), ``refund`` gives back units
    reserved but not used (a tokens-per-minute reservation made for ``max_tokens`` that were not generated),
    and ``charge`` adds units used beyond the reservation (a call that produced more tokens than estimated),
    so that later callers wait for them.
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
            wait = start - now
            return wait if wait > 1e-9 else 0.0  # float residue of summed costs is no reason to sleep

    def refund(self, units: float) -> None:
        if units <= 0:
            return
        with self._lock:
            self._tat = max(time.monotonic(), self._tat - units / self.rate)

    def charge(self, units: float) -> None:
        if units <= 0:
            return
        with self._lock:
            self._tat = max(time.monotonic(), self._tat) + units / self.rate

    def postpone(self, seconds: float) -> None:
        """A reservation started ``seconds`` later than its reserved time: move the schedule with it, so that
        the time lost is not made up by starting later reservations closer together."""
        if seconds <= 0:
            return
        with self._lock:
            self._tat += seconds


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
    _turn: CrossLoopSemaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.slots = CrossLoopSemaphore(self.limits.max_concurrency)
        self._turn = CrossLoopSemaphore(1)  # one caller at a time waits for the pace
        rpm, tpm = self.limits.rpm, self.limits.tpm
        self.requests = Pacer(rpm / 60.0, self.limits.rpm_burst) if rpm else None
        # A minute's worth of tokens may be spent at once, as hosted providers allow.
        self.tokens = Pacer(tpm / 60.0, tpm) if tpm else None

    async def admit(self, estimated_tokens: int) -> None:
        """Wait for a slot, then for the request and token pace; the caller must call :meth:`done`."""
        await self.slots.acquire()
        try:
            if self.requests is not None or self.tokens is not None:
                await self._pace(estimated_tokens)
        except BaseException:
            self.slots.release()
            raise

    async def _pace(self, estimated_tokens: int) -> None:
        await self._turn.acquire()
        try:
            now = time.monotonic()
            reserved: list[tuple[Pacer, float, float]] = []  # (pacer, units, wait)
            if self.requests is not None:
                reserved.append((self.requests, 1.0, self.requests.reserve(1.0, now)))
            if self.tokens is not None:
                reserved.append((self.tokens, estimated_tokens, self.tokens.reserve(estimated_tokens, now)))
            delay = max(wait for _, _, wait in reserved)
            if delay > 0:
                try:
                    await _sleep_until(now + delay)
                except BaseException:
                    for pacer, units, _ in reserved:  # the call never starts: give its place back
                        pacer.refund(units)
                    raise
            started = time.monotonic() - now
            for pacer, _, wait in reserved:
                pacer.postpone(started - wait)
        finally:
            self._turn.release()

    def done(self, reserved_tokens: int, used_tokens: int) -> None:
        """Release the slot and settle the token reservation with what the call really used."""
        if self.tokens is not None:
            if used_tokens > reserved_tokens:
                self.tokens.charge(used_tokens - reserved_tokens)
            else:
                self.tokens.refund(reserved_tokens - used_tokens)
        self.slots.release()


#: asyncio timers fire up to ~1 ms late (epoll counts in milliseconds); the last stretch of a wait is slept in a
#: worker thread, which wakes within ~0.1 ms. At 100 requests/s, 1 ms late per request is 10 % of the rate.
_TIMER_SLACK_S = 0.002


async def _sleep_until(deadline: float) -> None:
    """Sleep until ``time.monotonic() >= deadline``, precisely: pacing is anchored at real start times, so any
    lateness here is rate lost."""
    remaining = deadline - time.monotonic()
    if remaining > _TIMER_SLACK_S:
        await asyncio.sleep(remaining - _TIMER_SLACK_S)
        remaining = deadline - time.monotonic()
    if remaining > 0:
        await asyncio.get_running_loop().run_in_executor(None, time.sleep, remaining)


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
